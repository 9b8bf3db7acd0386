from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biojepa.eval.aggregate import gap_closed, summarise


def _scores() -> pd.DataFrame:
    rows = []
    for seed, values in ((1, [0.1, 0.2, 0.9]), (2, [0.3, np.nan, 0.5])):
        for pert, value in zip(["A", "B", "C"], values, strict=True):
            rows.append(
                {"method": "m", "seed": seed, "perturbation": pert, "context": "x", "pearson_delta": value}
            )
    return pd.DataFrame(rows)


def test_summary_per_seed_medians_pooled_median_and_nan_handling():
    groups = {
        "all": [(seed, p, "x") for seed in (1, 2) for p in "ABC"],
        "strong": [(1, "C", "x"), (2, "C", "x")],
        "empty": [],
    }
    out = summarise(_scores(), groups, ["pearson_delta"], seeds=[1, 2])["m"]
    stats = out["all"]["pearson_delta"]
    assert stats["per_seed"] == pytest.approx([0.2, 0.4])
    assert stats["per_seed_mean"] == pytest.approx([0.4, 0.4])
    assert stats["mean"] == pytest.approx(0.3)
    assert stats["sd"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert stats["median"] == pytest.approx(0.3)  # of 0.1, 0.2, 0.9, 0.3, 0.5
    assert stats["n"] == 5
    assert out["strong"]["pearson_delta"]["per_seed"] == pytest.approx([0.9, 0.5])
    # membership is per seed: C counts in "late" under seed 2 only
    late = summarise(_scores(), {"late": [(2, "C", "x")]}, ["pearson_delta"], seeds=[1, 2])["m"]["late"]
    assert late["pearson_delta"]["per_seed"] == [None, pytest.approx(0.5)]
    assert out["empty"]["pearson_delta"] == {
        "mean": None,
        "sd": None,
        "median": None,
        "n": 0,
        "per_seed": [None, None],
        "per_seed_mean": [None, None],
    }


def _summary(values: dict[str, float], metric: str) -> dict:
    return {m: {"all": {metric: {"mean": v}}} for m, v in values.items()}


def test_gap_closed_uses_the_best_baseline_in_the_metric_direction():
    summary = _summary({"mean": 0.4, "lin": 0.5, "model": 0.7, "ceiling": 0.9}, "pearson_delta")
    gaps = gap_closed(summary, baselines=["mean", "lin"])
    assert gaps["model"]["all"]["pearson_delta"] == pytest.approx(0.5)
    assert gaps["lin"]["all"]["pearson_delta"] == pytest.approx(0.0)
    assert "ceiling" not in gaps
    errors = _summary({"mean": 0.4, "lin": 0.3, "model": 0.2, "ceiling": 0.1}, "mse_top20")
    assert gap_closed(errors, baselines=["mean", "lin"])["model"]["all"]["mse_top20"] == pytest.approx(0.5)
    flat = _summary({"mean": 0.4, "model": 0.7, "ceiling": 0.4}, "pearson_delta")
    assert gap_closed(flat, baselines=["mean"])["model"]["all"]["pearson_delta"] is None
