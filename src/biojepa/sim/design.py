"""The experimental design: which conditions a simulated screen samples, and which cell gets which."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biojepa.data.schema import CONTROL, Condition, join_perturbation
from biojepa.errors import DataError
from biojepa.sim.config import DesignConfig
from biojepa.sim.grn import Network
from biojepa.sim.interventions import Compounds, Variants


def sampled_conditions(
    network: Network,
    compounds: Compounds,
    contexts: Sequence[str],
    cfg: DesignConfig,
    rng: np.random.Generator,
) -> list[Condition]:
    """Control, singles and doubles (genetic screens) or compounds × doses, in every context."""
    per_context: list[tuple[str, str, float]] = [(CONTROL, "control", 0.0)]
    if cfg.perturbation_type == "compound":
        if not compounds.names or not cfg.doses_nm:
            raise DataError("a compound design needs interventions.n_compounds > 0 and design.doses_nm")
        per_context += [(name, "compound", float(d)) for name in compounds.names for d in cfg.doses_nm]
    else:
        singles = _pick_singles(network, cfg, rng)
        per_context += [(g, cfg.perturbation_type, 0.0) for g in singles]
        per_context += [(p, cfg.perturbation_type, 0.0) for p in _pick_doubles(network, singles, cfg, rng)]
    return [
        Condition(label, ctx, ptype, dose, cfg.time_h if label != CONTROL else float("nan"))
        for ctx in contexts
        for label, ptype, dose in per_context
    ]


def _pick_singles(network: Network, cfg: DesignConfig, rng: np.random.Generator) -> list[str]:
    if cfg.n_singles > network.n_genes:
        raise DataError(f"design.n_singles = {cfg.n_singles} exceeds the {network.n_genes} simulated genes")
    regulators = np.flatnonzero(network.is_regulator)
    others = np.flatnonzero(~network.is_regulator)
    n_reg = min(len(regulators), round(cfg.n_singles * cfg.regulator_share))
    picked = np.concatenate(
        [
            rng.choice(regulators, n_reg, replace=False),
            rng.choice(others, cfg.n_singles - n_reg, replace=False),
        ]
    )
    return [network.genes[i] for i in picked]


def _pick_doubles(
    network: Network, singles: list[str], cfg: DesignConfig, rng: np.random.Generator
) -> list[str]:
    """Pairs of sampled singles, as a combinatorial screen chooses them: about 80 % pair two related
    regulators (one regulates the other, they share ≥ 20 % of their targets, or they act together in
    one cooperative input), where interactions can arise; the rest pair any two singles."""
    index = {g: i for i, g in enumerate(network.genes)}
    regs = [g for g in singles if network.is_regulator[index[g]]]
    children = {g: set(network.edge_target[network.edge_source == index[g]].tolist()) for g in regs}
    terms = {g: set(network.edge_term[network.edge_source == index[g]].tolist()) for g in regs}
    related = [
        (a, b)
        for k, a in enumerate(regs)
        for b in regs[k + 1 :]
        if len(children[a] & children[b]) >= 0.2 * min(len(children[a]), len(children[b]))
        or index[b] in children[a]
        or index[a] in children[b]
        or terms[a] & terms[b]
    ]
    n_related = min(len(related), round(0.8 * cfg.n_doubles))
    picks = [related[i] for i in rng.choice(len(related), size=n_related, replace=False)] if related else []
    doubles = {join_perturbation(p) for p in picks}
    for _ in range(50 * cfg.n_doubles):
        if len(doubles) >= cfg.n_doubles or len(singles) < 2:
            break
        a, b = rng.choice(len(singles), size=2, replace=False)
        doubles.add(join_perturbation([singles[a], singles[b]]))
    if len(doubles) < cfg.n_doubles:
        raise DataError(f"could only form {len(doubles)} of {cfg.n_doubles} doubles; raise design.n_singles")
    return sorted(doubles)


@dataclass(frozen=True)
class CellPlan:
    """Per cell: the true condition, the variant (guide / edit state) and the observed label."""

    condition: np.ndarray  # (N,) true condition index
    variant: np.ndarray  # (N,) variant index
    observed: np.ndarray  # (N,) condition index of the label the cell carries

    @property
    def n_cells(self) -> int:
        return len(self.condition)


def plan_cells(
    conditions: Sequence[Condition],
    variants: Variants,
    cfg: DesignConfig,
    mislabel_fraction: float,
    rng: np.random.Generator,
) -> CellPlan:
    """Cell counts per condition, a variant per cell by its share, a few mislabelled cells, shuffled."""
    jitter = np.exp(cfg.cells_jitter_sd_log * rng.standard_normal(len(conditions)))
    counts = np.where(
        [c.is_control for c in conditions],
        cfg.control_cells,
        np.maximum(5, np.round(cfg.cells_per_condition * jitter)),
    ).astype(np.int64)
    condition = np.repeat(np.arange(len(conditions)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)])
    variant = np.empty_like(condition)
    for c in range(len(conditions)):
        rows = np.flatnonzero(variants.condition == c)
        share = variants.weight[rows] / variants.weight[rows].sum()
        variant[starts[c] : starts[c + 1]] = rng.choice(rows, size=int(counts[c]), p=share)
    observed = condition.copy()
    context = np.array([c.context for c in conditions])
    by_context = {ctx: np.flatnonzero(context == ctx) for ctx in np.unique(context)}
    for i in np.flatnonzero(rng.random(len(condition)) < mislabel_fraction):
        others = by_context[context[condition[i]]]
        others = others[others != condition[i]]
        if len(others):
            observed[i] = rng.choice(others)
    order = rng.permutation(len(condition))
    return CellPlan(condition=condition[order], variant=variant[order], observed=observed[order])
