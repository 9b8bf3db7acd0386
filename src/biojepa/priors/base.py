"""The gene-prior container shared by every prior source, and how blocks are combined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, reduce
from pathlib import Path

import numpy as np

from biojepa.data.genes import harmonise_symbols
from biojepa.errors import DataError
from biojepa.priors.network import PriorNetwork


@dataclass(frozen=True, eq=False)
class GenePriors:
    """Per-gene feature vectors from one source (or several, concatenated).

    ``genes`` are official human symbols (unique); ``features`` is float32 ``(len(genes), dim)``;
    ``network`` holds the source's known signed regulatory edges, when it has them (regulons, a simulated
    network), so that a model can read off which genes a target acts on.
    """

    name: str
    genes: list[str]
    features: np.ndarray
    network: PriorNetwork | None = None

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float32)
        genes = [str(g) for g in self.genes]
        if features.ndim != 2 or features.shape[0] != len(genes):
            raise DataError(
                f"prior {self.name!r}: features of shape {features.shape} do not match {len(genes)} genes; "
                "expected a 2-D array with one row per gene"
            )
        if len(set(genes)) != len(genes):
            raise DataError(
                f"prior {self.name!r}: gene list has duplicates; harmonise and de-duplicate first"
            )
        if not np.isfinite(features).all():
            raise DataError(f"prior {self.name!r}: features contain NaN or infinite values")
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "genes", genes)

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return int(self.features.shape[1])

    def __len__(self) -> int:
        return len(self.genes)

    @cached_property
    def _row(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.genes)}

    def rows(
        self, genes: Sequence[str], *, harmonise: bool = True, data_dir: Path | None = None
    ) -> np.ndarray:
        """Row index of each gene, -1 where unknown. Names not found as given are harmonised first."""
        rows = np.array([self._row.get(g, -1) for g in genes], dtype=np.int64)
        missing = np.flatnonzero(rows < 0)
        if harmonise and missing.size:
            renamed = harmonise_symbols([genes[i] for i in missing], data_dir)
            rows[missing] = [self._row.get(g, -1) for g in renamed]
        return rows

    def lookup(
        self, genes: Sequence[str], *, harmonise: bool = True, data_dir: Path | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features ``(len(genes), dim)`` and a known mask; unknown genes get zero rows and ``False``.

        With ``harmonise`` (default) aliases and previous symbols are mapped to the official symbol,
        which needs the gene table in ``data_dir``; pass ``harmonise=False`` for non-human gene names.
        """
        rows = self.rows(genes, harmonise=harmonise, data_dir=data_dir)
        known = rows >= 0
        out = np.zeros((len(genes), self.dim), dtype=np.float32)
        out[known] = self.features[rows[known]]
        return out, known

    def coverage(
        self, genes: Sequence[str], *, harmonise: bool = True, data_dir: Path | None = None
    ) -> float:
        """Fraction of ``genes`` that have a prior vector here."""
        if not genes:
            raise DataError("coverage of an empty gene list is undefined; pass at least one gene")
        return float((self.rows(genes, harmonise=harmonise, data_dir=data_dir) >= 0).mean())

    def subset(
        self, genes: Sequence[str], *, harmonise: bool = True, data_dir: Path | None = None
    ) -> GenePriors:
        """The known genes among ``genes``, in the given order (first occurrence kept)."""
        rows = self.rows(genes, harmonise=harmonise, data_dir=data_dir)
        keep = list(dict.fromkeys(int(r) for r in rows if r >= 0))
        return GenePriors(self.name, [self.genes[r] for r in keep], self.features[keep], self.network)


def centre_scale(features: np.ndarray) -> np.ndarray:
    """Centre each column over genes and scale so the mean squared row norm is 1.

    Centring removes the direction all genes share (otherwise every pair of genes looks alike);
    the common scale lets blocks from different sources be concatenated without one dominating.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise DataError(f"need at least 2 genes to centre prior features, got shape {x.shape}")
    x = x - x.mean(axis=0, keepdims=True)
    scale = np.sqrt((x**2).sum(axis=1).mean())
    if scale == 0:
        raise DataError("prior features are identical for every gene; the source carries no information")
    return (x / scale).astype(np.float32)


def combine(*priors: GenePriors, name: str | None = None) -> GenePriors:
    """Concatenate prior blocks over the union of their genes.

    Each block is centred and scaled (:func:`centre_scale`) over its own genes, then divided by
    sqrt(number of blocks) so the combined vectors have mean squared norm about 1. A gene absent from
    a block gets that block's mean (zero after centring), i.e. no information from it. The blocks'
    networks are merged (:meth:`PriorNetwork.merge`).
    """
    if not priors:
        raise DataError("combine() needs at least one GenePriors")
    genes = list(dict.fromkeys(g for p in priors for g in p.genes))
    row = {g: i for i, g in enumerate(genes)}
    weight = 1.0 / np.sqrt(len(priors))
    blocks = []
    for prior in priors:
        block = np.zeros((len(genes), prior.dim), dtype=np.float32)
        block[[row[g] for g in prior.genes]] = centre_scale(prior.features) * weight
        blocks.append(block)
    networks = [p.network for p in priors if p.network is not None]
    network = reduce(PriorNetwork.merge, networks) if networks else None
    return GenePriors(
        name or "+".join(p.name for p in priors), genes, np.concatenate(blocks, axis=1), network
    )
