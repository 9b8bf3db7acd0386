"""Denoising of measured pseudobulk Δs before they enter the effect memory (empirical Bayes, gene by gene).

A measured Δ is the true response plus sampling noise whose variance (the squared standard error) is known
from the cells. Each gene's true responses across the training conditions are given a prior fitted on those
same conditions, and a Δ is replaced by its posterior mean:

- ``none``: the raw Δ;
- ``normal``: a N(0, τ²) prior (Efron–Morris): Δ · τ² / (τ² + se²);
- ``spike_slab``: a mixture of "no response" (a point mass at 0) and N(0, τ²), fitted by EM; sparse
  responses keep their size while a gene's noise-level values go to 0.

``choose_shrinkage`` picks one per dataset by split-half validation on the training conditions: the cells
of every condition (and its controls) are halved, each rule denoises the Δs of one half, and the rule
whose Δs correlate best with the other half's raw Δs wins. Simulated screens, whose responses are sparse,
pick ``spike_slab``; on real data with many cells per perturbation ``none`` can win.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from biojepa.errors import DataError
from biojepa.train.data import CellTable, pseudobulk_statistics, targeted_gene_mask

Shrinker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AUTO = "auto"
_EM_ITERATIONS = 50


def _none(deltas: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    return deltas.clone()


def _normal(deltas: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    tau2 = (deltas.square().mean(0) - variances.mean(0)).clamp_min(0.0)
    denominator = tau2 + variances
    weight = torch.where(denominator > 0, tau2 / denominator.clamp_min(1e-30), torch.ones_like(deltas))
    return deltas * weight


def _spike_slab(deltas: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
    d2 = deltas.double().square()
    s2 = variances.double().clamp_min(1e-12)
    slab = (d2.mean(0) - s2.mean(0)).clamp_min(s2.mean(0)) * 5.0  # per gene, starts wide
    prior = torch.full_like(slab, 0.1)
    for _ in range(_EM_ITERATIONS):
        log_slab = -0.5 * d2 / (slab + s2) - 0.5 * torch.log(slab + s2)
        log_spike = -0.5 * d2 / s2 - 0.5 * torch.log(s2)
        responsibility = torch.sigmoid(log_slab - log_spike + torch.logit(prior))
        prior = responsibility.mean(0).clamp(1e-3, 1 - 1e-3)
        weight = responsibility.sum(0).clamp_min(1e-9)
        slab = ((responsibility * (d2 - s2)).sum(0) / weight).clamp_min(1e-6)
    return (responsibility * deltas.double() * slab / (slab + s2)).to(deltas.dtype)


SHRINKERS: dict[str, Shrinker] = {"none": _none, "normal": _normal, "spike_slab": _spike_slab}


def check_shrinkage(name: str) -> None:
    """Raise :class:`DataError` unless ``name`` is ``auto`` or a known rule."""
    if name != AUTO and name not in SHRINKERS:
        raise DataError(f"memory_shrinkage = {name!r} is not supported; use one of {[AUTO, *SHRINKERS]}")


def shrink_deltas(deltas: torch.Tensor, variances: torch.Tensor, rule: str = "spike_slab") -> torch.Tensor:
    """Posterior-mean Δs (conditions × genes) under ``rule`` given each Δ's squared standard error."""
    check_shrinkage(rule)
    if rule == AUTO:
        raise DataError("shrink_deltas needs a concrete rule; pick one with choose_shrinkage()")
    return SHRINKERS[rule](deltas, variances)


def choose_shrinkage(table: CellTable, genes: list[str], seed: int = 0) -> tuple[str, dict[str, float]]:
    """The rule whose denoised half-sample Δs best predict the other half (mean Pearson over conditions,
    the targeted genes left out, as in the benchmark). ``genes`` names the columns of ``table``.

    Returns the rule and every rule's score; ``none`` when no condition has 4+ cells to halve.
    """
    rng = np.random.default_rng(seed)
    first = rng.random(len(table.x)) < 0.5
    deltas, variances = pseudobulk_statistics(table, first)
    held_out, _ = pseudobulk_statistics(table, ~first)
    counts = np.bincount(table.condition_index[table.condition_index >= 0], minlength=len(table.conditions))
    usable = counts >= 4
    if not usable.any():
        return "none", {}
    scored = targeted_gene_mask(table.conditions, genes, len(genes))
    scores = {}
    for name, shrinker in SHRINKERS.items():
        shrunk = shrinker(deltas, variances)
        correlations = [
            _pearson(shrunk[k][scored[k]], held_out[k][scored[k]]) for k in np.flatnonzero(usable)
        ]
        scores[name] = float(np.mean(correlations))
    return max(scores, key=scores.get), scores


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))
