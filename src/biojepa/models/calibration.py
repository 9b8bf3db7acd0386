"""Calibration of the predictive distribution: interval coverage, and a variance scale fitted on validation.

**Predictive distribution.** Log-normalised expression is never negative and mostly exact zeros (77 % of the
held-out Papalexi values), which a Gaussian cannot describe: read as ``N(X, variance)``, the decoder puts a
third of its mass below zero, its 50 % intervals hold a quarter of the positive values, and scaling its
variance to reach the nominal levels stretches the 90 % intervals to about -4.5 … 5.4. So each predicted cell
is read as a *censored* Gaussian, ``max(0, L)`` with ``L ~ N(μ, variance)``, whose location ``μ``
(:func:`censored_location`) makes its mean the decoder's mean ``X``: a zero is "``L`` at or below zero", with
probability ``Φ(-μ / σ)``, and the distribution keeps the predicted mean. Its quantile at ``q`` is
``max(0, μ + σ Φ⁻¹(q))``. A population of post-intervention cells is the mixture over pre-cells
(:func:`mixture_samples`).

**Coverage.** The central interval at level ``a`` holds the PIT values in ``[(1 - a) / 2, (1 + a) / 2]``. A
positive value ``y`` has the PIT ``F(y)``; a zero has the PIT range ``[0, F(0)]`` and counts by the share of
that range inside the interval (the non-randomised PIT of Czado, Gneiting & Held 2009, Biometrics 65:1254).
A calibrated model covers about ``a`` at every level. The closed-interval count (``split_zeros=False``),
which counts every zero as covered once the interval reaches zero, over-covers even for the true
distribution: with 77 % zeros the true 50 % interval is ``[0, 0]`` and covers 77 %.

**Calibration** (:func:`fit_variance_scale`). Each gene's decoder variance is multiplied by a scale
``s_g`` chosen on the validation conditions' cells, never on test cells: the one that minimises the mean
squared gap between coverage and level over the levels 0.05, 0.10, …, 0.95, searched in powers of two from
2⁻⁶ to 2⁶ and refined to steps of 2^¼. The scaled variance is that of the latent ``L``; ``X`` is unchanged,
so a larger scale moves mass both to zero and to high values. Every level uses the same calibrated
``layers["variance"]``; a model fitted without validation cells keeps ``s_g = 1`` and says it is
uncalibrated.

Run ``python -m biojepa.models.calibration --dataset papalexi2021 --seed 1 --out FILE.json`` to fit the
model on an unseen-perturbation split and score its uncalibrated and calibrated intervals on the held-out
perturbations.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import scipy.sparse
import scipy.special
import torch
from torch import Tensor

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.train.data import CellTable

if TYPE_CHECKING:
    from biojepa.models.world_model import WorldModel

LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))
LOG2_SCALE_RANGE = 6.0
PRE_CELLS = 256  # control pre-cells per validation condition; two draws each from its distribution
MAX_CELLS = 256  # observed validation cells per condition
MAX_CONDITIONS = 8  # validation conditions used (those with the most cells)
REPORTED = (0.5, 0.8, 0.9)  # levels written by main()


# E[max(0, t + Z)], Z ~ N(0, 1), tabulated for inverting it: increasing, ≈ t beyond t = 40
_T = np.linspace(-12.0, 40.0, 20_001)
_CENSORED_MEAN = _T * scipy.special.ndtr(_T) + np.exp(-0.5 * _T**2) / np.sqrt(2 * np.pi)


def censored_location(mean: Tensor, variance: Tensor) -> Tensor:
    """Location ``μ`` of ``L ~ N(μ, variance)`` such that ``E[max(0, L)] = mean`` (elementwise).

    A mean at or below zero gets ``μ = -12 σ``: the distribution is then a point mass at zero.
    """
    sd = variance.sqrt()
    ratio = (mean / sd).clamp_min(0).numpy()
    t = np.where(ratio > _CENSORED_MEAN[-1], ratio, np.interp(ratio, _CENSORED_MEAN, _T))
    return torch.as_tensor(t, dtype=mean.dtype) * sd


def mixture_samples(mean: Tensor, variance: Tensor, noise: Tensor) -> Tensor:
    """Samples ``max(0, μ + σ ε)`` of each pre-cell's censored Gaussian (rows of ``mean`` / ``variance``).

    ``noise`` holds the standard normal draws ``ε``, shaped ``(draws, *mean.shape)``; rows are stacked.
    """
    location = censored_location(mean, variance)
    return (location + noise * variance.sqrt()).clamp_min(0).reshape(-1, mean.shape[1])


def pit_ranges(samples: Tensor, observed: Tensor) -> tuple[Tensor, Tensor]:
    """PIT range ``(low, high)`` of each observed value (cells × genes) under the sampled predictive.

    ``samples`` (draws × genes) represent the predictive distribution. A positive value ``y`` has the point
    ``F(y)`` (low = high); an exact zero, censored, has ``[0, F(0)]``.
    """
    ordered = samples.T.contiguous().sort(dim=1).values
    cdf = torch.searchsorted(ordered, observed.T.contiguous(), right=True).T / samples.shape[0]
    return torch.where(observed <= 0, torch.zeros_like(cdf), cdf), cdf


def covered_share(low: Tensor, high: Tensor, levels: Tensor, split_zeros: bool = True) -> Tensor:
    """Share of each PIT range inside the central interval of each level (levels × cells × genes).

    ``split_zeros=False`` counts a range as covered as soon as it touches the interval (closed intervals).
    """
    lo = ((1 - levels) / 2).reshape(-1, 1, 1)
    hi = ((1 + levels) / 2).reshape(-1, 1, 1)
    overlap = torch.minimum(high, hi) - torch.maximum(low, lo)
    touches = (overlap >= 0).to(low.dtype)
    if not split_zeros:
        return touches
    width = high - low
    return torch.where(width > 0, overlap.clamp_min(0) / width.clamp_min(1e-12), touches)


def interval_coverage(
    predicted: ad.AnnData,
    observed: ad.AnnData,
    levels: tuple[float, ...] = (0.5, 0.9),
    seed: int = 0,
    split_zeros: bool = True,
) -> dict[float, float]:
    """Share of observed expression values inside the predicted central intervals, per level.

    The predictive distribution is the mixture over ``predicted``'s rows (pre-cells) of their censored
    Gaussians, one draw each; zeros count as the module docstring says (``split_zeros=False``: closed
    intervals).
    """
    mean = torch.as_tensor(np.asarray(predicted.X), dtype=torch.float64)
    variance = torch.as_tensor(np.asarray(predicted.layers["variance"]), dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((1, *mean.shape), generator=generator, dtype=mean.dtype)
    values = observed[:, list(predicted.var_names)].X
    values = values.toarray() if scipy.sparse.issparse(values) else np.asarray(values)
    low, high = pit_ranges(mixture_samples(mean, variance, noise), torch.as_tensor(values, dtype=mean.dtype))
    share = covered_share(low, high, torch.tensor(levels, dtype=mean.dtype), split_zeros)
    return {level: float(s) for level, s in zip(levels, share.mean(dim=(1, 2)), strict=True)}


@dataclass
class _Group:
    """One validation condition: its pre-cells' predictions, fixed draws, and its observed cells."""

    mean: Tensor
    variance: Tensor
    noise: Tensor
    observed: Tensor
    gene_mask: Tensor


