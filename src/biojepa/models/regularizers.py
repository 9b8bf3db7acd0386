"""Anti-collapse regularisers computed over cells (the batch axis), and the effective-rank monitor."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sigreg(
    z: Tensor,
    n_slices: int = 256,
    n_knots: int = 17,
    t_max: float = 3.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sliced Epps–Pulley statistic of ``z`` (cells × dims) against the isotropic Gaussian (LeJEPA SIGReg).

    ``z`` is projected on ``n_slices`` random unit directions; for each projection the squared distance
    between its empirical characteristic function and ``exp(-t²/2)`` is integrated on ``n_knots`` points of
    ``[0, t_max]`` (trapezoid rule, doubled by symmetry, weight ``exp(-t²/2)``) and multiplied by the number
    of cells. The mean over slices is returned: about 1 for Gaussian cells, about 0.4·N when collapsed.
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"sigreg needs a (cells, dims) matrix with at least 2 cells, got {tuple(z.shape)}")
    n, d = z.shape
    directions = torch.randn(d, n_slices, generator=generator, dtype=torch.float32).to(z)
    directions = directions / directions.norm(dim=0, keepdim=True).clamp_min(1e-12)
    t = torch.linspace(0.0, t_max, n_knots, dtype=z.dtype, device=z.device)
    step = t_max / (n_knots - 1)
    weights = torch.full_like(t, 2.0 * step)
    weights[0] = weights[-1] = step
    gaussian_cf = torch.exp(-0.5 * t.square())
    weights = weights * gaussian_cf
    tu = (z @ directions).unsqueeze(-1) * t  # cells × slices × knots
    err = (tu.cos().mean(0) - gaussian_cf).square() + tu.sin().mean(0).square()
    return n * (err @ weights).mean()


def vicreg_variance(z: Tensor) -> Tensor:
    """VICReg variance hinge over cells: mean over dims of ``relu(1 − sqrt(Var(z_j) + 1e-4))`` (γ = 1)."""
    return torch.relu(1.0 - torch.sqrt(z.var(dim=0) + 1e-4)).mean()


def vicreg_covariance(z: Tensor) -> Tensor:
    """VICReg covariance term over cells: squared off-diagonal covariances summed, divided by the dims."""
    n, d = z.shape
    zc = z - z.mean(dim=0)
    c = (zc.T @ zc) / (n - 1)
    off = c - torch.diag(torch.diagonal(c))
    return off.square().sum() / d


def vicreg(z_a: Tensor, z_b: Tensor, sim: float = 25.0, std: float = 25.0, cov: float = 1.0) -> Tensor:
    """VICReg loss over cells: invariance (MSE), variance hinge (γ = 1, ε = 1e-4), off-diagonal covariance."""
    invariance = torch.nn.functional.mse_loss(z_a, z_b)
    variance = 0.5 * (vicreg_variance(z_a) + vicreg_variance(z_b))
    covariance = vicreg_covariance(z_a) + vicreg_covariance(z_b)
    return sim * invariance + std * variance + cov * covariance


def effective_rank(z: Tensor) -> float:
    """Roy–Vetterli effective rank of centred ``z`` (cells × dims): exp of the singular-value entropy."""
    zc = (z - z.mean(dim=0)).detach().float()
    s = torch.linalg.svdvals(zc)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(math.exp(-(p * p.log()).sum().item()))
