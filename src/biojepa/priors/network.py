"""Known signed regulatory edges between genes: which genes a target regulates, and in which direction.

Prior feature vectors (:class:`biojepa.priors.base.GenePriors`) say which genes are alike; a network says
which genes a target acts on. For a target never perturbed in training, its known direct targets name the
genes its perturbation should move — information no mix of measured training responses holds when the
target regulates genes that no training target moves. Sources: DoRothEA TF → target edges
(:func:`biojepa.priors.regulons.regulon_priors` attaches them) and a simulated network's noisy copy
(:func:`biojepa.sim.priors.simulated_priors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from biojepa.errors import DataError

# Sign of a perturbation mode's effect on its target's activity: loss of function lowers the target, so its
# regulated genes move against the edge signs; activation moves them with the signs; a compound has no
# gene target.
MODE_SIGNS = {"control": 0.0, "crispri": -1.0, "crispr_ko": -1.0, "crispra": 1.0, "compound": 0.0}


@dataclass(frozen=True, eq=False)
class PriorNetwork:
    """Signed regulator → target edges: ``edges[r, t]`` is +1 (activates), -1 (represses) or 0 (unknown)."""

    name: str
    genes: list[str]
    edges: sp.csr_matrix

    def __post_init__(self) -> None:
        genes = [str(g) for g in self.genes]
        edges = sp.csr_matrix(self.edges, dtype=np.float32)
        if edges.shape != (len(genes), len(genes)):
            raise DataError(
                f"prior network {self.name!r}: edge matrix of shape {edges.shape} does not match "
                f"{len(genes)} genes; expected a square regulator × target matrix"
            )
        if len(set(genes)) != len(genes):
            raise DataError(f"prior network {self.name!r}: gene list has duplicates")
        edges.data = np.sign(edges.data)
        edges.eliminate_zeros()
        if not np.isfinite(edges.data).all():
            raise DataError(f"prior network {self.name!r}: edge signs contain NaN or infinite values")
        object.__setattr__(self, "genes", genes)
        object.__setattr__(self, "edges", edges)

    @property
    def n_edges(self) -> int:
        return int(self.edges.nnz)

    @cached_property
    def _row(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.genes)}

    def responses(self, targets: Sequence[str], genes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Signed direct edges of each target onto ``genes`` (``len(targets) × len(genes)``, float32) and
        whether the target has any known edge onto them. A target regulating itself is left out: the
        benchmark never scores a targeted gene."""
        columns = np.array([self._row.get(str(g), -1) for g in genes], dtype=np.int64)
        rows = np.array([self._row.get(str(t), -1) for t in targets], dtype=np.int64)
        known, measured = np.flatnonzero(rows >= 0), columns >= 0
        out = np.zeros((len(targets), len(genes)), dtype=np.float32)
        if known.size and measured.any():
            out[np.ix_(known, np.flatnonzero(measured))] = self.edges[rows[known]][
                :, columns[measured]
            ].toarray()
        out[rows[:, None] == columns[None, :]] = 0.0  # the target's edge onto itself
        return out, np.abs(out).sum(axis=1) > 0

    def merge(self, other: PriorNetwork) -> PriorNetwork:
        """Union of two networks over the union of their genes; an edge the two sign oppositely is dropped."""
        genes = list(dict.fromkeys([*self.genes, *other.genes]))
        row = {g: i for i, g in enumerate(genes)}
        total = sp.csr_matrix((len(genes), len(genes)), dtype=np.float32)
        for net in (self, other):
            index = np.array([row[g] for g in net.genes], dtype=np.int64)
            coo = net.edges.tocoo()
            total = total + sp.csr_matrix(
                (coo.data, (index[coo.row], index[coo.col])), shape=total.shape, dtype=np.float32
            )
        return PriorNetwork(f"{self.name}+{other.name}", genes, total)

    def arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for an ``.npz`` cache) that :meth:`from_arrays` turns back into the network."""
        coo = self.edges.tocoo()
        return {
            "network_name": np.array(self.name),
            "network_genes": np.array(self.genes),
            "network_rows": coo.row.astype(np.int64),
            "network_cols": coo.col.astype(np.int64),
            "network_signs": coo.data.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, stored: dict[str, np.ndarray] | np.lib.npyio.NpzFile) -> PriorNetwork | None:
        """The network stored by :meth:`arrays`, or None when the store holds none."""
        if "network_genes" not in stored:
            return None
        genes = stored["network_genes"].tolist()
        edges = sp.csr_matrix(
            (stored["network_signs"], (stored["network_rows"], stored["network_cols"])),
            shape=(len(genes), len(genes)),
        )
        return cls(str(stored["network_name"]), genes, edges)
