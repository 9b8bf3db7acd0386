"""Two-sided Wilcoxon rank-sum (Mann–Whitney U) p-values of many cell groups against one control group.

:func:`scipy.stats.mannwhitneyu` ranks the pooled sample of every gene again for every group, which
dominates a benchmark over hundreds of conditions. Here the control cells are sorted once per gene
(:class:`RankSumReference`); each group then needs only binary searches into them. The statistic, the
tie correction and the continuity correction are those of SciPy's asymptotic method (the method it uses
whenever a sample has more than 8 cells or values are tied); smaller tie-free groups are handed to SciPy,
which then computes exact p-values.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

# genes are laid end to end on one number line, ``GENE_SPAN`` apart: values must lie within ±HALF_SPAN
GENE_SPAN = 1024.0
HALF_SPAN = GENE_SPAN / 2
SMALL_SAMPLE = 8


class RankSumReference:
    """The control cells (cells × genes) of one context, sorted per gene for repeated rank-sum tests."""

    def __init__(self, controls: np.ndarray) -> None:
        self.controls = np.asarray(controls, dtype=np.float64)
        n_controls, n_genes = self.controls.shape
        self.fast = bool(np.abs(self.controls).max(initial=0.0) < HALF_SPAN)
        self.offsets = np.arange(n_genes, dtype=np.float64) * GENE_SPAN
        self.starts = np.arange(n_genes) * n_controls
        if not self.fast:  # every test goes to SciPy
            return
        self.line = np.sort((self.controls + self.offsets).T, axis=1).ravel()
        values, counts = np.unique(self.line, return_counts=True)
        genes = np.floor((values + HALF_SPAN) / GENE_SPAN).astype(np.int64)
        self.control_ties = np.bincount(genes, weights=counts**3.0 - counts, minlength=n_genes)

    def pvalues(self, cells: np.ndarray) -> np.ndarray:
        """Two-sided p-value per gene of ``cells`` (cells × genes) against the controls."""
        cells = np.asarray(cells, dtype=np.float64)
        n1, n2 = len(cells), len(self.controls)
        small_and_untied = min(n1, n2) <= SMALL_SAMPLE and not self._has_ties(cells)
        if not self.fast or np.abs(cells).max(initial=0.0) >= HALF_SPAN or small_and_untied:
            return scipy.stats.mannwhitneyu(cells, self.controls, axis=0).pvalue
        # gene by gene, each gene's values sorted: one ascending line, so the searches stay cache-friendly
        points = np.sort(cells, axis=0).T.ravel() + np.repeat(self.offsets, n1)
        left = np.searchsorted(self.line, points, side="left")
        right = np.searchsorted(self.line, points, side="right")
        below = left - np.repeat(self.starts, n1) + 0.5 * (right - left)
        u_cells = below.reshape(-1, n1).sum(axis=1)
        ties = self.control_ties + self._tie_change(points, right - left, n1)
        n = n1 + n2
        sigma = np.sqrt(n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))))
        u = np.maximum(u_cells, n1 * n2 - u_cells)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (u - n1 * n2 / 2.0 - 0.5) / sigma
        return np.clip(2.0 * scipy.stats.norm.sf(z), 0.0, 1.0)

    def _tie_change(self, points: np.ndarray, in_controls: np.ndarray, n1: int) -> np.ndarray:
        """Change of Σ(t³ − t) per gene when the group's values join the controls' tie groups.

        ``points`` is the group's number line (ascending; ``n1`` values per gene, genes in order) and
        ``in_controls`` how many control values equal each point.
        """
        starts = np.flatnonzero(np.concatenate([[True], points[1:] != points[:-1]]))
        in_cells = np.diff(np.append(starts, len(points)))
        total = in_cells + in_controls[starts]
        change = (total**3.0 - total) - (in_controls[starts] ** 3.0 - in_controls[starts])
        return np.bincount(starts // n1, weights=change, minlength=len(self.offsets))

    def _has_ties(self, cells: np.ndarray) -> bool:
        pooled = np.sort(np.vstack([cells, self.controls]), axis=0)
        return bool((np.diff(pooled, axis=0) == 0).any())
