"""Simulator configuration: nested frozen dataclasses that round-trip through TOML.

The config plus its ``seed`` determines every random draw of the simulator, so the TOML written next
to a simulated ``.h5ad`` rebuilds the exact same network, interventions and cells.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

from biojepa.errors import DataError


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the gene regulatory network."""

    source: str = "builtin"  # "builtin" (synthetic symbols) or "dorothea" (real TF → target edges)
    n_genes: int = 200
    regulator_fraction: float = 0.1
    passenger_fraction: float = 0.3
    n_programs: int = 8
    mean_outdegree: float = 12.0
    outdegree_tail: float = 1.6  # Pareto shape of the out-degree distribution (smaller = heavier tail)
    activation_fraction: float = 0.65
    feedback_fraction: float = 0.05
    feedforward_probability: float = 0.3
    paralog_fraction: float = 0.15
    essential_fraction: float = 0.2  # regulators whose loss triggers the shared stress response
    cooperative_fraction: float = 0.2
    hill_coefficients: tuple[float, ...] = (1.0, 2.0, 3.0)
    promoter_hill: tuple[float, ...] = (2.0, 3.0, 4.0)
    dorothea_confidence: str = "ABC"


@dataclass(frozen=True)
class ContextConfig:
    """Cell contexts: each rescales the basal production of master regulators and of every gene."""

    names: tuple[str, ...] = ("ctxA", "ctxB")
    master_shift_sd: float = 1.0
    gene_shift_sd: float = 0.2


@dataclass(frozen=True)
class InterventionConfig:
    """Guides and compounds."""

    guides_per_gene: int = 2
    crispri_efficiency_beta: tuple[float, float] = (8.0, 1.5)
    ineffective_fraction: float = 0.1  # genes whose guides all barely work
    ko_residual_mrna: float = 0.3  # nonsense-mediated decay leaves this fraction of the transcript
    crispra_fold_median: float = 5.0
    crispra_fold_sd_log: float = 0.5
    n_compounds: int = 0
    descriptor_dim: int = 16
    ic50_median_nm: float = 200.0


@dataclass(frozen=True)
class DesignConfig:
    """Which conditions are sampled and with how many cells."""

    perturbation_type: str = "crispri"
    n_singles: int = 20
    n_doubles: int = 5
    regulator_share: float = 0.5
    doses_nm: tuple[float, ...] = ()
    time_h: float = math.nan
    cells_per_condition: int = 50
    cells_jitter_sd_log: float = 0.25
    control_cells: int = 200  # per context
    chunk_cells: int = 20000


@dataclass(frozen=True)
class MeasurementConfig:
    """From expected expression to UMI counts."""

    library_mean: float = 8000.0
    library_sd_log: float = 0.35
    dispersion: float = 10.0  # negative-binomial shape θ (intrinsic noise: variance μ + μ²/θ)
    cell_cycle_genes: int = 20
    cell_cycle_strength: float = 0.6
    n_batches: int = 2
    batch_sd_log: float = 0.1
    mislabel_fraction: float = 0.02


@dataclass(frozen=True)
class DynamicsConfig:
    """Steady-state solver and time integration."""

    damping: float = 0.5
    max_iterations: int = 2000
    tolerance: float = 1e-7
    degradation_median_per_h: float = 0.2
    time_step_h: float = 0.25
    cycle_average_h: float = 500.0  # averaging window for states that oscillate instead of settling


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulation; with ``seed`` it is bit-for-bit reproducible."""

    seed: int = 0
    preset: str = "custom"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    contexts: ContextConfig = field(default_factory=ContextConfig)
    interventions: InterventionConfig = field(default_factory=InterventionConfig)
    design: DesignConfig = field(default_factory=DesignConfig)
    measurement: MeasurementConfig = field(default_factory=MeasurementConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)

    def with_seed(self, seed: int) -> SimConfig:
        """The same config with another seed."""
        return dataclasses.replace(self, seed=int(seed))


_SECTIONS = {f.name: f for f in dataclasses.fields(SimConfig) if dataclasses.is_dataclass(f.default_factory)}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: SimConfig) -> str:
    """TOML text of ``config`` (scalars first, then one table per section)."""
    lines = [f"seed = {_toml_value(config.seed)}", f"preset = {_toml_value(config.preset)}"]
    for name in _SECTIONS:
        lines.append(f"\n[{name}]")
        for f in dataclasses.fields(getattr(config, name)):
            lines.append(f"{f.name} = {_toml_value(getattr(getattr(config, name), f.name))}")
    return "\n".join(lines) + "\n"


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DataError(f"unknown key(s) {unknown} in simulator config [{where}]; allowed: {sorted(known)}")
    defaults = cls()
    kwargs = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            kwargs[key] = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            kwargs[key] = float(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def from_toml(text: str) -> SimConfig:
    """Parse a simulator config written by :func:`to_toml` (missing keys take their defaults)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"simulator config is not valid TOML: {exc}") from exc
    sections = {name: _build(_SECTIONS[name].default_factory, raw.pop(name, {}), name) for name in _SECTIONS}
    top = _build(SimConfig, raw, "top level")
    return dataclasses.replace(top, **sections)