def _coverage_error(groups: Sequence[_Group], log2_scale: Tensor, levels: Tensor) -> Tensor:
    """Per gene, the mean squared gap between coverage (pooled over groups) and level at these scales."""
    covered = torch.zeros(len(levels), len(log2_scale))
    counts = torch.zeros(len(log2_scale))
    scale = torch.exp2(log2_scale)
    for g in groups:
        low, high = pit_ranges(mixture_samples(g.mean, g.variance * scale, g.noise), g.observed)
        covered += (covered_share(low, high, levels) * g.gene_mask).sum(1)
        counts += g.gene_mask.sum(0)
    return (covered / counts.clamp_min(1) - levels.unsqueeze(1)).square().mean(0)


def fit_variance_scale(model: WorldModel, cells: ad.AnnData, seed: int = 0) -> Tensor | None:
    """Per-gene scale of the decoder variance fitted on ``cells``: validation cells plus control cells.

    Each validation condition (up to :data:`MAX_CONDITIONS`, those with the most cells) is predicted from up
    to :data:`PRE_CELLS` control cells of its context by ``model.predict``, whose variances must be the
    decoder's own (uncalibrated). Returns None when no validation condition can be predicted; see the module
    docstring for the method.
    """
    table = CellTable.from_anndata(cells, model.genes)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    controls = cells[table.is_control]
    control_context = controls.obs["context"].astype(str).to_numpy()
    sizes = np.bincount(table.condition_index[~table.is_control], minlength=len(table.conditions))
    groups: list[_Group] = []
    for k in np.argsort(-sizes, kind="stable")[:MAX_CONDITIONS]:
        condition = table.conditions[k]
        pool = np.flatnonzero(control_context == condition.context)
        if not len(pool):
            continue
        try:
            predicted = model.predict(
                controls[rng.choice(pool, min(PRE_CELLS, len(pool)), replace=False)], [condition]
            )
        except DataError:
            continue
        rows = np.flatnonzero(table.condition_index == k)
        rows = rng.choice(rows, min(MAX_CELLS, len(rows)), replace=False)
        mean = torch.as_tensor(predicted.X)
        noise = torch.randn((2, *mean.shape), generator=generator)
        groups.append(
            _Group(
                mean,
                torch.as_tensor(predicted.layers["variance"]),
                noise,
                table.x[rows],
                table.gene_mask[rows],
            )
        )
    if not groups:
        return None
    levels = torch.tensor(LEVELS)
    # nearest to 1 first: where the scale makes no difference (e.g. a gene predicted all zero) it stays 1
    grid = torch.arange(-LOG2_SCALE_RANGE, LOG2_SCALE_RANGE + 1)
    grid = grid[grid.abs().argsort(stable=True)]
    errors = torch.stack([_coverage_error(groups, torch.full((len(model.genes),), g), levels) for g in grid])
    error, index = errors.min(0)
    best = grid[index]
    for step in (0.5, 0.25):
        for candidate in (best - step, best + step):
            candidate = candidate.clamp(-LOG2_SCALE_RANGE, LOG2_SCALE_RANGE)
            candidate_error = _coverage_error(groups, candidate, levels)
            better = candidate_error < error
            best, error = torch.where(better, candidate, best), torch.where(better, candidate_error, error)
    return torch.exp2(best)


