"""The simulator: network + contexts + interventions + measurement, with its ground truth.

Every random draw comes from a stream ``default_rng([seed, STREAM])``, so a config and a seed
rebuild the identical network, guides, compounds, design and cells (bit for bit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from biojepa.config import data_dir
from biojepa.data.schema import OBS_COLUMNS, Condition
from biojepa.errors import DataError
from biojepa.sim.config import SimConfig, from_toml, to_toml
from biojepa.sim.design import CellPlan, plan_cells, sampled_conditions
from biojepa.sim.dynamics import Dynamics, calibrate
from biojepa.sim.grn import dorothea_network, generate_network
from biojepa.sim.interventions import Variants, expand, make_compounds, make_guides
from biojepa.sim.measurement import make_measurement

UNS_KEY = "biojepa_sim"
OBS_ORDER = (*OBS_COLUMNS, "sim_true_perturbation", "sim_guide", "sim_guide_efficiency", "sim_cell_cycle")
_NETWORK, _CONTEXTS, _GUIDES, _COMPOUNDS, _MEASURE, _DESIGN, _CELLS, _CALIBRATE = range(8)


class Simulator:
    """A virtual Perturb-seq lab whose noise-free truth is known for any condition."""

    def __init__(self, config: SimConfig) -> None:
        self.config = cfg = config
        rng = self._rng(_NETWORK)
        if cfg.network.source == "builtin":
            network = generate_network(cfg.network, rng)
        elif cfg.network.source == "dorothea":
            network = dorothea_network(cfg.network, rng, data_dir())
        else:
            raise DataError(f"network.source must be 'builtin' or 'dorothea', got {cfg.network.source!r}")
        network = calibrate(network, network.basal, cfg.dynamics, self._rng(_CALIBRATE))
        self.network = network
        self.contexts = tuple(cfg.contexts.names)
        if len(set(self.contexts)) != len(self.contexts) or not self.contexts:
            raise DataError(f"contexts.names must be unique and non-empty, got {self.contexts}")
        self.basal = self._context_basal()
        self.guides = make_guides(network.n_genes, cfg.interventions, self._rng(_GUIDES))
        self.compounds = make_compounds(network, cfg.interventions, self._rng(_COMPOUNDS))
        self.measurement = make_measurement(network.n_genes, cfg.measurement, self._rng(_MEASURE))
        self.dynamics = Dynamics(network, cfg.dynamics)
        self._gene_index = {g: i for i, g in enumerate(network.genes)}
        self._control_state = self.dynamics.steady_state(
            self.basal, np.ones_like(self.basal), np.ones_like(self.basal)
        )

    @classmethod
    def from_config(cls, config: SimConfig | str) -> Simulator:
        """Build from a :class:`SimConfig` or its TOML text."""
        return cls(from_toml(config) if isinstance(config, str) else config)

    @classmethod
    def from_adata(cls, adata: ad.AnnData) -> Simulator:
        """Rebuild the simulator that produced ``adata`` (from ``adata.uns['biojepa_sim']['config']``)."""
        if UNS_KEY not in adata.uns or "config" not in adata.uns[UNS_KEY]:
            raise DataError(f"AnnData was not made by biojepa.sim: uns[{UNS_KEY!r}]['config'] is missing")
        return cls.from_config(str(adata.uns[UNS_KEY]["config"]))

    def _rng(self, stream: int, *extra: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, stream, *extra])

    def _context_basal(self) -> np.ndarray:
        rng, cfg, net = self._rng(_CONTEXTS), self.config.contexts, self.network
        shifts = cfg.gene_shift_sd * rng.standard_normal((len(self.contexts), net.n_genes))
        shifts[:, net.is_regulator] += cfg.master_shift_sd * rng.standard_normal(
            (len(self.contexts), int(net.is_regulator.sum()))
        )
        shifts -= shifts.mean(axis=0)
        return net.basal * np.exp(shifts)

    @property
    def genes(self) -> tuple[str, ...]:
        return self.network.genes

    def _context_index(self, context: str) -> int:
        if context not in self.contexts:
            raise DataError(f"unknown context {context!r}; this simulation has {list(self.contexts)}")
        return self.contexts.index(context)

    def states(self, conditions: Sequence[Condition]) -> tuple[Variants, np.ndarray]:
        """Variants of ``conditions`` and their noise-free molecular states (V, G)."""
        variants = expand(
            conditions,
            self._gene_index,
            self.guides,
            self.compounds,
            self.config.interventions.ko_residual_mrna,
        )
        ctx = np.array(
            [self._context_index(conditions[c].context) for c in variants.condition], dtype=np.int64
        )
        times = np.array([conditions[c].time for c in variants.condition], dtype=float)
        basal, start = self.basal[ctx], self._control_state[ctx]
        states = np.empty_like(variants.mrna)
        steady = np.isnan(times)
        if steady.any():
            states[steady] = self.dynamics.steady_state(
                basal[steady], variants.mrna[steady], variants.activity[steady], start=start[steady]
            )
        if (~steady).any():
            if np.any(times[~steady] < 0):
                raise DataError("condition time must be ≥ 0 hours (or NaN for steady state)")
            states[~steady] = self.dynamics.integrate(
                basal[~steady],
                variants.mrna[~steady],
                variants.activity[~steady],
                start[~steady],
                times[~steady],
            )
        return variants, states

    def expected(self, conditions: Condition | Sequence[Condition]) -> np.ndarray:
        """Noise-free expected ``log1p(normalize_total(1e4))`` pseudobulk, (G,) or (n, G) in gene order.

        Averages over the condition's guides (and knockout edit states), the cell-cycle score,
        library size and batches; see :mod:`biojepa.sim.measurement` for how it is computed.
        """
        single = isinstance(conditions, Condition)
        conds = [conditions] if single else list(conditions)
        if not conds:
            return np.zeros((0, self.network.n_genes))
        variants, states = self.states(conds)
        out = self.measurement.expected_log_normalised(states, variants.weight, variants.condition)
        return out[0] if single else out

    def design(self) -> list[Condition]:
        """The conditions this config samples (the same list on every call)."""
        cfg = self.config.design
        return sampled_conditions(self.network, self.compounds, self.contexts, cfg, self._rng(_DESIGN))

    def plan(self, conditions: Sequence[Condition], variants: Variants) -> CellPlan:
        """Which cell belongs to which condition/variant, and the label it carries."""
        return plan_cells(
            conditions,
            variants,
            self.config.design,
            self.config.measurement.mislabel_fraction,
            self._rng(_CELLS),
        )

    def chunks(
        self, progress: Callable[[int, int], None] | None = None
    ) -> Iterator[tuple[sp.csr_matrix, pd.DataFrame]]:
        """Counts and canonical obs of the sampled screen, ``design.chunk_cells`` cells at a time."""
        conditions = self.design()
        variants, states = self.states(conditions)
        plan = self.plan(conditions, variants)
        size = self.config.design.chunk_cells
        observed_cols = {
            "perturbation": [c.perturbation for c in conditions],
            "perturbation_type": [c.perturbation_type for c in conditions],
            "context": [c.context for c in conditions],
        }
        dose = np.array([float(c.dose) for c in conditions])
        time = np.array([float(c.time) for c in conditions])
        coded = {name: pd.factorize(pd.Series(values)) for name, values in observed_cols.items()}
        guide_codes, guide_names = pd.factorize(pd.Series(variants.guide))
        batch_names = list(self.measurement.batch_names)
        for k, lo in enumerate(range(0, plan.n_cells, size)):
            rows = slice(lo, min(lo + size, plan.n_cells))
            seen, true, var = plan.observed[rows], plan.condition[rows], plan.variant[rows]
            counts, cell = self.measurement.sample(states[var], self._rng(_CELLS, 1 + k))
            obs = pd.DataFrame(
                {name: pd.Categorical.from_codes(codes[seen], cats) for name, (codes, cats) in coded.items()},
                index=pd.Index([f"cell{i:07d}" for i in range(rows.start, rows.stop)]),
            )
            obs["dose"], obs["time"] = dose[seen], time[seen]
            obs["batch"] = pd.Categorical.from_codes(cell["batch"], batch_names)
            codes, cats = coded["perturbation"]
            obs["sim_true_perturbation"] = pd.Categorical.from_codes(codes[true], cats)
            obs["sim_guide"] = pd.Categorical.from_codes(guide_codes[var], guide_names)
            obs["sim_guide_efficiency"] = variants.efficiency[var]
            obs["sim_cell_cycle"] = cell["cell_cycle"]
            if progress is not None:
                progress(rows.stop, plan.n_cells)
            yield counts, obs[[*OBS_ORDER]]

    def var(self) -> pd.DataFrame:
        """Per-gene ground truth: role in the network, cell-cycle loading, guides that fail."""
        net = self.network
        return pd.DataFrame(
            {
                "sim_regulator": net.is_regulator,
                "sim_passenger": net.is_passenger,
                "sim_program": net.program,
                "sim_cell_cycle_loading": self.measurement.cell_cycle_loading,
                "sim_ineffective_guides": self.guides.ineffective,
            },
            index=pd.Index(net.genes, name="gene"),
        )

    def uns(self) -> dict:
        """What ``adata.uns['biojepa_sim']`` holds: the config TOML, preset, seed, compound descriptors."""
        out: dict = {
            "config": to_toml(self.config),
            "preset": self.config.preset,
            "seed": int(self.config.seed),
        }
        if self.compounds.names:
            out["compound_descriptors"] = pd.DataFrame(
                self.compounds.descriptors,
                index=list(self.compounds.names),
                columns=[f"d{i}" for i in range(self.compounds.descriptors.shape[1])],
            )
        return out

    def sample(self, progress: Callable[[int, int], None] | None = None) -> ad.AnnData:
        """The whole simulated screen in memory, in the canonical schema, ground truth attached."""
        parts = list(self.chunks(progress))
        obs = pd.concat([o for _, o in parts])
        adata = ad.AnnData(X=sp.vstack([x for x, _ in parts], format="csr"), obs=obs, var=self.var())
        adata.varp["sim_adjacency"] = self.network.adjacency()
        adata.uns[UNS_KEY] = self.uns()
        return adata
