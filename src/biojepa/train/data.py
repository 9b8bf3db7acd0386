"""Tensors for training and prediction from prepared (log-normalised) AnnData."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse
import torch

from biojepa.data.schema import CONTROL, OBS_COLUMNS, UNS_KEY, Condition
from biojepa.errors import DataError


def check_prepared(adata: ad.AnnData) -> None:
    """Raise :class:`DataError` unless ``adata`` is prepared data (log-normalised once, canonical obs)."""
    if not adata.uns.get(UNS_KEY, {}).get("log_normalised", False):
        raise DataError(
            "expected prepared data (X = log1p(normalize_total)), but uns['biojepa']['log_normalised'] is "
            "not set; run `biojepa data prepare` (biojepa.data.preprocess.prepare) on the raw counts first"
        )
    missing = [c for c in (*OBS_COLUMNS, "log_library_size") if c not in adata.obs.columns]
    if missing:
        raise DataError(
            f"prepared data lacks obs column(s) {missing}; re-run biojepa.data.preprocess.prepare"
        )


def condition_of(row: pd.Series) -> Condition:
    return Condition(
        str(row["perturbation"]),
        str(row["context"]),
        str(row["perturbation_type"]),
        float(row["dose"]),
        float(row["time"]),
    )


@dataclass
class CellTable:
    """Dense expression, measured-gene mask, library size and condition labels of a set of cells."""

    x: torch.Tensor
    gene_mask: torch.Tensor
    log_library: torch.Tensor
    conditions: list[Condition]
    condition_index: np.ndarray  # per cell, index into ``conditions``; -1 for control cells
    context: np.ndarray
    batch: np.ndarray

    @property
    def is_control(self) -> np.ndarray:
        return self.condition_index < 0

    @classmethod
    def from_anndata(cls, adata: ad.AnnData, genes: Sequence[str]) -> CellTable:
        """Align ``adata`` to the model's ``genes``; genes it lacks are masked, never filled with 0."""
        check_prepared(adata)
        genes = list(genes)
        position = pd.Index(adata.var_names).get_indexer(genes)
        present = position >= 0
        if not present.any():
            raise DataError("none of the model's genes are measured in these cells; check the gene symbols")
        matrix = adata.X[:, position[present]]
        matrix = matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)
        x = np.zeros((adata.n_obs, len(genes)), dtype=np.float32)
        x[:, present] = matrix
        mask = np.broadcast_to(present, x.shape).astype(np.float32)
        obs = adata.obs
        labels = obs["perturbation"].astype(str).to_numpy()
        keys = pd.MultiIndex.from_frame(
            obs[["perturbation", "context", "perturbation_type", "dose", "time"]]
            .astype({"perturbation": str, "context": str, "perturbation_type": str})
            .fillna({"time": -1.0})
        )
        codes, uniques = pd.factorize(keys)
        conditions, remap = [], np.full(len(uniques), -1)
        for k, (pert, context, ptype, dose, time) in enumerate(uniques):
            if pert != CONTROL:
                remap[k] = len(conditions)
                conditions.append(
                    Condition(pert, context, ptype, float(dose), np.nan if time == -1.0 else time)
                )
        index = remap[codes]
        index[labels == CONTROL] = -1
        return cls(
            torch.from_numpy(x),
            torch.from_numpy(np.ascontiguousarray(mask)),
            torch.as_tensor(obs["log_library_size"].to_numpy(dtype=np.float32)),
            conditions,
            index,
            obs["context"].astype(str).to_numpy(),
            obs["batch"].astype(str).to_numpy(),
        )

    def subset(self, cells: np.ndarray) -> CellTable:
        """Cells selected by a boolean mask or index array (conditions re-indexed)."""
        idx = np.flatnonzero(cells) if cells.dtype == bool else np.asarray(cells)
        old = self.condition_index[idx]
        kept = np.unique(old[old >= 0])
        remap = np.full(len(self.conditions), -1)
        remap[kept] = np.arange(len(kept))
        return CellTable(
            self.x[idx],
            self.gene_mask[idx],
            self.log_library[idx],
            [self.conditions[i] for i in kept],
            np.where(old >= 0, remap[np.maximum(old, 0)], -1),
            self.context[idx],
            self.batch[idx],
        )


