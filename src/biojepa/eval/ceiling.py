"""Split-half technical duplicate: the noise ceiling of every metric.

Convention. For each condition, its cells are shuffled and cut into two disjoint halves of
⌊n/2⌋ cells (an odd cell is left out); the control cells of each context are cut the same way. Half A
plays the prediction, half B the truth: Δ_A = mean(A cells) − mean(A controls), Δ_B likewise with the
B halves, so the two Δ share no cell and their agreement measures measurement noise only. The shuffle
of a condition depends only on ``seed`` and the condition itself, so the halves of a condition are
the same whichever other conditions are evaluated with it. A condition needs at least 4 cells
(2 per half); smaller ones are skipped with a warning.

A half-sample ceiling understates what is achievable against the full-n truth (both sides hold half
the cells); report it with the cell counts.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np

from biojepa.data.schema import CONTROL, Condition
from biojepa.eval.pseudobulk import (
    ControlBy,
    PseudobulkDeltas,
    cell_conditions,
    condition_key,
    pseudobulk_deltas,
)


@dataclass(frozen=True)
class SplitHalves:
    """Δ of half A (the stand-in prediction) and half B (the stand-in truth) of the same conditions."""

    predicted: PseudobulkDeltas
    observed: PseudobulkDeltas


def _stable_seed(seed: int, key: tuple) -> list[int]:
    return [seed, zlib.crc32(repr(key).encode())]


def _halve(rows: np.ndarray, seed: int, key: tuple) -> tuple[np.ndarray, np.ndarray]:
    shuffled = np.random.default_rng(_stable_seed(seed, key)).permutation(rows)
    half = len(shuffled) // 2
    return shuffled[:half], shuffled[half : 2 * half]


def split_half(
    adata: ad.AnnData,
    conditions: Sequence[Condition],
    *,
    seed: int = 0,
    min_cells: int = 2,
    control_by: ControlBy = "context",
) -> SplitHalves:
    """Split-half Δ of ``conditions`` (see the module docstring); ``min_cells`` applies per half."""
    codes, all_conditions = cell_conditions(adata)
    code_of = {condition_key(c): i for i, c in enumerate(all_conditions) if c is not None}
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    contexts = adata.obs["context"].astype(str).to_numpy()
    in_a = np.zeros(adata.n_obs, dtype=bool)
    in_b = np.zeros(adata.n_obs, dtype=bool)
    for context in dict.fromkeys(c.context for c in conditions):
        control_rows = np.flatnonzero((labels == CONTROL) & (contexts == context))
        a, b = _halve(control_rows, seed, (CONTROL, context))
        in_a[a], in_b[b] = True, True
    for condition in conditions:
        key = condition_key(condition)
        if key not in code_of:
            continue
        a, b = _halve(np.flatnonzero(codes == code_of[key]), seed, key)
        in_a[a], in_b[b] = True, True
    observed = pseudobulk_deltas(adata[in_b], conditions, min_cells=min_cells, control_by=control_by, de=True)
    predicted = pseudobulk_deltas(
        adata[in_a], observed.conditions, min_cells=min_cells, control_by=control_by, de=False
    )
    return SplitHalves(predicted=predicted, observed=observed)