def _coverage_report(predicted: ad.AnnData, cells: ad.AnnData) -> dict[str, dict[str, float]]:
    """Coverage at :data:`REPORTED` levels (keyed in percent) with its mean gap to the level over
    :data:`LEVELS`, and the closed-interval count (suffix ``_closed``)."""
    split = interval_coverage(predicted, cells, LEVELS)
    closed = interval_coverage(predicted, cells, REPORTED, split_zeros=False)
    gap = float(np.mean([abs(v - level) for level, v in split.items()]))
    return {
        "": {str(round(k * 100)): split[k] for k in REPORTED} | {"mean_gap": gap},
        "_closed": {str(round(k * 100)): v for k, v in closed.items()},
    }


def main() -> None:
    """Fit on one split and write the uncalibrated and calibrated coverage of each held-out perturbation."""
    from biojepa.data.splits import make_split
    from biojepa.eval.benchmark import load_benchmark_data
    from biojepa.models.world_model import WorldModel
    from biojepa.train.checkpoints import atomic_write_bytes

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="papalexi2021")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    adata = load_benchmark_data(args.dataset)
    split = make_split(adata, "unseen_perturbation", args.seed)
    masks = split.cell_masks(adata)
    model = WorldModel().fit(adata, masks["train"], masks["val"] if masks["val"].any() else None)
    scale = model.variance_scale.numpy() if model.variance_scale is not None else np.ones(len(model.genes))
    controls = adata[masks["control"]]
    controls = controls[
        np.random.default_rng(0).choice(controls.n_obs, min(1000, controls.n_obs), replace=False)
    ]
    rows = []
    for perturbation, context in sorted(split.test):
        cells = adata[(adata.obs["perturbation"] == perturbation) & (adata.obs["context"] == context)]
        ptype = str(cells.obs["perturbation_type"].iloc[0])
        condition = Condition(perturbation, context, ptype)
        predicted = model.predict(controls[controls.obs["context"] == context], [condition])
        raw = predicted.copy()
        raw.layers["variance"] = predicted.layers["variance"] / scale
        values = cells[:, list(predicted.var_names)].X
        values = values.toarray() if scipy.sparse.issparse(values) else np.asarray(values)
        row = {"perturbation": perturbation, "context": context, "cells": cells.n_obs}
        row["zero_fraction"] = float((values == 0).mean())
        for name, pred in (("uncalibrated", raw), ("calibrated", predicted)):
            row |= {name + suffix: cov for suffix, cov in _coverage_report(pred, cells).items()}
        rows.append(row)
    keys = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    report = {
        "command": f"python -m biojepa.models.calibration --dataset {args.dataset} --seed {args.seed} "
        f"--out {args.out}",
        "split": "unseen_perturbation",
        "seed": args.seed,
        "validation": [list(key) for key in split.val],
        "calibrated": model.variance_scale is not None,
        "coverage": "share of observed values in the central predictive interval of each level (keys: level "
        "in %); an exact zero counts by the share of its PIT range [0, F(0)] inside the interval; mean_gap: "
        "mean |coverage - level| over the levels 0.05, 0.10, ..., 0.95; *_closed: a zero counts as covered "
        "whenever the interval reaches zero",
        "variance_scale_quantiles": {
            str(q): float(np.quantile(scale, q)) for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
        },
        "median_zero_fraction": float(np.median([r["zero_fraction"] for r in rows])),
        "median": {k: {lv: float(np.median([r[k][lv] for r in rows])) for lv in rows[0][k]} for k in keys},
        "per_perturbation": rows,
    }
    atomic_write_bytes(args.out, (json.dumps(report, indent=2) + "\n").encode())
    print(json.dumps(report | {"per_perturbation": len(rows)}, indent=2))


if __name__ == "__main__":
    main()
