"""Regulon prior: signed DoRothEA TF → target edges as each gene's regulator and target profiles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer

from biojepa.data.genes import harmonise_symbols
from biojepa.errors import DataError
from biojepa.priors.base import GenePriors, centre_scale
from biojepa.priors.cache import cache_key, cached_priors
from biojepa.priors.network import PriorNetwork
from biojepa.priors.sources import source_path, staged_files

CONFIDENCE_LEVELS = ("A", "B", "C", "D", "E")
DEFAULT_LEVELS = ("A", "B", "C")


def regulon_source_file(data_dir: Path | None = None) -> Path:
    """The staged ``dorothea_hs.tsv.gz`` if present, else the OmniPath export fetched earlier."""
    staged = staged_files(["dorothea"], data_dir)
    return (staged[0] if staged else source_path("dorothea", data_dir)).resolve()


def read_regulons(path: Path) -> pd.DataFrame:
    """Edges ``tf, target, mor (+1/-1), confidence (A-E)`` from the staged table or an OmniPath TSV."""
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); delete it and fetch or stage it again") from exc
    if {"tf", "target", "mor", "confidence"} <= set(table.columns):
        edges = table[["tf", "target", "mor", "confidence"]].copy()
        edges["mor"] = np.sign(pd.to_numeric(edges["mor"], errors="coerce"))
    elif {
        "source_genesymbol",
        "target_genesymbol",
        "is_stimulation",
        "is_inhibition",
        "dorothea_level",
    } <= set(table.columns):
        stim = pd.to_numeric(table["is_stimulation"], errors="coerce")
        inhib = pd.to_numeric(table["is_inhibition"], errors="coerce")
        edges = pd.DataFrame(
            {
                "tf": table["source_genesymbol"],
                "target": table["target_genesymbol"],
                "mor": np.sign(stim - inhib),
                # An edge can carry several levels ("A;C"); keep the most confident.
                "confidence": table["dorothea_level"].map(lambda v: min(v.split(";")) if v else ""),
            }
        )
    else:
        raise DataError(
            f"{path} has columns {list(table.columns)}; expected DoRothEA (tf, confidence, target, mor) "
            "or an OmniPath interactions export with gene symbols and dorothea_level"
        )
    if edges["mor"].isna().any():
        raise DataError(f"{path}: non-numeric mode of regulation in {int(edges['mor'].isna().sum())} rows")
    return edges[edges["mor"] != 0].reset_index(drop=True)


def regulon_priors(
    data_dir: Path | None = None, *, levels: Sequence[str] = DEFAULT_LEVELS, n_components: int = 32
) -> GenePriors:
    """Regulon prior for every TF and target at the given confidence levels, centred and scaled.

    Each gene's raw vector is its signed regulator profile (which TFs act on it, with sign) next to
    its signed target profile (which genes it regulates, for TFs); columns are IDF weighted, rows
    L2-normalised, then reduced with TruncatedSVD. The signed edges themselves come along as the
    priors' ``network`` (:class:`PriorNetwork`). Cached in process and on disk.
    """
    bad = sorted(set(levels) - set(CONFIDENCE_LEVELS))
    if bad or not levels:
        raise DataError(f"confidence levels {bad or list(levels)} invalid; choose from {CONFIDENCE_LEVELS}")
    path = regulon_source_file(data_dir)
    params = {"levels": sorted(levels), "n_components": n_components}

    def build() -> GenePriors:
        edges = read_regulons(path)
        edges = edges[edges["confidence"].isin(levels)]
        names = pd.unique(pd.concat([edges["tf"], edges["target"]]))
        official = dict(zip(names, harmonise_symbols(list(names), data_dir), strict=True))
        edges = edges.assign(tf=edges["tf"].map(official), target=edges["target"].map(official))
        signs = edges.groupby(["tf", "target"])["mor"].sum().map(np.sign)
        signs = signs[signs != 0]
        genes = sorted(set(signs.index.get_level_values(0)) | set(signs.index.get_level_values(1)))
        index = {g: i for i, g in enumerate(genes)}
        rows = signs.index.get_level_values(0).map(index)
        cols = signs.index.get_level_values(1).map(index)
        regulation = sp.csr_matrix((signs.to_numpy(dtype=float), (rows, cols)), shape=(len(genes),) * 2)
        raw = sp.hstack([regulation.T, regulation]).tocsc()
        raw = raw[:, np.flatnonzero(raw.getnnz(axis=0) > 0)]
        if min(raw.shape) <= n_components:
            raise DataError(f"regulon matrix {raw.shape} is too small for n_components={n_components}")
        weighted = TfidfTransformer().fit_transform(raw)
        reduced = TruncatedSVD(n_components, random_state=0).fit_transform(weighted)
        network = PriorNetwork("dorothea", genes, regulation)
        return GenePriors("regulons", genes, centre_scale(reduced), network)

    return cached_priors(cache_key("regulons", [path], params), build)
