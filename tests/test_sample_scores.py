"""How chapter 4 reads sample sets (sdrlib.sample_scores), on a tiny network and a judge with known answers."""

import copy

import pytest
import torch

from sdrlib import analysis, representation, sample_scores
from sdrlib.claims import reconstruction as recon
from sdrlib.unet import build


class BrightnessJudge(torch.nn.Module):
    """A judge whose class is the image's mean brightness in quarters: 0 (dark) .. 3 (bright)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean((1, 2, 3))
        return -((m.view(-1, 1) - torch.tensor([0.125, 0.375, 0.625, 0.875])) ** 2)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build("tiny").eval()


def flat(levels) -> torch.Tensor:
    """Images of the given mean brightness with the same small texture (flat images all give one phi: the network
    normalises a constant away)."""
    texture = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.1 - 0.05
    return torch.stack([texture + v for v in levels])


def test_guided_scores_read_each_sample_against_its_own_target(model):
    targets, labels = flat([0.1, 0.9]), torch.tensor([0, 3])
    # target 0: its two samples are itself and a bright image; target 1: both samples are itself
    samples = torch.cat([flat([0.1]), torch.rand(1, 1, 8, 8) * 0.2 + 0.8, flat([0.9, 0.9])])
    s = sample_scores.guided_scores(model, BrightnessJudge(), samples, 2, targets, labels)
    assert s["judge agrees"].tolist() == [0.5, 1.0]
    assert s["judge on target"].tolist() == [1.0, 1.0]
    assert s["phi error"][1].item() == pytest.approx(0.0, abs=1e-6)  # identical to its target
    assert s["phi error"][0].item() > 0.01
    torch.testing.assert_close(s["target phi"], representation.phi(model, targets, 0.0))
    with pytest.raises(ValueError, match="not 3 per target"):
        sample_scores.guided_scores(model, BrightnessJudge(), samples, 3, targets, labels)


def test_unconditional_scores_read_every_sample_against_every_target(model):
    targets, labels = flat([0.1, 0.9]), torch.tensor([0, 3])
    samples = torch.cat([flat([0.1, 0.1, 0.1]), torch.rand(1, 1, 8, 8) * 0.2 + 0.8])
    tp = representation.phi(model, targets, 0.0)
    s = sample_scores.unconditional_scores(model, BrightnessJudge(), samples, tp, labels)
    assert s["judge agrees"].tolist() == [0.75, 0.25]
    assert s["phi error"][0] < s["phi error"][1]  # three of the four samples are target 0 itself


def test_judged_is_claim_5s_score_of_the_judges_classes():
    targets, labels = flat([0.1, 0.9]), torch.tensor([0, 3])
    samples = flat([0.1, 0.6, 0.9, 0.9])
    g = sample_scores.judged(BrightnessJudge(), samples, targets, labels, 2)
    assert g.agrees.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    torch.testing.assert_close(
        g.distance, torch.tensor([[0.0, 0.5], [0.0, 0.0]], dtype=torch.float64), atol=1e-6, rtol=0
    )
    u = sample_scores.judged(BrightnessJudge(), samples, targets, labels)
    assert u.agrees.shape == (2, 4)
    runs = sample_scores.judged_runs(BrightnessJudge(), [{"samples": samples}] * 2, targets, labels, 2)
    assert [r.agrees.tolist() for r in runs] == [g.agrees.tolist()] * 2


def test_diversity_is_the_mean_pairwise_distance_within_each_target():
    samples = torch.cat([flat([0.0, 1.0]), flat([0.5, 0.5])])
    assert sample_scores.diversity(samples, 2).tolist() == [pytest.approx(1.0), 0.0]
    assert sample_scores.diversity(samples, 2)[0] == pytest.approx(analysis.mean_pairwise(samples[:2]))
    with pytest.raises(ValueError, match="whole number"):
        sample_scores.diversity(samples, 3)


def test_target_distances_give_claim_6_its_matrices(model):
    targets = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    d = sample_scores.target_distances(model, targets, [0, 5])
    torch.testing.assert_close(d["phi"], recon.feature_distances(representation.phi(model, targets, 0.0)))
    torch.testing.assert_close(d["pixels"], recon.pixel_distances(targets))
    assert len(d["untrained phi"]) == 2
    seed5 = representation.phi(representation.untrained_like(model, 5), targets, 0.0)
    torch.testing.assert_close(d["untrained phi"][1], recon.feature_distances(seed5))
    assert not torch.allclose(d["untrained phi"][0], d["untrained phi"][1])


def test_target_distances_on_the_live_channels(model):
    """Claim 6 read on a healthy fraction: each network's phi restricted to its mask; a mask that drops only channels
    that are zero on every target leaves the distances as they were (known answer), one that drops live ones not."""
    targets = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    p = representation.phi(model, targets, 0.0)
    keep = torch.ones(p.shape[1], dtype=torch.bool)
    keep[:2] = False
    d = sample_scores.target_distances(model, targets, [0, 5], keep, [None, keep])
    torch.testing.assert_close(d["phi"], recon.feature_distances(p[:, keep]))
    seed5 = representation.phi(representation.untrained_like(model, 5), targets, 0.0)
    torch.testing.assert_close(d["untrained phi"][1], recon.feature_distances(seed5[:, keep]))
    whole = sample_scores.target_distances(model, targets, [0])
    torch.testing.assert_close(d["untrained phi"][0], whole["untrained phi"][0])  # None: every channel
    assert not torch.allclose(d["phi"], whole["phi"])  # channels 0-1 are live here: dropping them counts
    sick = copy.deepcopy(model)
    with torch.no_grad():
        for w in sick.mid[-1][0].parameters():
            w[:2] = 0.0  # planted: channels 0-1 dead (zero on every image)
    torch.testing.assert_close(sample_scores.target_distances(sick, targets, [], keep)["phi"],
                               sample_scores.target_distances(sick, targets, [])["phi"])  # fmt: skip
    with pytest.raises(ValueError, match="one mask per control seed"):
        sample_scores.target_distances(model, targets, [0, 1], None, [keep])
