import numpy as np

from biojepa.sim.checks import (
    ceiling_and_train_mean,
    effect_sizes,
    own_gene_drop,
    screen_report,
    target_sign_agreement,
    true_deltas,
)


def test_knocked_down_gene_drops_in_its_cells(check_sim, check_lognorm):
    assert own_gene_drop(check_sim, check_lognorm) > 0.9


def test_tf_knockdown_reaches_its_direct_targets_with_the_right_sign(check_sim):
    agree, total = target_sign_agreement(check_sim)
    assert total > 20 and agree / total > 0.9


def test_effect_sizes_exclude_the_targets(check_sim):
    condition = next(c for c in check_sim.design() if len(c.targets) == 1)
    delta = true_deltas(check_sim, [condition])[0]
    own = check_sim.genes.index(condition.perturbation)
    assert np.isclose(effect_sizes(check_sim, [condition])[0], np.linalg.norm(np.delete(delta, own)))


def test_ceiling_high_for_strong_low_for_passengers_train_mean_well_below(check_sim, check_lognorm):
    result = ceiling_and_train_mean(check_sim, check_lognorm)
    assert result["n_strong"] >= 3 and result["n_passenger"] >= 5
    assert result["ceiling_strong_median"] > 0.8
    assert result["ceiling_passenger_median"] < 0.2
    assert result["ceiling_strong_median"] - result["train_mean_strong_median"] > 0.3
    assert 0.2 < result["fraction_no_effect"] < 0.8


def test_screen_report_collects_every_check(check_sim, check_adata):
    report = screen_report(check_sim, check_adata)
    assert report["n_cells"] == check_adata.n_obs
    assert 0.01 < report["mislabelled_fraction"] < 0.03
    assert sum(report["double_types"].values()) == report["doubles"] == 24
    assert set(report["double_types"]) - {"additive", "no_effect"}
