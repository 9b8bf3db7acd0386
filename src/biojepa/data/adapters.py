"""Source adapters: one function per file convention, each returning canonical raw AnnData.

Every adapter maps the source's perturbation labels to the canonical ones (``"control"``, ``"GENE"``,
sorted ``"A+B"``, compound names), fills ``perturbation_type``, ``dose`` (nM), ``time`` (h),
``context`` and ``batch``, harmonises gene symbols (var names and targets) with
:func:`biojepa.data.genes.harmonise_symbols`, keeps the source's other obs columns, and checks the
result with :func:`biojepa.data.schema.validate`. :func:`detect_convention` tells the conventions apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse

from biojepa.data.genes import harmonise_symbols
from biojepa.data.schema import (
    CONTROL,
    GENETIC_TYPES,
    OBS_COLUMNS,
    PERTURBATION_TYPES,
    UNS_KEY,
    join_perturbation,
    validate,
)
from biojepa.errors import DataError

log = logging.getLogger(__name__)

NO_BATCH = "all"
SYMBOL_COLUMNS = ("gene_name", "gene_symbols", "feature_name", "gene_symbol", "symbol")
BATCH_COLUMNS = ("gem_group", "batch", "replicate", "bio_rep")
GEARS_CONTROL = "ctrl"
REPLOGLE_CONTROL = "non-targeting"
SOURCE_TYPES = {
    "crispr": "crispr_ko",
    "crispr-cas9": "crispr_ko",
    "crisprko": "crispr_ko",
    "crispr_ko": "crispr_ko",
    "ko": "crispr_ko",
    "knockout": "crispr_ko",
    "crispri": "crispri",
    "crispra": "crispra",
    "drug": "compound",
    "compound": "compound",
    "small molecule": "compound",
}
DOSE_TO_NM = {"pm": 1e-3, "nm": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3, "mm": 1e6, "m": 1e9}
TIME_TO_H = {
    "h": 1.0,
    "hr": 1.0,
    "hour": 1.0,
    "hours": 1.0,
    "min": 1 / 60,
    "d": 24.0,
    "day": 24.0,
    "days": 24.0,
}


def from_canonical(adata: ad.AnnData) -> ad.AnnData:
    """Data already in the canonical schema (e.g. written by biojepa): validated and returned as a copy."""
    out = adata.copy()
    prepared = bool(out.uns.get(UNS_KEY, {}).get("log_normalised", False))
    validate(out, require_counts=not prepared or "counts" in out.layers)
    return out


def from_scperturb(
    adata: ad.AnnData,
    *,
    context: str | None = None,
    context_key: str | None = None,
    batch_key: str | None = None,
    perturbation_type: str | None = None,
) -> ad.AnnData:
    """scPerturb h5ad (Peidli et al. 2024): obs ``perturbation`` with control ``"control"``.

    Multi-gene labels are ``_``- or ``+``-joined (``"CEBPE_RUNX1T1"``); ``perturbation_type`` holds
    e.g. ``CRISPR`` / ``CRISPRi`` / ``drug``; compounds carry ``dose_value`` + ``dose_unit``; ``time``
    (+ ``time_unit``) where recorded. Context is ``context``, else the ``context_key`` column, else
    ``cell_line``. Batch is ``batch_key``, else the first of gem_group / batch / replicate / bio_rep.
    X holds raw counts.
    """
    obs = adata.obs
    _require_columns(obs, ["perturbation"], "scPerturb")
    labels = obs["perturbation"].astype(str)
    is_control = labels.eq(CONTROL).to_numpy()
    types = _perturbation_types(obs, is_control, perturbation_type)
    genetic = np.isin(types, GENETIC_TYPES)
    perturbations = [
        join_perturbation(label.replace("_", "+").split("+")) if is_gen else label
        for label, is_gen in zip(labels, genetic, strict=True)
    ]
    dose = _dose_nm(obs, types)
    return _assemble(
        adata,
        adata.X,
        perturbations=perturbations,
        types=types,
        dose=dose,
        time=_time_h(obs),
        context=_context(obs, context, context_key or "cell_line"),
        batch=_batch(obs, batch_key),
        source="scperturb",
    )


def from_gears(
    adata: ad.AnnData,
    *,
    perturbation_type: str | None = None,
    context: str | None = None,
) -> ad.AnnData:
    """GEARS ``perturb_processed.h5ad``: obs ``condition`` ``"ctrl"``, ``"A+ctrl"``, ``"A+B"``.

    Context is ``context``, else obs ``cell_type``. GEARS files are log-normalised (normalize_total +
    log1p) and keep no raw counts: the result carries ``uns["biojepa"]["log_normalised"] = True`` and
    ``["raw_counts"] = False`` so that preprocessing never logs them again. GEARS does not record the
    modality, so ``perturbation_type`` (crispri / crispr_ko / crispra) must be given.
    """
    obs = adata.obs
    _require_columns(obs, ["condition"], "GEARS")
    if perturbation_type is None:
        raise DataError(
            "GEARS files do not record the perturbation modality; pass perturbation_type "
            f"(one of {GENETIC_TYPES}; CLI: --perturbation-type)"
        )
    perturbations = [_gears_label(c) for c in obs["condition"].astype(str)]
    is_control = np.array([p == CONTROL for p in perturbations])
    X = adata.X
    logged = not _is_integer_matrix(X)
    out = _assemble(
        adata,
        X,
        perturbations=perturbations,
        types=_perturbation_types(obs, is_control, perturbation_type, read_column=False),
        dose=np.zeros(adata.n_obs),
        time=np.full(adata.n_obs, np.nan),
        context=_context(obs, context, "cell_type"),
        batch=_batch(obs, None),
        source="gears",
        require_counts=not logged,
    )
    if logged:
        out.uns[UNS_KEY].update(log_normalised=True, raw_counts=False)
        log.warning("GEARS file is already log-normalised and has no raw counts; it will not be logged again")
    return out


def from_replogle(
    adata: ad.AnnData,
    *,
    context: str | None = None,
    perturbation_type: str = "crispri",
    batch_key: str | None = "gem_group",
) -> ad.AnnData:
    """Replogle 2022 figshare+ single-cell h5ad: obs ``gene`` with control ``"non-targeting"``.

    Batch is ``gem_group``; var is indexed by Ensembl id with symbols in ``gene_name``. The files do
    not name the cell line, so ``context`` (e.g. ``"K562"``, ``"RPE1"``) must be given. X holds raw
    counts.
    """
    obs = adata.obs
    _require_columns(obs, ["gene"], "Replogle")
    if context is None:
        raise DataError(
            "Replogle files do not name the cell line; pass context (e.g. 'K562'; CLI: --context)"
        )
    perturbations = [
        CONTROL if g == REPLOGLE_CONTROL else join_perturbation([g]) for g in obs["gene"].astype(str)
    ]
    is_control = np.array([p == CONTROL for p in perturbations])
    return _assemble(
        adata,
        adata.X,
        perturbations=perturbations,
        types=_perturbation_types(obs, is_control, perturbation_type, read_column=False),
        dose=np.zeros(adata.n_obs),
        time=np.full(adata.n_obs, np.nan),
        context=np.full(adata.n_obs, context, dtype=object),
        batch=_batch(obs, batch_key),
        source="replogle",
    )


def from_cpa_norman(
    adata: ad.AnnData,
    *,
    context: str = "K562",
    perturbation_type: str = "crispra",
) -> ad.AnnData:
    """CPA-format Norman 2019 h5ad: obs ``condition`` (GEARS-style labels), ``dose_val``, ``control``.

    Raw counts are in ``layers["counts"]`` (X is normalised); var is indexed by Ensembl id with symbols
    in ``feature_name``. CPA labels every cell ``A549`` in ``cell_type``, but Norman 2019 is K562
    CRISPRa, which are the defaults here.
    """
    obs = adata.obs
    _require_columns(obs, ["condition"], "CPA-Norman")
    if "counts" not in adata.layers:
        raise DataError("CPA-format file lacks layers['counts']; the raw counts are needed")
    perturbations = [_gears_label(c) for c in obs["condition"].astype(str)]
    is_control = np.array([p == CONTROL for p in perturbations])
    return _assemble(
        adata,
        adata.layers["counts"],
        perturbations=perturbations,
        types=_perturbation_types(obs, is_control, perturbation_type, read_column=False),
        dose=np.zeros(adata.n_obs),
        time=np.full(adata.n_obs, np.nan),
        context=np.full(adata.n_obs, context, dtype=object),
        batch=_batch(obs, None),
        source="cpa_norman",
    )


ADAPTERS: dict[str, Callable[..., ad.AnnData]] = {
    "canonical": from_canonical,
    "scperturb": from_scperturb,
    "gears": from_gears,
    "replogle": from_replogle,
    "cpa_norman": from_cpa_norman,
}


def detect_convention(adata: ad.AnnData) -> str:
    """Name of the adapter (key of :data:`ADAPTERS`) whose convention ``adata`` follows."""
    columns = set(adata.obs.columns)
    if set(OBS_COLUMNS) <= columns:
        return "canonical"
    if "condition" in columns and "counts" in adata.layers and "dose_val" in columns:
        return "cpa_norman"
    if "condition" in columns:
        return "gears"
    if "gene" in columns:
        return "replogle"
    if "perturbation" in columns:
        return "scperturb"
    raise DataError(
        f"cannot tell the source convention from obs columns {sorted(columns)[:12]}; expected one of: "
        "canonical (perturbation, perturbation_type, dose, time, context, batch), scPerturb "
        "(perturbation), GEARS / CPA (condition), Replogle (gene)"
    )


def convert(adata: ad.AnnData, convention: str | None = None, **options) -> ad.AnnData:
    """Convert ``adata`` with the named adapter (auto-detected when ``convention`` is None)."""
    name = convention or detect_convention(adata)
    if name not in ADAPTERS:
        raise DataError(f"unknown source convention {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name](adata, **options)


def _gears_label(condition: str) -> str:
    parts = [p for p in condition.split("+") if p != GEARS_CONTROL]
    return join_perturbation(parts)


def _require_columns(obs: pd.DataFrame, columns: Sequence[str], convention: str) -> None:
    missing = [c for c in columns if c not in obs.columns]
    if missing:
        raise DataError(f"{convention} convention needs obs column(s) {missing}; found {list(obs.columns)}")


def _perturbation_types(
    obs: pd.DataFrame, is_control: np.ndarray, explicit: str | None, *, read_column: bool = True
) -> np.ndarray:
    """Canonical perturbation_type per cell: ``explicit`` if given, else mapped from the source column."""
    if explicit is not None:
        if explicit not in PERTURBATION_TYPES or explicit == CONTROL:
            raise DataError(f"perturbation_type {explicit!r} is not one of {PERTURBATION_TYPES[1:]}")
        types = np.full(len(obs), explicit, dtype=object)
    elif read_column and "perturbation_type" in obs.columns:
        raw = obs["perturbation_type"].astype(str).str.strip().str.lower()
        unknown = sorted(set(raw[~is_control]) - set(SOURCE_TYPES))
        if unknown:
            raise DataError(
                f"source perturbation_type value(s) {unknown} are not recognised; pass perturbation_type "
                f"explicitly (one of {PERTURBATION_TYPES[1:]})"
            )
        types = raw.map(SOURCE_TYPES).to_numpy(dtype=object)
    else:
        raise DataError(
            f"the perturbation modality is not recorded; pass perturbation_type {PERTURBATION_TYPES[1:]}"
        )
    types[is_control] = CONTROL
    return types


def _dose_nm(obs: pd.DataFrame, types: np.ndarray) -> np.ndarray:
    dose = np.zeros(len(obs))
    compound = types == "compound"
    if not compound.any() or "dose_value" not in obs.columns:
        return dose
    values = pd.to_numeric(obs["dose_value"], errors="coerce").to_numpy(dtype=float)
    units = obs["dose_unit"].astype(str).str.strip().str.lower() if "dose_unit" in obs.columns else None
    if units is None:
        raise DataError("compound doses (dose_value) have no dose_unit column; cannot convert them to nM")
    unknown = sorted(set(units[compound]) - set(DOSE_TO_NM))
    if unknown:
        raise DataError(f"unknown dose unit(s) {unknown}; known: {sorted(DOSE_TO_NM)}")
    factor = units.map(DOSE_TO_NM).to_numpy(dtype=float)
    dose[compound] = values[compound] * factor[compound]
    return dose


def _time_h(obs: pd.DataFrame) -> np.ndarray:
    if "time" not in obs.columns:
        return np.full(len(obs), np.nan)
    values = pd.to_numeric(obs["time"], errors="coerce").to_numpy(dtype=float)
    if "time_unit" not in obs.columns:
        return values
    units = obs["time_unit"].astype(str).str.strip().str.lower()
    unknown = sorted(set(units[np.isfinite(values)]) - set(TIME_TO_H))
    if unknown:
        raise DataError(f"unknown time unit(s) {unknown}; known: {sorted(TIME_TO_H)}")
    return values * units.map(TIME_TO_H).to_numpy(dtype=float)


def _context(obs: pd.DataFrame, context: str | None, key: str) -> np.ndarray:
    if context is not None:
        return np.full(len(obs), context, dtype=object)
    if key not in obs.columns:
        raise DataError(f"no obs column {key!r} names the cell context; pass context= or context_key=")
    return obs[key].astype(str).to_numpy(dtype=object)


def _batch(obs: pd.DataFrame, batch_key: str | None) -> np.ndarray:
    if batch_key is not None:
        if batch_key not in obs.columns:
            raise DataError(f"batch column {batch_key!r} not in obs; found {list(obs.columns)}")
        return obs[batch_key].astype(str).to_numpy(dtype=object)
    for key in BATCH_COLUMNS:
        if key in obs.columns:
            return obs[key].astype(str).to_numpy(dtype=object)
    return np.full(len(obs), NO_BATCH, dtype=object)


def _is_integer_matrix(matrix) -> bool:
    values = matrix.data if scipy.sparse.issparse(matrix) else np.asarray(matrix)
    sample = np.asarray(values).ravel()[:1_000_000]
    return bool(np.all(np.isfinite(sample)) and np.allclose(sample, np.round(sample)))


def _gene_symbols(var: pd.DataFrame) -> list[str]:
    """Var names as current gene symbols: a symbol column when the index holds Ensembl ids."""
    names = var.index.astype(str)
    if names.str.startswith("ENSG").mean() > 0.5:
        column = next((c for c in SYMBOL_COLUMNS if c in var.columns), None)
        if column is None:
            raise DataError(
                f"var is indexed by Ensembl ids and has none of the symbol columns {SYMBOL_COLUMNS}"
            )
        names = var[column].astype(str)
    return harmonise_symbols(list(names))


def _assemble(
    adata: ad.AnnData,
    X,
    *,
    perturbations: Sequence[str],
    types: np.ndarray,
    dose: np.ndarray,
    time: np.ndarray,
    context: np.ndarray,
    batch: np.ndarray,
    source: str,
    require_counts: bool = True,
) -> ad.AnnData:
    """Build the canonical AnnData from the converted columns; keep other obs columns and obsm."""
    targets = {p for p, t in zip(perturbations, types, strict=True) if t in GENETIC_TYPES}
    renamed = dict(zip(sorted(targets), _harmonise_labels(sorted(targets)), strict=True))
    obs = adata.obs.drop(columns=[c for c in OBS_COLUMNS if c in adata.obs.columns]).copy()
    obs["perturbation"] = pd.Categorical([renamed.get(p, p) for p in perturbations])
    obs["perturbation_type"] = pd.Categorical(types.astype(str))
    obs["dose"] = np.asarray(dose, dtype=float)
    obs["time"] = np.asarray(time, dtype=float)
    obs["context"] = pd.Categorical(np.asarray(context).astype(str))
    obs["batch"] = pd.Categorical(np.asarray(batch).astype(str))
    var = adata.var.copy()
    if "source_id" not in var.columns:
        var.insert(0, "source_id", var.index.astype(str))
    var.index = pd.Index(_gene_symbols(adata.var), name=None)
    matrix = X.copy() if scipy.sparse.issparse(X) else np.array(X)
    uns = {k: v for k, v in adata.uns.items() if k != UNS_KEY}
    out = ad.AnnData(X=matrix, obs=obs, var=var, obsm=dict(adata.obsm), uns=uns)
    out.var_names_make_unique()
    out.uns[UNS_KEY] = {"source_convention": source, "log_normalised": False, "raw_counts": True}
    validate(out, require_counts=require_counts)
    return out


def _harmonise_labels(labels: Sequence[str]) -> list[str]:
    return [join_perturbation(harmonise_symbols(label.split("+"))) for label in labels]
