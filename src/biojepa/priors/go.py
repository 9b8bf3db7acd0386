"""GO prior: each gene's bag of GO terms, propagated up the DAG, TF-IDF weighted and SVD-reduced."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors, centre_scale
from biojepa.priors.cache import cache_key, cached_priors
from biojepa.priors.go_data import GoData, go_source_files, load_go_data

ROOT_TERMS = frozenset({"GO:0008150", "GO:0003674", "GO:0005575"})
PROPAGATE_RELATIONS = ("is_a", "part_of")
ONTOLOGIES = ("BP", "MF", "CC")


def ancestor_closure(terms: Sequence[str], edges: pd.DataFrame) -> sp.csr_matrix:
    """Binary ``(n_terms, n_terms)`` matrix: row i marks term i and all its ancestors.

    ``edges`` (child, parent) among ``terms``; edges touching other terms are ignored.
    """
    index = {t: i for i, t in enumerate(terms)}
    inside = edges["child"].isin(index) & edges["parent"].isin(index)
    child = edges.loc[inside, "child"].map(index).to_numpy()
    parent = edges.loc[inside, "parent"].map(index).to_numpy()
    n = len(terms)
    step = sp.csr_matrix((np.ones(len(child)), (child, parent)), shape=(n, n))
    closure = sp.identity(n, format="csr")
    # Each pass extends every ancestor path by one edge; the ancestor sets only grow, so this stops.
    while True:
        grown = closure + closure @ step
        grown.data[:] = 1.0
        if grown.nnz == closure.nnz:
            return closure
        closure = grown.tocsr()


def propagated_annotations(
    go: GoData, ontologies: Sequence[str] = ONTOLOGIES
) -> tuple[list[str], list[str], sp.csr_matrix]:
    """Genes, terms and the binary gene × term matrix after propagation along is_a/part_of."""
    ann = go.annotations[go.annotations["ontology"].isin(ontologies)]
    if ann.empty:
        raise DataError(f"no GO annotations in ontologies {list(ontologies)}; use a subset of {ONTOLOGIES}")
    edges = go.edges[go.edges["relation"].isin(PROPAGATE_RELATIONS)]
    terms = sorted(set(ann["go_id"]) | set(edges["child"]) | set(edges["parent"]))
    genes = sorted(ann["symbol"].unique())
    term_index = {t: i for i, t in enumerate(terms)}
    gene_index = {g: i for i, g in enumerate(genes)}
    direct = sp.csr_matrix(
        (np.ones(len(ann)), (ann["symbol"].map(gene_index), ann["go_id"].map(term_index))),
        shape=(len(genes), len(terms)),
    )
    full = (direct @ ancestor_closure(terms, edges)).tocsr()
    full.data[:] = 1.0
    return genes, terms, full


def go_priors(
    data_dir: Path | None = None,
    *,
    n_components: int = 64,
    ontologies: Sequence[str] = ONTOLOGIES,
    min_genes: int = 2,
) -> GenePriors:
    """GO prior for every annotated gene (about 20k), centred and scaled.

    Terms annotated to fewer than ``min_genes`` genes and the three root terms are dropped; the
    gene × term matrix is TF-IDF weighted (rare terms count more) and reduced with TruncatedSVD.
    Cached in process and on disk.
    """
    files = go_source_files(data_dir)
    params = {"n_components": n_components, "ontologies": sorted(ontologies), "min_genes": min_genes}

    def build() -> GenePriors:
        genes, terms, matrix = propagated_annotations(load_go_data(data_dir), ontologies)
        counts = np.asarray(matrix.sum(axis=0)).ravel()
        matrix = matrix[:, (counts >= min_genes) & ~np.isin(terms, list(ROOT_TERMS))]
        annotated = np.flatnonzero(matrix.getnnz(axis=1) > 0)
        if min(annotated.size, matrix.shape[1]) <= n_components:
            raise DataError(
                f"GO matrix of {annotated.size} genes x {matrix.shape[1]} terms after filtering is too "
                f"small for n_components={n_components}; "
                "lower n_components or min_genes"
            )
        weighted = TfidfTransformer().fit_transform(matrix[annotated])
        reduced = TruncatedSVD(n_components, random_state=0).fit_transform(weighted)
        return GenePriors("go", [genes[i] for i in annotated], centre_scale(reduced))

    return cached_priors(cache_key("go", files, params), build)
