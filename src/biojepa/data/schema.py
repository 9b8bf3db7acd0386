"""The canonical AnnData schema every source adapter converts to.

``X`` holds raw counts (``layers["counts"]`` keeps them once normalised data is added) and ``obs``
carries the columns in :data:`OBS_COLUMNS`. A perturbation label is ``"control"``, a gene symbol,
a sorted ``+``-joined set of symbols (``"CBL+UBASH3B"``) or a compound name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse

from biojepa.errors import DataError

CONTROL = "control"
COMBO_SEP = "+"
PERTURBATION_TYPES = ("control", "crispri", "crispr_ko", "crispra", "compound")
GENETIC_TYPES = ("crispri", "crispr_ko", "crispra")
OBS_COLUMNS = ("perturbation", "perturbation_type", "dose", "time", "context", "batch")
# Keys of ``adata.uns`` the package writes.
UNS_KEY = "biojepa"


@dataclass(frozen=True)
class Condition:
    """One intervention in one cell context: the unit of pseudobulk evaluation."""

    perturbation: str
    context: str
    perturbation_type: str = "crispr_ko"
    dose: float = 0.0
    time: float = float("nan")

    @property
    def targets(self) -> tuple[str, ...]:
        """Genes (or compound names) the intervention acts on; empty for control."""
        return split_perturbation(self.perturbation)

    @property
    def is_control(self) -> bool:
        return self.perturbation == CONTROL


def split_perturbation(label: str) -> tuple[str, ...]:
    """``"A+B"`` → ``("A", "B")``; ``"control"`` → ``()``."""
    if label == CONTROL:
        return ()
    parts = tuple(p.strip() for p in str(label).split(COMBO_SEP) if p.strip())
    if not parts:
        raise DataError(f"empty perturbation label {label!r}")
    return parts


def join_perturbation(targets: Iterable[str]) -> str:
    """Canonical label of a set of targets: sorted, de-duplicated, ``+``-joined; ``control`` if empty."""
    unique = sorted({t.strip() for t in targets if t and t.strip() and t.strip() != CONTROL})
    return COMBO_SEP.join(unique) if unique else CONTROL


def validate(adata: ad.AnnData, *, require_counts: bool = True) -> None:
    """Raise :class:`DataError` unless ``adata`` follows the canonical schema.

    Checks the obs columns and their values, that control cells exist, that ``X`` (or
    ``layers["counts"]``) holds finite, non-negative integer counts when ``require_counts``.
    """
    missing = [c for c in OBS_COLUMNS if c not in adata.obs.columns]
    if missing:
        raise DataError(
            f"obs lacks the canonical column(s) {missing}; convert the data with a source adapter "
            "(biojepa.data.adapters) first"
        )
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise DataError(f"empty AnnData ({adata.n_obs} cells × {adata.n_vars} genes)")
    types = set(map(str, pd.unique(adata.obs["perturbation_type"])))
    unknown = types - set(PERTURBATION_TYPES)
    if unknown:
        raise DataError(
            f"unknown perturbation_type value(s) {sorted(unknown)}; allowed: {PERTURBATION_TYPES}"
        )
    is_control = adata.obs["perturbation"].astype(str) == CONTROL
    if not is_control.any():
        raise DataError("no control cells (perturbation == 'control'): deltas need a control population")
    bad_type = is_control != (adata.obs["perturbation_type"].astype(str) == "control")
    if bad_type.any():
        raise DataError(
            f"{int(bad_type.sum())} cell(s) have perturbation 'control' xor perturbation_type 'control'"
        )
    if not adata.var_names.is_unique:
        dups = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
        raise DataError(f"gene names are not unique (e.g. {dups}); aggregate or rename them first")
    if require_counts:
        check_counts(adata.layers.get("counts", adata.X))


def check_counts(matrix) -> None:
    """Raise :class:`DataError` unless ``matrix`` holds finite, non-negative integer counts."""
    values = np.asarray(matrix.data if scipy.sparse.issparse(matrix) else matrix)
    if values.size == 0:
        return
    if not np.all(np.isfinite(values)):
        raise DataError("expression matrix contains NaN or infinite values")
    if values.min() < 0:
        raise DataError("expression matrix has negative values: expected raw counts")
    sample = values[:1_000_000]
    if not np.allclose(sample, np.round(sample)):
        raise DataError(
            "expression matrix holds non-integer values: it looks normalised or log-transformed, "
            "but raw counts are required (pass the raw UMI counts, or the layer that holds them)"
        )
