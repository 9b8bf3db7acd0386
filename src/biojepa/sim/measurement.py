"""Measurement: from a cell's molecular state to UMI counts, and the exact expectation of what is read.

A cell with state ``x`` (genes), cell-cycle score ``s ~ N(0, 1)``, batch ``b`` and library size
``L = library_mean · exp(σ_L z)`` has expression proportions ``p ∝ x · exp(β s) · batch_b`` and counts
``k ~ NB(mean L·p, shape θ)`` (Poisson–Gamma: the Gamma factor is the cell's intrinsic noise).

Expected log-normalised expression ``E[log1p(1e4 · k / L)]`` (what ``normalize_total(1e4)`` +
``log1p`` averages to over a population) is computed without Monte-Carlo error: the negative-binomial
expectation is summed exactly over counts on a grid of means (second-order asymptotics above
:data:`EXACT_MEAN_LIMIT`), and the cell-cycle score and library size are integrated by Gauss–Hermite
quadrature, batches by their (equal) shares. The only approximation is normalising by ``L`` (the
expected total) instead of the cell's realised total count, a relative difference of about
``1/√L``, common to a condition and its control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import digamma, gammaln

from biojepa.errors import DataError
from biojepa.sim.config import MeasurementConfig

TARGET_SUM = 1e4
EXACT_MEAN_LIMIT = 500.0
_CELL_CYCLE_NODES = 5
_LIBRARY_NODES = 6
_MEAN_GRID = np.logspace(-6, 6, 601)


@dataclass(frozen=True)
class Measurement:
    """Gene-level measurement parameters: cell-cycle loadings and batch factors."""

    cfg: MeasurementConfig
    cell_cycle_loading: np.ndarray  # (G,), 0 outside the cell-cycle program
    batch_factor: np.ndarray  # (B, G)

    @property
    def batch_names(self) -> tuple[str, ...]:
        return tuple(f"batch{b + 1}" for b in range(len(self.batch_factor)))

    def proportions(self, state: np.ndarray, cycle: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """Expression proportions per cell (rows sum to 1)."""
        raw = state * np.exp(np.outer(cycle, self.cell_cycle_loading)) * self.batch_factor[batch]
        return raw / raw.sum(axis=1, keepdims=True)

    def sample(
        self, state: np.ndarray, rng: np.random.Generator
    ) -> tuple[sp.csr_matrix, dict[str, np.ndarray]]:
        """UMI counts (CSR, float32) for cells whose molecular states are the rows of ``state``."""
        n = len(state)
        cycle = rng.standard_normal(n)
        batch = rng.integers(len(self.batch_factor), size=n)
        library = self.cfg.library_mean * np.exp(self.cfg.library_sd_log * rng.standard_normal(n))
        mean = library[:, None] * self.proportions(state, cycle, batch)
        theta = self.cfg.dispersion
        counts = rng.poisson(mean * rng.gamma(theta, 1.0 / theta, size=mean.shape))
        return sp.csr_matrix(counts.astype(np.float32)), {"cell_cycle": cycle, "batch": batch}

    def expected_log_normalised(
        self, states: np.ndarray, weights: np.ndarray, groups: np.ndarray
    ) -> np.ndarray:
        """Population mean of ``log1p(normalize_total(1e4))`` per group of weighted states.

        ``states`` (V, G) are cell states, ``weights`` (V,) their shares within their group and
        ``groups`` (V,) the group (condition) of each; returns (n_groups, G).
        """
        cycle_nodes, cycle_w = _gauss_hermite(_CELL_CYCLE_NODES)
        lib_nodes, lib_w = _gauss_hermite(_LIBRARY_NODES)
        libraries = self.cfg.library_mean * np.exp(self.cfg.library_sd_log * lib_nodes)
        tables = [_nb_log1p_table(TARGET_SUM / lib, self.cfg.dispersion) for lib in libraries]
        per_state = np.zeros(states.shape)
        n_batches = len(self.batch_factor)
        for s, ws in zip(cycle_nodes, cycle_w, strict=True):
            for b in range(n_batches):
                p = self.proportions(states, np.full(len(states), s), np.full(len(states), b))
                for lib, wl, table in zip(libraries, lib_w, tables, strict=True):
                    per_state += (ws * wl / n_batches) * _lookup(table, lib * p)
        n_groups = int(groups.max()) + 1
        out = np.zeros((n_groups, states.shape[1]))
        np.add.at(out, groups, weights[:, None] * per_state)
        return out


def make_measurement(n_genes: int, cfg: MeasurementConfig, rng: np.random.Generator) -> Measurement:
    """Pick the cell-cycle genes and draw per-batch gene factors."""
    if cfg.dispersion <= 1.0:
        raise DataError(f"measurement.dispersion must be > 1 (got {cfg.dispersion}); typical UMI data: 2–20")
    if cfg.n_batches < 1:
        raise DataError(f"measurement.n_batches must be ≥ 1 (got {cfg.n_batches})")
    loading = np.zeros(n_genes)
    cycle_genes = rng.choice(n_genes, size=min(cfg.cell_cycle_genes, n_genes), replace=False)
    loading[cycle_genes] = cfg.cell_cycle_strength * rng.uniform(0.5, 1.5, len(cycle_genes))
    batch_factor = np.exp(cfg.batch_sd_log * rng.standard_normal((cfg.n_batches, n_genes)))
    return Measurement(cfg=cfg, cell_cycle_loading=loading, batch_factor=batch_factor)


def _gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[f(Z)], Z ~ N(0, 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / weights.sum()


def _nb_log1p_table(scale: float, theta: float) -> np.ndarray:
    """``E[log1p(scale · k)]`` for ``k ~ NB(μ, θ)`` on :data:`_MEAN_GRID` of means μ."""
    mu = _MEAN_GRID
    exact = mu <= EXACT_MEAN_LIMIT
    k_max = int(np.ceil(EXACT_MEAN_LIMIT * (1.0 + 40.0 / theta)))
    k = np.arange(k_max + 1)
    m = mu[exact, None]
    log_pmf = (
        gammaln(k + theta)
        - gammaln(theta)
        - gammaln(k + 1.0)
        + theta * np.log(theta / (theta + m))
        + k * np.log(m / (theta + m))
    )
    table = np.empty_like(mu)
    table[exact] = np.exp(log_pmf) @ np.log1p(scale * k)
    big = mu[~exact]
    inverse_gamma_mean = theta / (theta - 1.0)
    table[~exact] = (
        np.log(scale * big) + digamma(theta) - np.log(theta) + (1.0 / scale - 0.5) * inverse_gamma_mean / big
    )
    return table


def _lookup(table: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Interpolate a table in log-mean; below the grid the expectation is linear in the mean."""
    lo = _MEAN_GRID[0]
    clipped = np.maximum(mean, lo)
    values = np.interp(np.log(clipped), np.log(_MEAN_GRID), table)
    return np.where(mean < lo, values * mean / lo, values)
