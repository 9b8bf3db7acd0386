"""Preprocessing: mild QC, ``normalize_total(1e4)`` + ``log1p`` exactly once, and train-only HVGs.

The default QC only removes cells with no detected gene and genes detected in no cell, so the
perturbation groups and the control population stay intact (a stricter filter, e.g. the low-MOI
guide-confidence filter, is opt-in). Whatever QC removes is recorded in ``uns["biojepa"]["qc"]``
and logged; a perturbation group that loses all its cells is named in the log, and losing every
control cell of a context is an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse

from biojepa.data.schema import CONTROL, UNS_KEY, validate
from biojepa.errors import DataError

log = logging.getLogger(__name__)

TARGET_SUM = 1e4
GUIDE_UMI_MIN = 5
GUIDE_UMI_RATIO = 2.0


def is_prepared(adata: ad.AnnData) -> bool:
    """Whether ``adata`` was already produced by :func:`prepare`."""
    return bool(adata.uns.get(UNS_KEY, {}).get("prepared", False))


def prepare(
    adata: ad.AnnData,
    *,
    dataset: str | None = None,
    min_genes: int = 1,
    min_cells: int = 1,
    guide_filter: bool = False,
) -> ad.AnnData:
    """Canonical raw AnnData → prepared AnnData (a new object; the input is not modified).

    QC keeps cells with at least ``min_genes`` detected genes and genes detected in at least
    ``min_cells`` cells; ``guide_filter`` also keeps only confidently assigned low-MOI cells
    (``grna_umi_max >= 5`` and ``> 2 × grna_umi_second``). Then ``layers["counts"]`` keeps the raw
    counts, obs gains ``n_genes`` and ``log_library_size`` (natural log of total counts), and ``X``
    becomes float32 ``log1p(normalize_total(1e4))``. Input that is already prepared is returned
    unchanged; input marked log-normalised without raw counts (GEARS) is QC-filtered but not
    normalised again, with a warning. Logged input passed as counts raises :class:`DataError`.
    """
    if is_prepared(adata):
        log.info("input is already prepared (log-normalised once); returning it unchanged")
        validate(adata, require_counts=False)
        return adata.copy()
    info = dict(adata.uns.get(UNS_KEY, {}))
    logged = bool(info.get("log_normalised", False))
    validate(adata, require_counts=not logged)
    matrix = _as_float32_csr(adata.layers["counts"] if not logged and "counts" in adata.layers else adata.X)
    qc = _quality_control(
        matrix, adata.obs, min_genes=min_genes, min_cells=min_cells, guide_filter=guide_filter
    )
    cells, genes = qc.pop("cell_mask"), qc.pop("gene_mask")
    out = adata.copy() if cells.all() and genes.all() else adata[cells, genes].copy()
    out.X = matrix[cells][:, genes]
    out.obs["n_genes"] = np.asarray((out.X > 0).sum(axis=1)).ravel().astype(np.int32)
    if logged:
        log.warning(
            "input is already log-normalised and has no raw counts (e.g. a GEARS file): skipping "
            "normalize_total/log1p; log_library_size is unknown (NaN)"
        )
        out.obs["log_library_size"] = np.full(out.n_obs, np.nan, dtype=np.float32)
    else:
        out.layers["counts"] = out.X.copy()
        totals = np.asarray(out.X.sum(axis=1)).ravel()
        out.obs["log_library_size"] = np.log(totals).astype(np.float32)
        sc.pp.normalize_total(out, target_sum=TARGET_SUM)
        sc.pp.log1p(out)
        out.X = _as_float32_csr(out.X)
    info.update(
        prepared=True,
        log_normalised=True,
        raw_counts=not logged,
        dataset=dataset or info.get("dataset", ""),
        normalisation=f"normalize_total(target_sum={TARGET_SUM:g}) + log1p, applied once",
        qc=qc,
    )
    out.uns[UNS_KEY] = info
    return out


def _as_float32_csr(matrix) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(matrix, dtype=np.float32)


def _quality_control(
    matrix: scipy.sparse.csr_matrix, obs: pd.DataFrame, *, min_genes: int, min_cells: int, guide_filter: bool
) -> dict:
    """Cell and gene masks over ``matrix`` (cells × genes) plus a JSON-able report of what they remove."""
    if min_genes < 1 or min_cells < 0:
        raise DataError(
            f"min_genes must be >= 1 (empty cells cannot be normalised) and min_cells >= 0; got "
            f"{min_genes}, {min_cells}"
        )
    detected = matrix > 0
    cell_mask = np.asarray(detected.sum(axis=1)).ravel() >= min_genes
    removed_low_genes = int((~cell_mask).sum())
    removed_guides = 0
    if guide_filter:
        guides = _confident_guides(obs)
        removed_guides = int((cell_mask & ~guides).sum())
        cell_mask &= guides
    gene_mask = np.asarray(detected[cell_mask].sum(axis=0)).ravel() >= min_cells
    groups_lost = _groups_lost(obs, cell_mask)
    if groups_lost:
        log.warning("QC removed every cell of %d group(s): %s", len(groups_lost), ", ".join(groups_lost))
    report = {
        "min_genes": min_genes,
        "min_cells": min_cells,
        "guide_filter": guide_filter,
        "cells_in": matrix.shape[0],
        "cells_removed_min_genes": removed_low_genes,
        "cells_removed_guide_filter": removed_guides,
        "genes_in": matrix.shape[1],
        "genes_removed_min_cells": int((~gene_mask).sum()),
        "groups_removed": ", ".join(groups_lost),
    }
    log.info("QC: %s", report)
    return {**report, "cell_mask": cell_mask, "gene_mask": gene_mask}


def _confident_guides(obs: pd.DataFrame) -> np.ndarray:
    missing = [c for c in ("grna_umi_max", "grna_umi_second") if c not in obs.columns]
    if missing:
        raise DataError(
            f"guide_filter needs obs columns {missing} (per-cell top and second gRNA UMI counts); "
            "this dataset does not record them, so run without the guide filter"
        )
    top = obs["grna_umi_max"].to_numpy(dtype=float)
    second = obs["grna_umi_second"].to_numpy(dtype=float)
    return (top >= GUIDE_UMI_MIN) & (top > GUIDE_UMI_RATIO * second)


def _groups_lost(obs: pd.DataFrame, keep: np.ndarray) -> list[str]:
    """``perturbation|context`` groups with cells before QC and none after; error if controls go."""
    keys = obs["perturbation"].astype(str) + "|" + obs["context"].astype(str)
    lost = sorted(set(keys) - set(keys[keep]))
    no_controls = [k for k in lost if k.split("|", 1)[0] == CONTROL]
    if no_controls:
        raise DataError(
            f"QC would remove every control cell of {no_controls}; relax the filters (min_genes, "
            "guide_filter) - deltas need control cells in each context"
        )
    return lost


def select_hvg(adata: ad.AnnData, train_mask: np.ndarray, n_top: int) -> np.ndarray:
    """Boolean mask over genes of the ``n_top`` highly variable genes among the ``train_mask`` cells.

    Ranked by scanpy's normalised dispersion (``highly_variable_genes``, Seurat flavour; ties broken
    by gene order) on log-normalised data of the
    training cells only (pass ``masks["train"] | masks["control"]`` from a split), so held-out cells
    never influence the gene selection.
    """
    if not adata.uns.get(UNS_KEY, {}).get("log_normalised", False):
        raise DataError("select_hvg needs log-normalised data; run biojepa.data.preprocess.prepare first")
    train_mask = np.asarray(train_mask, dtype=bool)
    if train_mask.shape != (adata.n_obs,):
        raise DataError(f"train_mask has shape {train_mask.shape}; expected ({adata.n_obs},)")
    if train_mask.sum() < 2:
        raise DataError("select_hvg needs at least 2 training cells")
    if n_top < 1:
        raise DataError(f"n_top must be positive, got {n_top}")
    if n_top >= adata.n_vars:
        return np.ones(adata.n_vars, dtype=bool)
    train = ad.AnnData(X=adata.X[train_mask], var=pd.DataFrame(index=adata.var_names))
    table = sc.pp.highly_variable_genes(train, n_top_genes=n_top, flavor="seurat", inplace=False)
    # scanpy may flag more than n_top genes when normalised dispersions tie; rank them to keep n_top.
    score = np.nan_to_num(table["dispersions_norm"].to_numpy(dtype=float), nan=-np.inf)
    mask = np.zeros(adata.n_vars, dtype=bool)
    mask[np.argsort(-score, kind="stable")[:n_top]] = True
    return mask


def load_prepared(path: str | Path) -> ad.AnnData:
    """Read a file written by ``biojepa data prepare``; :class:`DataError` if it is not prepared data."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prepared file {path} does not exist; create it with `biojepa data prepare`")
    try:
        adata = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"cannot read {path} as h5ad ({exc})") from exc
    if not is_prepared(adata):
        raise DataError(
            f"{path} is not prepared data (no uns['{UNS_KEY}']['prepared']); run "
            f"`biojepa data prepare {path} --out PREPARED.h5ad` first"
        )
    validate(adata, require_counts=False)
    return adata
