"""The virtual lab: a Perturb-seq simulator that keeps its ground truth.

``simulate(preset, seed)`` gives a screen in the canonical schema; ``Simulator`` rebuilds it from its
config (``Simulator.from_adata``) and answers ``expected(condition)`` for any condition;
``ground_truth_deltas`` gives the noise-free pseudobulk Δ the benchmark scores methods against.
"""

from biojepa.sim.config import SimConfig, from_toml, to_toml
from biojepa.sim.interactions import interaction_table
from biojepa.sim.io import write_simulation
from biojepa.sim.presets import PRESETS, preset_config, simulate
from biojepa.sim.priors import priors_of, simulated_priors
from biojepa.sim.simulator import Simulator
from biojepa.sim.truth import ground_truth_deltas, simulator_of

__all__ = [
    "PRESETS",
    "SimConfig",
    "Simulator",
    "from_toml",
    "ground_truth_deltas",
    "interaction_table",
    "preset_config",
    "priors_of",
    "simulate",
    "simulated_priors",
    "simulator_of",
    "to_toml",
    "write_simulation",
]
