"""Hallmark prior: membership of each gene in the 50 MSigDB Hallmark gene sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfTransformer

from biojepa.data.genes import harmonise_symbols
from biojepa.errors import DataError
from biojepa.priors.base import GenePriors, centre_scale
from biojepa.priors.cache import cache_key, cached_priors
from biojepa.priors.sources import source_path, staged_files


def hallmark_source_file(data_dir: Path | None = None) -> Path:
    """The staged Hallmark v7.0 GMT if present, else the current release fetched earlier."""
    staged = staged_files(["hallmark"], data_dir)
    return (staged[0] if staged else source_path("hallmark", data_dir)).resolve()


def read_gmt(path: Path) -> dict[str, list[str]]:
    """Gene sets of a GMT file: ``name <tab> description <tab> gene …`` per line."""
    sets: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); delete it and fetch or stage it again") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise DataError(f"{path}:{number}: a GMT line needs a name, a description and genes")
        sets[fields[0]] = [g for g in fields[2:] if g]
    if not sets:
        raise DataError(f"{path} holds no gene sets")
    return sets


def hallmark_priors(data_dir: Path | None = None) -> GenePriors:
    """One dimension per Hallmark set (IDF weighted, rows L2-normalised), centred and scaled.

    Covers the genes in at least one set (about 4.4k). Cached in process and on disk.
    """
    path = hallmark_source_file(data_dir)

    def build() -> GenePriors:
        sets = read_gmt(path)
        names = sorted({g for members in sets.values() for g in members})
        official = dict(zip(names, harmonise_symbols(names, data_dir), strict=True))
        genes = sorted(set(official.values()))
        index = {g: i for i, g in enumerate(genes)}
        membership = np.zeros((len(genes), len(sets)))
        for column, members in enumerate(sets.values()):
            membership[[index[official[g]] for g in members], column] = 1.0
        weighted = TfidfTransformer().fit_transform(membership).toarray()
        return GenePriors("hallmark", genes, centre_scale(weighted))

    return cached_priors(cache_key("hallmark", [path], {}), build)
