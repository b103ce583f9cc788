"""How chapter 4 reads a set of self-guided samples (SPEC 4): per target, how well its samples match the target's
phi and whether the judge (a pixel-space classifier that never sees phi) gives them the target's class; the same
for unconditional samples read against every target; and the inputs of claims 5 and 6 (``claims.reconstruction``):
each guide's judged samples, and the distances between the targets."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import analysis, classifier, matching, representation, utils
from .claims import reconstruction as recon


def _phi(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """phi at sigma 0 (one clean pass) on the model's device, returned on the CPU."""
    return representation.phi(model, images.to(utils.model_device(model)), 0.0).cpu()


def _phi_error(model: torch.nn.Module, samples: torch.Tensor, target_phi: torch.Tensor) -> torch.Tensor:
    """Per sample, ||phi(sample) - target_phi|| / ||target_phi|| (clean pass), on the CPU."""
    dev = utils.model_device(model)
    return matching.relative_phi_error(model, samples.to(dev), target_phi.to(dev)).cpu()


def guided_scores(
    model: torch.nn.Module,
    judge: torch.nn.Module,
    samples: torch.Tensor,
    n_per: int,
    target_images: torch.Tensor,
    target_labels: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Per target (``n_per`` consecutive samples each): "phi error", its samples' mean relative phi error against the
    target's phi; "judge agrees", the share the judge gives the target's class; "judge on target", whether the judge
    gets the target itself right (the ceiling); "target phi", the targets' phi (T, C)."""
    n_t = len(target_images)
    if len(samples) != n_t * n_per:
        raise ValueError(f"{len(samples)} samples are not {n_per} per target for {n_t} targets")
    tp = _phi(model, target_images)
    err = _phi_error(model, samples, tp.repeat_interleave(n_per, 0))
    own = (classifier.predict(judge, target_images) == target_labels).double()
    return {
        "phi error": err.view(n_t, n_per).mean(1),
        "judge agrees": judged(judge, samples, target_images, target_labels, n_per).agrees.mean(1),
        "judge on target": own,
        "target phi": tp,
    }


def unconditional_scores(
    model: torch.nn.Module, judge: torch.nn.Module, samples: torch.Tensor, target_phi: torch.Tensor, target_labels
) -> dict[str, torch.Tensor]:
    """The control's scores per target: the mean relative phi error of every unconditional sample against that
    target's phi, and the share of them the judge gives the target's class."""
    err = torch.stack([_phi_error(model, samples, p.expand(len(samples), -1)).mean() for p in target_phi])
    predicted = classifier.predict(judge, samples)
    hit = (predicted.view(1, -1) == torch.as_tensor(target_labels).view(-1, 1)).double().mean(1)
    return {"phi error": err, "judge agrees": hit}


def diversity(samples: torch.Tensor, n_per: int) -> torch.Tensor:
    """Per target, the mean RMS pixel distance between its ``n_per`` consecutive samples."""
    if n_per < 1 or len(samples) % n_per:
        raise ValueError(f"{len(samples)} samples are not a whole number of sets of {n_per}")
    return torch.tensor([analysis.mean_pairwise(s) for s in samples.split(n_per)], dtype=torch.float64)


def judged(
    judge: torch.nn.Module,
    samples: torch.Tensor,
    target_images: torch.Tensor,
    target_labels: torch.Tensor,
    n_per: int | None = None,
) -> recon.GuideSamples:
    """Claim 5's per-sample scores of one sample set (``recon.score_samples`` on the judge's classes): guided with
    ``n_per`` consecutive samples per target, or unconditional (``n_per`` None, read against every target)."""
    return recon.score_samples(classifier.predict(judge, samples), samples, target_images, target_labels, n_per)


def judged_runs(
    judge: torch.nn.Module,
    runs: Sequence[dict],
    target_images: torch.Tensor,
    target_labels: torch.Tensor,
    n_per: int,
) -> list[recon.GuideSamples]:
    """:func:`judged` for several guided runs of one guide (one per control seed), in order."""
    return [judged(judge, r["samples"], target_images, target_labels, n_per) for r in runs]


def target_distances(
    model: torch.nn.Module,
    target_images: torch.Tensor,
    control_seeds: Sequence[int],
    channels: torch.Tensor | None = None,
    control_channels: Sequence[torch.Tensor | None] | None = None,
) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """Claim 6's distances between the targets (T, T): "phi" (the trained network, clean pass), "pixels" (RMS), and
    "untrained phi", one matrix per control seed (an untrained network of the same architecture). A healthy-fraction
    reading (``sample_runs.live_channels``) passes each network's live-channel mask: ``channels`` for the trained
    one, ``control_channels`` one per control seed (None: every channel)."""
    control_channels = list(control_channels or [None] * len(control_seeds))
    if len(control_channels) != len(control_seeds):
        n, got = len(control_seeds), len(control_channels)
        raise ValueError(f"control_channels: one mask per control seed ({n}), got {got}")

    def restricted(p: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return p if mask is None else p[:, mask.to(torch.bool)]

    untrained = [
        restricted(_phi(representation.untrained_like(model, s), target_images), m)
        for s, m in zip(control_seeds, control_channels)
    ]
    return {
        "phi": recon.feature_distances(restricted(_phi(model, target_images), channels)),
        "pixels": recon.pixel_distances(target_images),
        "untrained phi": [recon.feature_distances(u) for u in untrained],
    }