class ControlSampler:
    """Draws control (pre-state) cells of the same context, and of the same batch where it has controls."""

    def __init__(self, context: np.ndarray, batch: np.ndarray, is_control: np.ndarray) -> None:
        idx = np.flatnonzero(is_control)
        self.by_context: dict[str, np.ndarray] = {}
        self.by_batch: dict[tuple[str, str], np.ndarray] = {}
        for i in idx:
            self.by_context.setdefault(context[i], []).append(i)
            self.by_batch.setdefault((context[i], batch[i]), []).append(i)
        self.by_context = {k: np.asarray(v) for k, v in self.by_context.items()}
        self.by_batch = {k: np.asarray(v) for k, v in self.by_batch.items()}

    def contexts(self) -> set[str]:
        return set(self.by_context)

    def require(self, context: str) -> np.ndarray:
        if context not in self.by_context:
            raise DataError(
                f"no control cells in context {context!r}; predictions need control (pre-state) cells of "
                f"the same context. Contexts with controls: {sorted(self.by_context)}"
            )
        return self.by_context[context]

    def sample_matching(
        self, contexts: np.ndarray, batches: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One control per cell, from the cell's (context, batch) where it has controls, else its context."""
        out = np.empty(len(contexts), dtype=np.int64)
        keys = pd.MultiIndex.from_arrays([contexts, batches])
        codes, uniques = pd.factorize(keys)
        for k, (context, batch) in enumerate(uniques):
            rows = np.flatnonzero(codes == k)
            out[rows] = self.sample(context, len(rows), rng, batch)
        return out

    def sample(self, context: str, n: int, rng: np.random.Generator, batch: str | None = None) -> np.ndarray:
        pool = self.by_batch.get((context, batch)) if batch is not None else None
        if pool is None:
            pool = self.require(context)
        return rng.choice(pool, size=n, replace=True)


def pseudobulk_statistics(
    table: CellTable, cells: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Observed Δ and its squared standard error for each condition of ``table``, from ``cells`` only.

    The error is the cells' variance over their number plus the control cells' variance over theirs (a
    single cell adds no variance). ``cells`` (boolean, default all) restricts both sides to a subset.
    """
    use = np.ones(len(table.x), dtype=bool) if cells is None else cells
    deltas = torch.zeros(len(table.conditions), table.x.shape[1])
    variances = torch.zeros_like(deltas)
    controls = {}
    for context in np.unique(table.context[table.is_control & use]):
        x = table.x[np.flatnonzero(table.is_control & use & (table.context == context))]
        controls[context] = (x.mean(0), _mean_variance(x))
    for k, condition in enumerate(table.conditions):
        if condition.context not in controls:
            raise DataError(f"no control cells in context {condition.context!r} to compute Δ against")
        x = table.x[np.flatnonzero(use & (table.condition_index == k))]
        if len(x) == 0:
            continue
        mean, error = controls[condition.context]
        deltas[k] = x.mean(0) - mean
        variances[k] = _mean_variance(x) + error
    return deltas, variances


def _mean_variance(x: torch.Tensor) -> torch.Tensor:
    return x.var(0, correction=1) / len(x) if len(x) > 1 else torch.zeros(x.shape[1])


def targeted_gene_mask(
    conditions: Sequence[Condition], genes: Sequence[str] | None, n_genes: int
) -> torch.Tensor:
    """Boolean (conditions × genes): False where a gene is one of the condition's own targets.

    The benchmark scores every Δ with the targeted genes left out; fits that follow it do the same.
    ``genes`` names the columns (None: nothing is left out).
    """
    keep = torch.ones(len(conditions), n_genes, dtype=torch.bool)
    if genes is None:
        return keep
    column = {gene: j for j, gene in enumerate(genes)}
    for k, condition in enumerate(conditions):
        keep[k, [column[t] for t in condition.targets if t in column]] = False
    return keep
