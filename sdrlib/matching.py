"""phi matching, the projection of the self-guided samplers (SPEC 4).

With the network frozen, Adam on the pixels of y minimises mean_c (phi_one_pass(y) - phi_target)^2, where
``phi_one_pass`` is the spatial mean of the middle block for this one image in one forward pass (no averaging
over noise draws: y already carries its noise), computed through the encoder and middle block only. Also the
errors that say how well a sample's phi matches its target.

The statistic matched is a ``PhiFn``; besides the network's own phi, two control statistics of claim 5 (chapter 4):
``network_phi`` (the phi of another network, e.g. an untrained one of the same architecture) and ``PixelPCA`` (the
leading PCA coefficients of the pixels, a pixel statistic of the same dimension as phi).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .representation import phi as phi_sigma
from .unet import UNet

PhiFn = Callable[[UNet, torch.Tensor, str], torch.Tensor]  # (model, y, block) -> differentiable (N, C)


def phi_one_pass(model: UNet, y: torch.Tensor, block: str = "mid") -> torch.Tensor:
    """Single-pass spatial mean of a block, differentiable (encoder + middle block only for "mid")."""
    return model.features(y, [block])[block].mean(dim=(2, 3))


def network_phi(net: UNet) -> PhiFn:
    """A ``PhiFn`` that reads the single-pass phi of ``net`` instead of the sampled model's (claim 5's control guide:
    the trained network denoises, an untrained network of the same architecture supplies the matched statistic).
    ``net`` is put in eval mode and its parameters are frozen (requires_grad False): gradients flow to the pixels
    only."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)

    def fn(model: UNet, y: torch.Tensor, block: str = "mid") -> torch.Tensor:
        return phi_one_pass(net, y, block)

    return fn


@dataclass(frozen=True)
class PixelPCA:
    """A pixel statistic with the shape of phi (claim 5's control guide): the coefficients of an image on the
    ``k`` leading principal components of a set of training images, centred by their mean image,
    ``(x.flatten() - mean) @ components.T``. Linear, hence differentiable, and called like a ``PhiFn``
    (``pca(model, y, block)``; the model and block are ignored). Because it is linear and noise is zero-mean, its
    noise average equals its value on the clean image at every sigma: E_z[P(x + sigma z)] = P(x)."""

    mean: torch.Tensor  # (D,) the training images' mean, flattened
    components: torch.Tensor  # (k, D) orthonormal rows, by decreasing variance
    variance: torch.Tensor  # (k,) the variance of the training images along each component

    def __call__(self, model: UNet | None, y: torch.Tensor, block: str = "mid") -> torch.Tensor:
        return self.coefficients(y)

    def coefficients(self, images: torch.Tensor) -> torch.Tensor:
        """(N, k) coefficients of images (N, C, H, W) of the fitted size (differentiable in the images)."""
        x = images.flatten(1)
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"PixelPCA was fitted on images of {self.mean.shape[0]} values, got {x.shape[1]}")
        return (x - self.mean.to(x)) @ self.components.to(x).T

    def to(self, device: str | torch.device) -> "PixelPCA":
        """The same statistic with its tensors on ``device``."""
        return PixelPCA(self.mean.to(device), self.components.to(device), self.variance.to(device))

    def __len__(self) -> int:
        return self.components.shape[0]


def fit_pixel_pca(images: torch.Tensor, k: int) -> PixelPCA:
    """The ``k`` leading principal components of ``images`` (N, C, H, W), centred by their mean image, by an SVD
    in float64 (deterministic for the same images; each component's sign fixed so that its largest entry is
    positive). ``k`` is clamped to what the images allow: at most the pixel dimension D = C*H*W and N - 1 (the
    rank of N centred images); ``len(result)`` says how many were kept."""
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(f"need at least 2 images (N, C, H, W), got shape {tuple(images.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = images.flatten(1).double()
    n, d = x.shape
    k = min(k, d, n - 1)
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    comp = vh[:k]
    sign = torch.sign(comp.gather(1, comp.abs().argmax(1, keepdim=True)))
    comp = comp * torch.where(sign == 0, torch.ones_like(sign), sign)
    return PixelPCA(mean.float(), comp.float().contiguous(), (s[:k] ** 2 / (n - 1)).float())


def _loss(p: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean over (selected) channels of (phi - target)^2."""
    d = (p - target) ** 2
    if mask is not None:
        return (d * mask).sum(1) / mask.sum().clamp(min=1)
    return d.mean(1)


@dataclass
class MatchResult:
    """Outcome of one phi matching: the matched images and per-sample losses and iterations."""

    y: torch.Tensor
    loss_before: torch.Tensor
    loss_after: torch.Tensor
    iterations: torch.Tensor


def phi_match(
    model: UNet,
    y: torch.Tensor,
    target: torch.Tensor,
    lr: float = 0.01,
    max_iter: int = 100,
    rel_tol: float = 0.01,
    mask: torch.Tensor | None = None,
    block: str = "mid",
    phi_fn: PhiFn = None,
) -> MatchResult:
    """The projection of SPEC 4: Adam on y's pixels until each sample's phi loss < rel_tol * its first value.

    ``mask`` (C,) weights the channels of the loss (0: the channel is left free); ``phi_fn`` replaces
    the single-pass phi (the benchmark passes a whole-network version)."""
    phi_fn = phi_fn or phi_one_pass
    if target.shape != (y.shape[0], target.shape[-1]):
        raise ValueError(f"target phi must be (N, C) with N = {y.shape[0]}, got {tuple(target.shape)}")
    model.check_input(y.detach())
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    target = target.to(y.device)
    mask = mask.to(y.device).float() if mask is not None else None
    x = y.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    n = y.shape[0]
    done = torch.zeros(n, dtype=torch.bool, device=y.device)
    iters = torch.zeros(n, dtype=torch.long, device=y.device)
    first = last = None
    try:
        for it in range(max_iter + 1):
            loss = _loss(phi_fn(model, x, block), target, mask)
            if first is None:
                first = loss.detach().clone()
            last = torch.where(done, last, loss.detach()) if last is not None else loss.detach().clone()
            done = done | (last < rel_tol * first)
            if done.all() or it == max_iter:
                break
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            keep = x.detach().clone()
            opt.step()
            with torch.no_grad():
                x[done] = keep[done]  # finished samples stay where they stopped
            iters += (~done).long()
    finally:
        for p, r in zip(model.parameters(), req):
            p.requires_grad_(r)
    return MatchResult(x.detach(), first, last, iters)


def relative_phi_error(model: UNet, samples: torch.Tensor, target_phi: torch.Tensor) -> torch.Tensor:
    """Per-sample ||phi(sample) - phi_target|| / ||phi_target|| at sigma = 0 (how well phi was matched)."""
    p = phi_sigma(model, samples, 0.0)
    return (p - target_phi).norm(dim=1) / target_phi.norm(dim=1).clamp(min=1e-12)


def masked_phi_error(p: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per sample, ||(phi - target) on the masked channels|| / ||target on them|| (NaN when none is masked)."""
    m = mask.bool()
    if not m.any():
        return torch.full((p.shape[0],), float("nan"))
    t = target.reshape(-1, p.shape[1]).expand_as(p)
    return (p - t)[:, m].norm(dim=1) / t[:, m].norm(dim=1).clamp(min=1e-12)
