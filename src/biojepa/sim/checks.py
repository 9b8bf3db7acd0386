"""Sanity checks of a simulated screen: is it biologically shaped, noisy like a screen, and not trivial?

Each check compares the noise-free truth with what the cells show, the way the benchmark does
(:mod:`biojepa.eval`): knocked-down genes drop, a regulator's knockdown moves its direct targets
with the edge's sign, the split-half ceiling is high for strong perturbations and low for passenger
genes, and the train-mean effect stays well below the ceiling. :func:`screen_report` runs them all.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import anndata as ad
import numpy as np

from biojepa.data.schema import CONTROL, Condition
from biojepa.eval.ceiling import split_half
from biojepa.eval.metrics import pearson_delta
from biojepa.eval.pseudobulk import pseudobulk_deltas
from biojepa.sim.interactions import interaction_table
from biojepa.sim.simulator import Simulator

STRONG_EFFECT = 3.0  # L2 norm of the true Δ (targets excluded) that makes a perturbation "strong"
NO_EFFECT = 0.1


def true_deltas(sim: Simulator, conditions: Sequence[Condition]) -> np.ndarray:
    """Noise-free Δ (all simulated genes) of each condition against the control of its context."""
    controls = [Condition(CONTROL, c.context, "control") for c in conditions]
    expected = sim.expected(list(conditions) + controls)
    return expected[: len(conditions)] - expected[len(conditions) :]


def effect_sizes(sim: Simulator, conditions: Sequence[Condition]) -> np.ndarray:
    """L2 norm of each condition's true Δ over all genes but its targets."""
    truth = true_deltas(sim, conditions)
    for row, condition in enumerate(conditions):
        truth[row, [sim.genes.index(t) for t in condition.targets]] = 0.0
    return np.linalg.norm(truth, axis=1)


def own_gene_drop(sim: Simulator, lognorm: ad.AnnData) -> float:
    """Share of single knockdowns (guides that work) whose target's observed mean falls below control."""
    singles = [c for c in sim.design() if len(c.targets) == 1]
    observed = _quiet_pseudobulk(lognorm, singles)
    genes = list(observed.genes)
    works = [not sim.guides.ineffective[sim.genes.index(c.perturbation)] for c in observed.conditions]
    drops = [observed.deltas[i, genes.index(c.perturbation)] < 0 for i, c in enumerate(observed.conditions)]
    return float(np.mean(np.array(drops)[works]))


def target_sign_agreement(sim: Simulator, min_change: float = 0.05) -> tuple[int, int]:
    """Over sampled regulator singles and their single-input direct targets moving > ``min_change``:
    (targets whose true Δ has the sign the edge predicts, targets counted)."""
    frame = sim.network.edges_frame()
    single_input = (frame.groupby("target")["regulator"].transform("size") == 1) & ~frame["cooperative"]
    singles = [
        c
        for c in sim.design()
        if len(c.targets) == 1 and sim.network.is_regulator[sim.genes.index(c.perturbation)]
    ]
    sign = 1 if sim.config.design.perturbation_type == "crispra" else -1
    agree = total = 0
    for condition, delta in zip(singles, true_deltas(sim, singles), strict=True):
        edges = frame[(frame["regulator"] == condition.perturbation) & single_input]
        for target, edge_sign in zip(edges["target"], edges["sign"], strict=True):
            change = delta[sim.genes.index(target)]
            if abs(change) > min_change:
                total += 1
                agree += int(np.sign(change) == sign * edge_sign)
    return agree, total


def ceiling_and_train_mean(sim: Simulator, lognorm: ad.AnnData, seed: int = 0) -> dict[str, float | int]:
    """Split-half ceiling (Pearson Δ, targets excluded) of strong and passenger singles, and the
    leave-one-out train-mean effect on the strong ones."""
    singles = [c for c in sim.design() if len(c.targets) == 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        halves = split_half(lognorm, singles, seed=seed)
    conditions = halves.observed.conditions
    genes = list(halves.observed.genes)
    ceiling = np.array(
        [
            pearson_delta(p, o, genes, c.targets)
            for c, p, o in zip(conditions, halves.predicted.deltas, halves.observed.deltas, strict=True)
        ]
    )
    effect = effect_sizes(sim, conditions)
    strong = effect >= STRONG_EFFECT
    passenger = sim.network.is_passenger[[sim.genes.index(c.perturbation) for c in conditions]]
    observed = _quiet_pseudobulk(lognorm, conditions)
    train_mean = []
    for k in np.flatnonzero(strong):
        others = [j for j, c in enumerate(conditions) if j != k and c.context == conditions[k].context]
        prediction = observed.deltas[others].mean(axis=0)
        train_mean.append(pearson_delta(prediction, observed.deltas[k], genes, conditions[k].targets))
    return {
        "n_singles": len(conditions),
        "n_strong": int(strong.sum()),
        "n_passenger": int(passenger.sum()),
        "fraction_no_effect": float(np.mean(effect < NO_EFFECT)),
        "ceiling_strong_median": float(np.median(ceiling[strong])) if strong.any() else float("nan"),
        "ceiling_passenger_median": float(np.median(ceiling[passenger])) if passenger.any() else float("nan"),
        "ceiling_all_median": float(np.median(ceiling)),
        "train_mean_strong_median": float(np.median(train_mean)) if train_mean else float("nan"),
    }


def screen_report(sim: Simulator, adata: ad.AnnData) -> dict:
    """All checks on a sampled genetic screen (raw counts as :meth:`Simulator.sample` returns them)."""
    from biojepa.data.preprocess import prepare

    lognorm = prepare(adata, dataset=f"sim-{sim.config.preset}")
    agree, total = target_sign_agreement(sim)
    doubles = [c for c in sim.design() if len(c.targets) == 2]
    types = interaction_table(sim, doubles)["type"].value_counts() if doubles else None
    mislabelled = adata.obs["perturbation"].astype(str) != adata.obs["sim_true_perturbation"].astype(str)
    return {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "own_gene_drop_fraction": own_gene_drop(sim, lognorm),
        "target_sign_agreement": agree / total if total else float("nan"),
        "target_sign_edges": total,
        "mislabelled_fraction": float(mislabelled.mean()),
        "doubles": len(doubles),
        "double_types": {} if types is None else {k: int(v) for k, v in types.items()},
        **ceiling_and_train_mean(sim, lognorm),
    }


def _quiet_pseudobulk(lognorm: ad.AnnData, conditions: Sequence[Condition]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return pseudobulk_deltas(lognorm, conditions, de=False)
