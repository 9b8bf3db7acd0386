"""Load a dataset by registry name or h5ad path as canonical raw AnnData."""

from __future__ import annotations

from pathlib import Path

import anndata as ad

from biojepa.config import data_dir as default_data_dir
from biojepa.data.adapters import convert
from biojepa.data.registry import DATASETS, get_dataset
from biojepa.errors import DataError


def load_dataset(
    name_or_path: str | Path,
    *,
    context: str | None = None,
    perturbation_type: str | None = None,
    data_dir: Path | None = None,
) -> ad.AnnData:
    """Canonical raw AnnData (validated) for a registry name or an ``.h5ad`` path.

    A registry name is looked up in the data directory (``$BIOJEPA_DATA_DIR``) and converted with
    its registered adapter; an absent dataset raises :class:`DataError` telling how to fetch it. A
    path is read and its source convention (canonical, scPerturb, GEARS, Replogle, CPA-Norman)
    detected. ``context`` / ``perturbation_type`` override or supply what the file does not record.
    """
    overrides = {k: v for k, v in (("context", context), ("perturbation_type", perturbation_type)) if v}
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        entry = get_dataset(name_or_path)
        root = Path(data_dir) if data_dir is not None else default_data_dir()
        path = entry.local_path(root)
        if path is None:
            raise DataError(
                f"dataset {entry.name!r} is not in the data directory {root}; run "
                f"`biojepa data fetch {entry.name}` (or set BIOJEPA_DATA_DIR to where it is)"
            )
        options = dict(entry.adapter_options)
        if "context" in overrides:
            options.pop("context_key", None)
        options.update(overrides)
        return convert(_read(path), entry.adapter, **options)
    path = Path(name_or_path)
    if path.suffix != ".h5ad":
        get_dataset(str(name_or_path))  # raises the unknown-name error listing valid names
    if not path.is_file():
        raise DataError(f"file {path} does not exist; give a registry name or an existing .h5ad path")
    return convert(_read(path), None, **overrides)


def _read(path: Path) -> ad.AnnData:
    try:
        return ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(
            f"cannot read {path} as h5ad ({exc}); is the file complete and an AnnData file?"
        ) from exc
