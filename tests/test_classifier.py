"""The independent judge of chapter 4: a pixel-space CNN learns a task it can see, and it never touches phi."""

import torch

from sdrlib import classifier


def test_small_cnn_learns_two_separable_classes():
    g = torch.Generator().manual_seed(0)
    n = 256
    labels = torch.randint(0, 2, (n,), generator=g)
    x = 0.1 * torch.rand(n, 1, 16, 16, generator=g)
    x[labels == 1, :, :8] += 0.8  # class 1: bright top half
    x[labels == 0, :, 8:] += 0.8  # class 0: bright bottom half
    model = classifier.fit(x, labels, 2, epochs=3, batch=32, hflip=True, seed=0)
    test = 0.1 * torch.rand(64, 1, 16, 16, generator=g)
    truth = torch.arange(64) % 2
    test[truth == 1, :, :8] += 0.8
    test[truth == 0, :, 8:] += 0.8
    assert (classifier.predict(model, test) == truth).float().mean() > 0.95


def test_classifier_is_seeded():
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 3, (64,))
    a = classifier.fit(x, y, 3, epochs=1, batch=16, seed=4)
    b = classifier.fit(x, y, 3, epochs=1, batch=16, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
