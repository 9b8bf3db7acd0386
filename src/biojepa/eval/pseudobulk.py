"""Pseudobulk Δ: mean log-normalised expression per condition minus the control mean of its context.

Every number of the benchmark is computed on these pseudobulks. A condition is one
:class:`~biojepa.data.schema.Condition` (perturbation, context, type, dose, time). Its Δ is the mean of
its cells' log-normalised expression minus the mean of the control cells of the same context. With
``control_by="batch"`` the control mean is instead re-weighted to the condition's batch composition
(Σ_b n_b/n · control mean of batch b), which removes batch shifts when conditions are unevenly spread
over batches. Conditions with fewer than ``min_cells`` cells are skipped with a warning and listed in
:attr:`PseudobulkDeltas.skipped`; they never get a number.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse
import scipy.stats

from biojepa.data.schema import CONTROL, UNS_KEY, Condition
from biojepa.errors import DataError
from biojepa.eval.ranksum import RankSumReference

ControlBy = Literal["context", "batch"]
_CONDITION_COLUMNS = ("perturbation", "context", "perturbation_type", "dose", "time")
DE_FDR = 0.05


@dataclass(frozen=True)
class PseudobulkDeltas:
    """Observed Δ of a set of conditions over a fixed gene list.

    ``de_genes[i, j]`` is True when gene j differs between the cells of condition i and the control
    cells of its context (two-sided Wilcoxon rank-sum test, Benjamini–Hochberg FDR < 0.05); it is None
    when the test was not run.
    """

    conditions: list[Condition]
    genes: np.ndarray
    deltas: np.ndarray
    n_cells: np.ndarray
    de_genes: np.ndarray | None = None
    skipped: list[tuple[Condition, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n, g = len(self.conditions), len(self.genes)
        if self.deltas.shape != (n, g):
            raise DataError(f"deltas have shape {self.deltas.shape}, expected ({n}, {g})")
        if self.de_genes is not None and self.de_genes.shape != (n, g):
            raise DataError(f"de_genes have shape {self.de_genes.shape}, expected ({n}, {g})")

    def condition_keys(self) -> list[tuple[str, str]]:
        """``(perturbation, context)`` of each condition, in row order."""
        return [(c.perturbation, c.context) for c in self.conditions]

    def subset(self, conditions: Sequence[Condition]) -> PseudobulkDeltas:
        """The rows of ``conditions`` in that order; a condition not present raises :class:`DataError`."""
        index = {condition_key(c): i for i, c in enumerate(self.conditions)}
        missing = [c for c in conditions if condition_key(c) not in index]
        if missing:
            raise DataError(
                f"{len(missing)} condition(s) have no observed pseudobulk, e.g. {missing[0]}; "
                "they were skipped (too few cells) or are not in this data"
            )
        rows = np.array([index[condition_key(c)] for c in conditions], dtype=int)
        return PseudobulkDeltas(
            conditions=list(conditions),
            genes=self.genes,
            deltas=self.deltas[rows],
            n_cells=self.n_cells[rows],
            de_genes=None if self.de_genes is None else self.de_genes[rows],
            skipped=list(self.skipped),
        )


def check_log_normalised(adata: ad.AnnData) -> None:
    """Raise :class:`DataError` unless ``adata`` was prepared (X = log1p of normalised counts)."""
    if not adata.uns.get(UNS_KEY, {}).get("log_normalised", False):
        raise DataError(
            "expression is not marked log-normalised (uns['biojepa']['log_normalised']); pseudobulks are "
            "taken on log1p(normalize_total) data — run biojepa.data.preprocess.prepare(adata) first"
        )


def condition_key(condition: Condition) -> tuple:
    """Hashable identity of a condition (NaN times compare equal, unlike on the dataclass itself)."""
    c = condition
    time = "nan" if np.isnan(c.time) else float(c.time)
    return (c.perturbation, c.context, c.perturbation_type, float(c.dose), time)


def cell_conditions(adata: ad.AnnData) -> tuple[np.ndarray, list[Condition | None]]:
    """Per-cell integer codes into a list of conditions (``None`` for the control group(s))."""
    missing = [c for c in _CONDITION_COLUMNS if c not in adata.obs.columns]
    if missing:
        raise DataError(f"obs lacks column(s) {missing} needed to group cells into conditions")
    obs = adata.obs
    table = pd.DataFrame(
        {
            "perturbation": obs["perturbation"].astype(str).to_numpy(),
            "context": obs["context"].astype(str).to_numpy(),
            "perturbation_type": obs["perturbation_type"].astype(str).to_numpy(),
            "dose": obs["dose"].astype(float).to_numpy(),
            "time": obs["time"].astype(float).to_numpy(),
        }
    )
    codes = table.groupby(list(_CONDITION_COLUMNS), sort=True, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(codes))).groupby(codes).first().sort_index().to_numpy()
    conditions: list[Condition | None] = []
    for pert, context, ptype, dose, time in table.iloc[first].itertuples(index=False, name=None):
        conditions.append(
            None if pert == CONTROL else Condition(pert, context, ptype, float(dose), float(time))
        )
    return codes, conditions


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if scipy.sparse.issparse(matrix) else matrix, dtype=np.float64)


def _mean_rows(matrix, rows: np.ndarray) -> np.ndarray:
    return np.asarray(matrix[rows].mean(axis=0, dtype=np.float64)).ravel()


def control_means(adata: ad.AnnData, *, by: ControlBy = "context") -> dict[tuple[str, ...], np.ndarray]:
    """Mean log-normalised expression of control cells per ``(context,)`` or ``(context, batch)``."""
    check_log_normalised(adata)
    obs = adata.obs
    is_control = (obs["perturbation"].astype(str) == CONTROL).to_numpy()
    if not is_control.any():
        raise DataError("no control cells (perturbation == 'control'): Δ needs a control population")
    if by not in ("context", "batch"):
        raise DataError(f"control_by must be 'context' or 'batch', not {by!r}")
    keys = ["context"] if by == "context" else ["context", "batch"]
    labels = obs.loc[is_control, keys].astype(str)
    out: dict[tuple[str, ...], np.ndarray] = {}
    control_rows = np.flatnonzero(is_control)
    matrix = adata.X  # once: a view subsets its parent on every access
    for key, positions in labels.groupby(keys, observed=True).indices.items():
        key_tuple = key if isinstance(key, tuple) else (key,)
        out[tuple(map(str, key_tuple))] = _mean_rows(matrix, control_rows[positions])
    return out


def _de_mask(cells: np.ndarray, controls: RankSumReference) -> np.ndarray:
    """Genes with BH-FDR < 0.05 in a two-sided Wilcoxon rank-sum test of ``cells`` vs ``controls``."""
    varying = (cells.std(axis=0) + controls.controls.std(axis=0)) > 0
    mask = np.zeros(cells.shape[1], dtype=bool)
    if not varying.any():
        return mask
    pvalues = controls.pvalues(cells)[varying]
    mask[varying] = scipy.stats.false_discovery_control(pvalues) < DE_FDR
    return mask


def pseudobulk_deltas(
    adata: ad.AnnData,
    conditions: Sequence[Condition] | None = None,
    *,
    min_cells: int = 2,
    control_by: ControlBy = "context",
    de: bool = True,
) -> PseudobulkDeltas:
    """Observed Δ of ``conditions`` (default: every non-control condition in ``adata``).

    ``adata`` must be log-normalised and hold the control cells of every context it is asked about.
    Conditions with fewer than ``min_cells`` cells (or absent) are skipped with a ``UserWarning``.
    ``de=True`` also runs the per-gene Wilcoxon test that :func:`biojepa.eval.metrics.de_overlap` needs.
    """
    if min_cells < 2:
        raise DataError(f"min_cells must be at least 2 (one cell is not a pseudobulk), not {min_cells}")
    check_log_normalised(adata)
    codes, all_conditions = cell_conditions(adata)
    code_of = {condition_key(c): i for i, c in enumerate(all_conditions) if c is not None}
    wanted = [c for c in all_conditions if c is not None] if conditions is None else list(conditions)
    controls = control_means(adata, by="context")
    batch_controls = control_means(adata, by="batch") if control_by == "batch" else {}
    is_control = (adata.obs["perturbation"].astype(str) == CONTROL).to_numpy()
    contexts = adata.obs["context"].astype(str).to_numpy()
    # read X once: on an AnnData view every ``.X`` access subsets the parent matrix again
    matrix = adata.X
    control_cells: dict[str, RankSumReference] = {}

    kept: list[Condition] = []
    skipped: list[tuple[Condition, int]] = []
    rows_delta, rows_de, n_cells = [], [], []
    for condition in wanted:
        if condition.is_control:
            raise DataError("control is the reference of every Δ and cannot be a condition to score")
        code = code_of.get(condition_key(condition))
        rows = np.flatnonzero(codes == code) if code is not None else np.zeros(0, dtype=int)
        if len(rows) < min_cells:
            skipped.append((condition, len(rows)))
            continue
        if (condition.context,) not in controls:
            raise DataError(
                f"context {condition.context!r} has no control cells, so {condition.perturbation!r} has "
                "no Δ; keep the control cells of every context in the AnnData"
            )
        mean = _mean_rows(matrix, rows)
        if control_by == "batch":
            reference = _batch_weighted_control(adata, rows, condition.context, batch_controls)
        else:
            reference = controls[(condition.context,)]
        rows_delta.append(mean - reference)
        if de:
            if condition.context not in control_cells:
                control_rows = np.flatnonzero(is_control & (contexts == condition.context))
                control_cells[condition.context] = RankSumReference(_dense(matrix[control_rows]))
            rows_de.append(_de_mask(_dense(matrix[rows]), control_cells[condition.context]))
        kept.append(condition)
        n_cells.append(len(rows))
    if skipped:
        listed = ", ".join(f"{c.perturbation}@{c.context} ({n} cells)" for c, n in skipped[:5])
        warnings.warn(
            f"skipped {len(skipped)} condition(s) with fewer than {min_cells} cells: {listed}",
            UserWarning,
            stacklevel=2,
        )
    n_genes = adata.n_vars
    return PseudobulkDeltas(
        conditions=kept,
        genes=np.asarray(adata.var_names.astype(str)),
        deltas=np.vstack(rows_delta) if rows_delta else np.zeros((0, n_genes)),
        n_cells=np.asarray(n_cells, dtype=int),
        de_genes=(np.vstack(rows_de) if rows_de else np.zeros((0, n_genes), bool)) if de else None,
        skipped=skipped,
    )


def _batch_weighted_control(
    adata: ad.AnnData, rows: np.ndarray, context: str, batch_controls: dict[tuple[str, ...], np.ndarray]
) -> np.ndarray:
    """Control mean re-weighted to the batch composition of the cells in ``rows``."""
    batches = adata.obs["batch"].astype(str).to_numpy()[rows]
    labels, counts = np.unique(batches, return_counts=True)
    missing = [b for b in labels if (context, b) not in batch_controls]
    if missing:
        raise DataError(
            f"batch(es) {missing} of context {context!r} have no control cells; use control_by='context'"
        )
    weights = counts / counts.sum()
    return sum(w * batch_controls[(context, b)] for w, b in zip(weights, labels, strict=True))
