"""The HTML/PNG benchmark report, built from a small fake benchmark output directory."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from biojepa.errors import DataError
from biojepa.eval.aggregate import AGGREGATION, gap_closed, summarise
from biojepa.eval.report import load_results, scatter_method, write_report

METHODS = ["no_change", "train_mean", "additive", "linear", "ridge_prior", "knn_prior", "ceiling"]
METRICS = [
    "pearson_delta",
    "pearson_delta_top20",
    "mse_top20",
    "direction_acc_top20",
    "r2_delta",
    "discrimination",
    "de_overlap",
]
SEEDS = [1, 2]
GENES = ["A", "B", "C", "G1", "G2", "G3", "G4", "G5"]
PERTURBATIONS = ["A", "B", "C", "A+B"]
STRONG = ["A", "A+B"]
# Mean Pearson Δ of each method, so the expected ordering is known: ceiling > linear > train_mean > ...
LEVEL = {
    "no_change": 0.0,
    "train_mean": 0.4,
    "additive": 0.3,
    "linear": 0.5,
    "ridge_prior": 0.35,
    "knn_prior": 0.2,
    "ceiling": 0.9,
    "biojepa": 0.6,
    "biojepa_blind": 0.1,
}


def _fake_benchmark(root, methods=METHODS, perturbations=PERTURBATIONS, n_extra_groups: int = 0) -> None:
    """A benchmark output dir in the benchmark's format, summarised by its own aggregation code.

    Each condition's score is LEVEL[method] + 0.05·i + 0.01·seed (1 − that for error metrics), and the
    CSV also holds rows against a noise-free truth that the report must ignore.
    """
    rng = np.random.default_rng(0)
    rows = []
    for method in methods:
        for seed in SEEDS:
            observed = rng.normal(size=(len(perturbations), len(GENES))).astype(np.float32)
            noise = rng.normal(size=observed.shape).astype(np.float32)
            predicted = LEVEL[method] * observed + (1 - LEVEL[method]) * noise
            root.joinpath("deltas").mkdir(parents=True, exist_ok=True)
            np.savez(
                root / "deltas" / f"{method}__seed{seed}.npz",
                predicted=predicted,
                observed=observed,
                perturbations=np.array(perturbations),
                contexts=np.array(["THP-1"] * len(perturbations)),
                genes=np.array(GENES),
                strong=np.isin(perturbations, STRONG),
            )
            for i, pert in enumerate(perturbations):
                score = LEVEL[method] + 0.05 * i + 0.01 * seed
                for reference, value in (("observed", score), ("truth", -10 * score)):
                    row = {"method": method, "seed": seed, "perturbation": pert, "context": "THP-1"}
                    row["group"] = "all;strong" if pert in STRONG else "all"
                    row["reference"] = reference
                    row.update({m: (1 - value if m.startswith("mse") else value) for m in METRICS})
                    rows.append(row)
    scores = pd.DataFrame(rows)
    groups = {
        "all": [(seed, p, "THP-1") for seed in SEEDS for p in perturbations],
        "strong": [(seed, p, "THP-1") for seed in SEEDS for p in STRONG],
    }
    groups |= {f"extra{k}": groups["all"] for k in range(n_extra_groups)}
    observed_rows = scores[scores["reference"] == "observed"]
    summary = summarise(observed_rows, groups, METRICS, SEEDS)
    baselines = [m for m in methods if m != "ceiling" and not m.startswith("biojepa")]
    results = {
        "dataset": "papalexi2021 <test>",
        "split": "unseen_perturbation",
        "seeds": SEEDS,
        "groups": {
            "all": sorted(set(perturbations)),
            "strong": [p for p in STRONG if p in perturbations],
            **{f"extra{k}": sorted(set(perturbations)) for k in range(n_extra_groups)},
        },
        "methods": summary,
        "gap_closed": gap_closed(summary, baselines, "ceiling"),
        "settings": {"baselines": baselines, "aggregation": AGGREGATION},
    }
    root.joinpath("results.json").write_text(json.dumps(results))
    scores.to_csv(root / "per_perturbation.csv", index=False)


def _reorder_deltas(path) -> None:
    with np.load(path) as data:
        arrays = dict(data)
    arrays["perturbations"] = arrays["perturbations"][::-1]
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def baseline_report(tmp_path_factory):
    """A report of the baselines and the ceiling (no model), rendered once for several tests."""
    root = tmp_path_factory.mktemp("baselines")
    _fake_benchmark(root)
    return root, write_report(root)


def test_report_mentions_every_method_and_metric_and_writes_valid_pngs(baseline_report):
    root, path = baseline_report
    assert path == root / "report.html"
    page = path.read_text()
    for name in METHODS + METRICS:
        assert f">{name}" in page
    assert "papalexi2021 &lt;test&gt;" in page and "<test>" not in page
    assert "unseen_perturbation" in page and "1, 2" in page
    # Ranked on the observed rows only (the truth rows would invert the order): A+B is best, A worst.
    assert "Best: A+B (THP-1)" in page and "Worst: A (THP-1)" in page
    assert "<summary>Run settings</summary>" in page and "&quot;baselines&quot;" in page

    pngs = sorted((root / "figures").glob("*.png"))
    assert len(pngs) == len(METRICS) + 1
    for png in pngs:
        image = imread(png)
        assert image.ndim == 3 and min(image.shape[:2]) > 100
        assert f'src="figures/{png.name}"' in page
    assert not list(root.rglob("*.tmp"))


def test_bar_charts_of_many_groups_wrap_into_rows_of_four(baseline_report, tmp_path):
    _fake_benchmark(tmp_path, n_extra_groups=4)  # 6 groups: a row of 4 and a row of 2
    write_report(tmp_path)
    name = f"metric_{METRICS[0]}.png"
    two_groups = imread(baseline_report[0] / "figures" / name).shape
    six_groups = imread(tmp_path / "figures" / name).shape
    assert 1.5 * two_groups[0] < six_groups[0] < 2.5 * two_groups[0]  # two rows
    assert six_groups[1] < 2.5 * two_groups[1]  # four columns, not six


def test_scatter_uses_the_best_baseline_without_the_model(baseline_report):
    root, path = baseline_report
    assert scatter_method(load_results(root)) == "linear"
    assert (root / "figures" / "scatter_linear.png").is_file()
    # mse is lower-is-better: its best marker goes to the lowest error (linear), not the highest.
    linear_row = path.read_text().split("<th>linear</th>")[1].split("</tr>")[0]
    assert linear_row.count("★") == len(METRICS)


def test_best_non_ceiling_value_is_marked_and_gap_closed_is_computed(tmp_path):
    _fake_benchmark(tmp_path, [*METHODS, "biojepa", "biojepa_blind"])
    page = write_report(tmp_path).read_text()
    results = load_results(tmp_path)
    # biojepa (0.6) beats every baseline but not the ceiling; the best baseline is linear (0.5).
    assert results.gap_closed("biojepa", "all", "pearson_delta") == pytest.approx((0.6 - 0.5) / (0.9 - 0.5))
    assert results.gap_closed("linear", "all", "pearson_delta") == pytest.approx(0.0)
    assert results.gap_closed("ceiling", "all", "pearson_delta") is None
    biojepa_row = page.split('<tr class="model"><th>biojepa</th>')[1].split("</tr>")[0]
    assert biojepa_row.count("★") == len(METRICS)
    assert biojepa_row.endswith("<td>0.25</td>")
    ceiling_row = page.split('<tr class="ceiling"><th>ceiling</th>')[1].split("</tr>")[0]
    assert "★" not in ceiling_row
    assert scatter_method(results) == "biojepa"
    assert (tmp_path / "figures" / "scatter_biojepa.png").is_file()


def test_ties_gap_closed_from_the_file_and_noise_free_scores(tmp_path):
    """Ties are all starred; the gap closed shown is the benchmark's; noise-free scores get own tables."""
    _fake_benchmark(tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    data["methods"]["linear_copy"] = data["methods"]["linear"]
    data["settings"]["baselines"].append("linear_copy")
    data["gap_closed"]["train_mean"]["all"]["pearson_delta"] = 0.125
    data["vs_truth"] = {m: v for m, v in data["methods"].items() if m != "ceiling"}
    (tmp_path / "results.json").write_text(json.dumps(data))
    page = write_report(tmp_path).read_text()
    observed_part, truth_part = page.split("noise-free truth")
    for method in ("linear", "linear_copy"):
        row = observed_part.split(f"<th>{method}</th>")[1].split("</tr>")[0]
        assert row.count("★") == len(METRICS)
    assert observed_part.split("<th>train_mean</th>")[1].split("</tr>")[0].endswith("<td>0.12</td>")
    assert truth_part.count("<table>") == 2 and "<th>ceiling</th>" not in truth_part.split("<h2>")[0]


def test_doses_of_one_compound_are_numbered_conditions(tmp_path):
    """Also: the strong group is empty here, and the report still renders it (as undefined values)."""
    _fake_benchmark(tmp_path, ["train_mean", "linear", "ceiling"], ["drugX", "drugX", "B", "C"])
    page = write_report(tmp_path).read_text()
    strong_table = page.split("<h3>strong</h3>")[1].split("</table>")[0]
    assert "★" not in strong_table and strong_table.count("<td>–</td>") == 3 * (len(METRICS) + 1)
    assert "Best: C (THP-1)" in page
    assert "Worst: drugX #1 (THP-1)" in page and "drugX #2 (THP-1)" in page


def test_unknown_metric_is_a_clear_error(tmp_path):
    _fake_benchmark(tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    data["methods"]["linear"]["all"]["made_up"] = data["methods"]["linear"]["all"]["pearson_delta"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match="made_up"):
        write_report(tmp_path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: shutil.rmtree(root), "does not exist"),
        (lambda root: (root / "results.json").unlink(), "results.json is missing"),
        (lambda root: (root / "results.json").write_text("{not json"), "not valid JSON"),
        (lambda root: (root / "results.json").write_text('{"dataset": "x"}'), "lacks the key"),
        (lambda root: (root / "per_perturbation.csv").unlink(), "per_perturbation.csv is missing"),
        (lambda root: (root / "deltas" / "linear__seed1.npz").unlink(), "linear__seed1.npz is missing"),
        (lambda root: _reorder_deltas(root / "deltas" / "linear__seed1.npz"), "different conditions"),
    ],
)
def test_missing_or_incomplete_results_are_a_clear_error(tmp_path, damage, message):
    root = tmp_path / "bench"
    _fake_benchmark(root)
    damage(root)
    with pytest.raises(DataError, match=message):
        write_report(root)
    assert not (root / "report.html").exists() and not (root / "figures").exists()
