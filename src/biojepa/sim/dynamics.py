"""Hill-type regulatory dynamics, vectorised over many cell states at once.

Each row of a state matrix is one cell state (a condition variant in a context). A gene's level
follows ``dx/dt = λ · (m · production(x · a) − x)``: ``m`` scales its transcription (CRISPRi/a, the
residual transcript after a knockout), ``a`` scales its regulatory activity (0 after a knockout,
``1 − inhibition`` under a compound). Steady states come from damped fixed-point iteration; a state
whose fixed point is unstable (an oscillator) gets its cycle average. Time courses are explicit
Euler steps starting at the unperturbed steady state.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import scipy.sparse as sp

from biojepa.sim.config import DynamicsConfig
from biojepa.sim.grn import Network

_ROW_BLOCK = 512
log = logging.getLogger(__name__)


class Dynamics:
    """Production function and solvers for one network."""

    def __init__(self, network: Network, cfg: DynamicsConfig) -> None:
        self.network = network
        self.cfg = cfg
        n_edges, n_terms, n_genes = len(network.edge_term), len(network.term_target), network.n_genes
        ones_e = np.ones(n_edges)
        self._edge_to_term = sp.csr_matrix(
            (ones_e, (network.edge_term, np.arange(n_edges))), (n_terms, n_edges)
        )
        self._term_to_gene = sp.csr_matrix(
            (network.term_weight, (network.term_target, np.arange(n_terms))), (n_genes, n_terms)
        )
        self._k = network.edge_k
        self._hill = network.edge_hill
        self._repress = network.edge_sign < 0
        self.rate = network.degradation * cfg.degradation_median_per_h

    def production(self, effective: np.ndarray, basal: np.ndarray) -> np.ndarray:
        """Production rate of every gene given the effective (activity-scaled) levels of its regulators."""
        net = self.network
        ratio = (self.promoter_input(effective) / net.promoter_half) ** net.promoter_hill
        return basal + net.promoter_vmax * ratio / (1.0 + ratio)

    def promoter_input(self, effective: np.ndarray) -> np.ndarray:
        """Summed regulatory input ``u`` of every gene."""
        ratio = (np.maximum(effective[:, self.network.edge_source], 0.0) / self._k) ** self._hill
        hill = np.where(self._repress, 1.0, ratio) / (1.0 + ratio)
        log_terms = (self._edge_to_term @ np.log(np.maximum(hill, 1e-300)).T).T
        return (self._term_to_gene @ np.exp(log_terms).T).T

    def steady_state(
        self, basal: np.ndarray, mrna: np.ndarray, activity: np.ndarray, start: np.ndarray | None = None
    ) -> np.ndarray:
        """Fixed point ``x = m · production(x · a)`` for each row, by damped iteration on unconverged rows."""
        out = np.empty_like(mrna, dtype=float)
        init = mrna * basal if start is None else np.broadcast_to(start, mrna.shape)
        for lo in range(0, len(mrna), _ROW_BLOCK):
            rows = slice(lo, lo + _ROW_BLOCK)
            out[rows] = self._solve_block(
                basal[rows], mrna[rows], activity[rows], np.array(init[rows], float)
            )
        return out

    def _solve_block(
        self, basal: np.ndarray, mrna: np.ndarray, activity: np.ndarray, x: np.ndarray
    ) -> np.ndarray:
        active = np.arange(len(x))
        for _ in range(self.cfg.max_iterations):
            target = mrna[active] * self.production(x[active] * activity[active], basal[active])
            step = self.cfg.damping * (target - x[active])
            x[active] += step
            change = np.max(np.abs(step) / (np.abs(x[active]) + 1e-12), axis=1)
            active = active[change > self.cfg.tolerance]
            if len(active) == 0:
                return x
        log.info("%d state(s) without a stable steady state: using their cycle average", len(active))
        x[active] = self._cycle_average(basal[active], mrna[active], activity[active], x[active])
        return x

    def _cycle_average(
        self, basal: np.ndarray, mrna: np.ndarray, activity: np.ndarray, x: np.ndarray
    ) -> np.ndarray:
        """Time average of the ODE over ``cycle_average_h`` hours after as long a burn-in.

        Negative feedback can make a fixed point unstable (sustained oscillation); an unsynchronised
        population of such cells averages to the cycle average, which is what the pseudobulk sees.
        """
        dt = min(self.cfg.time_step_h, 0.5 / float(self.rate.max()))
        n_steps = int(np.ceil(self.cfg.cycle_average_h / dt))
        total = np.zeros_like(x)
        for k in range(2 * n_steps):
            x = x + dt * self.rate * (mrna * self.production(x * activity, basal) - x)
            if k >= n_steps:
                total += x
        return total / n_steps

    def integrate(
        self, basal: np.ndarray, mrna: np.ndarray, activity: np.ndarray, start: np.ndarray, hours: np.ndarray
    ) -> np.ndarray:
        """Levels ``hours[i]`` after the intervention of row ``i`` is applied to the state ``start[i]``."""
        x = np.array(np.broadcast_to(start, mrna.shape), dtype=float)
        dt = min(self.cfg.time_step_h, 0.5 / float(self.rate.max()))
        n_steps = np.ceil(np.asarray(hours, dtype=float) / dt).astype(int)
        step = np.asarray(hours, dtype=float) / np.maximum(n_steps, 1)
        for k in range(int(n_steps.max(initial=0))):
            live = np.flatnonzero(n_steps > k)
            target = mrna[live] * self.production(x[live] * activity[live], basal[live])
            x[live] += step[live, None] * self.rate * (target - x[live])
        return x


def calibrate(network: Network, basal: np.ndarray, cfg: DynamicsConfig, rng: np.random.Generator) -> Network:
    """Place every edge and promoter in its responsive range at the unperturbed state.

    ``K = u_e · level(source)`` and ``U = u_g · input(gene)`` with ``u ~ U(0.5, 1.5)``, refined over
    three solves, so interventions propagate instead of hitting saturated or silent regulators.
    """
    edge_scale = rng.uniform(0.5, 1.5, len(network.edge_source))
    gene_scale = rng.uniform(0.5, 1.5, network.n_genes)
    inflow = np.bincount(network.term_target, weights=network.term_weight, minlength=network.n_genes)
    level = basal + 0.5 * inflow
    ones = np.ones((1, network.n_genes))
    for final in (False, False, False, True):
        network = dataclasses.replace(
            network, edge_k=np.maximum(level[network.edge_source] * edge_scale, 1e-9)
        )
        dynamics = Dynamics(network, cfg)
        drive = dynamics.promoter_input(level[None, :])[0]
        network = dataclasses.replace(network, promoter_half=np.maximum(drive * gene_scale, 1e-12))
        if not final:
            level = Dynamics(network, cfg).steady_state(basal[None, :], ones, ones, start=level[None, :])[0]
    return network
