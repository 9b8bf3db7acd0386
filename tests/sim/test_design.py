import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.sim.config import DesignConfig
from biojepa.sim.design import plan_cells, sampled_conditions


def test_every_context_samples_the_same_conditions(check_sim):
    conditions = check_sim.design()
    by_context = {}
    for c in conditions:
        by_context.setdefault(c.context, []).append(c.perturbation)
    assert by_context["ctxA"] == by_context["ctxB"]
    assert by_context["ctxA"][0] == "control"
    assert len(by_context["ctxA"]) == 1 + 40 + 12
    assert [(c.perturbation, c.context) for c in check_sim.design()] == [
        (c.perturbation, c.context) for c in conditions
    ]


def test_doubles_pair_sampled_singles_and_mostly_regulators(check_sim):
    conditions = [c for c in check_sim.design() if c.context == "ctxA"]
    singles = {c.perturbation for c in conditions if len(c.targets) == 1}
    doubles = [c for c in conditions if len(c.targets) == 2]
    assert all(set(c.targets) <= singles for c in doubles)
    regulator = check_sim.network.is_regulator
    both = [all(regulator[check_sim.genes.index(t)] for t in c.targets) for c in doubles]
    assert np.mean(both) >= 0.5


def test_plan_counts_shares_and_mislabels(check_sim):
    conditions = check_sim.design()
    variants, _ = check_sim.states(conditions)
    plan = plan_cells(
        conditions, variants, DesignConfig(cells_per_condition=200), 0.1, np.random.default_rng(0)
    )
    counts = np.bincount(plan.condition, minlength=len(conditions))
    assert counts[0] == 200 and 50 < np.median(counts[1:]) < 400
    assert np.array_equal(variants.condition[plan.variant], plan.condition)
    wrong = plan.observed != plan.condition
    assert 0.08 < wrong.mean() < 0.12
    context = np.array([c.context for c in conditions])
    assert np.array_equal(context[plan.observed], context[plan.condition])


def test_compound_design_needs_compounds_and_doses(check_sim):
    cfg = DesignConfig(perturbation_type="compound", doses_nm=(10.0,))
    with pytest.raises(DataError, match="n_compounds"):
        sampled_conditions(check_sim.network, check_sim.compounds, ["a"], cfg, np.random.default_rng(0))


def test_too_many_singles_is_an_error(check_sim):
    with pytest.raises(DataError, match="exceeds"):
        sampled_conditions(
            check_sim.network,
            check_sim.compounds,
            ["a"],
            DesignConfig(n_singles=10_000),
            np.random.default_rng(0),
        )
