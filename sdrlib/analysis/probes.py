"""Linear probes of a representation (claim 4): ours (standardised, fixed epochs) and the authors' protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..stats import Interval, mean_ci
from .neighbours import standardize

AUTHORS_PROBE = "authors' (raw, to convergence)"


def probe_table(
    train_feats: Mapping[str, torch.Tensor],
    train_labels: torch.Tensor,
    test_feats: Mapping[str, torch.Tensor],
    test_labels: torch.Tensor,
    keys: Sequence[str] | None = None,
    epochs: int = 300,
    max_epochs: int = 3000,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[list[dict], dict[str, dict[str, Interval]]]:
    """Linear probes of each representation (``keys``; those not in ``train_feats`` are skipped), held-out accuracy
    with a bootstrap interval over the held-out images: ours (standardised features, Adam 1e-2, ``epochs``) on
    every one, and the authors' (raw features, Adam 1e-3, no weight decay, until the loss stops improving, at most
    ``max_epochs``) on the phi representations (names starting with "phi" or "untrained phi"). Returns the rows
    ({"representation", "ours (standardised)", and for phi the authors' accuracy and its epochs}) and the
    intervals as {"probe, ours": {...}, "probe, authors'": {...}}."""
    rows: list[dict] = []
    scores: dict[str, dict[str, Interval]] = {}
    for key in keys if keys is not None else list(train_feats):
        if key not in train_feats:
            continue
        tr, te = train_feats[key], test_feats[key]
        ours = linear_probe(tr, train_labels, te, test_labels, epochs=epochs, seed=seed)
        iv = mean_ci(ours["correct"], n_boot, seed=seed)
        scores.setdefault("probe, ours", {})[key] = iv
        row = {"representation": key, "ours (standardised)": iv}
        if key.startswith(("phi", "untrained phi")):  # the authors' protocol is a probe of phi
            theirs = linear_probe(
                tr,
                train_labels,
                te,
                test_labels,
                epochs=max_epochs,
                lr=1e-3,
                weight_decay=0.0,
                seed=seed,
                standardized=False,
                tol=1e-4,
            )
            iv = mean_ci(theirs["correct"], n_boot, seed=seed)
            scores.setdefault("probe, authors'", {})[key] = iv
            row.update({AUTHORS_PROBE: iv, "epochs (authors')": theirs["epochs"]})
        rows.append(row)
    return rows, scores


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    epochs: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
    standardized: bool = True,
    tol: float | None = None,
) -> dict:
    """One linear layer trained full-batch with Adam (claim 4); held-out accuracy and per-query correctness.

    Ours: standardised features, lr 1e-2, a fixed number of epochs. The authors': raw phi, lr 1e-3, no weight
    decay, trained to convergence: pass ``standardized=False, lr=1e-3, weight_decay=0, tol=1e-6`` and a large
    ``epochs``; training then stops when the loss improves by less than ``tol`` (relative) over 100 epochs."""
    tr, te = standardize(train_x.float(), test_x.float()) if standardized else (train_x.float(), test_x.float())
    n_cls = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(tr.shape[1], n_cls)
    with torch.no_grad():
        layer.weight.normal_(0, 0.01, generator=g)
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    last, done = float("inf"), 0
    for done in range(1, epochs + 1):
        loss = torch.nn.functional.cross_entropy(layer(tr), train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if tol is not None and done % 100 == 0:
            if last - loss.item() < tol * abs(last):
                break
            last = loss.item()
    with torch.no_grad():
        correct = (layer(te).argmax(1) == test_y).double()
        acc_tr = (layer(tr).argmax(1) == train_y).float().mean().item()
    return {
        "train_accuracy": acc_tr,
        "test_accuracy": correct.mean().item(),
        "correct": correct,
        "epochs": done,
        "final_loss": loss.item(),
    }
