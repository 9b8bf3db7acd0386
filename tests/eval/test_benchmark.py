from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import biojepa.data.preprocess as preprocess
import biojepa.eval.methods as methods_module
from biojepa.data.preprocess import prepare
from biojepa.data.splits import make_split
from biojepa.errors import DataError
from biojepa.eval.benchmark import BenchmarkConfig, resolve_methods, run_benchmark
from biojepa.eval.methods import Method
from biojepa.sim.presets import simulate

# baselines announce, as warnings, the test conditions they could not embed (recorded in results.json)
pytestmark = pytest.mark.filterwarnings("ignore:.*used the train mean for them:UserWarning")

SYNTHETIC_METHODS = ("no_change", "train_mean", "additive", "linear", "ceiling")
BASELINES = (
    "no_change",
    "train_mean",
    "additive",
    "linear",
    "ridge_prior",
    "knn_prior",
    "network_prior",
    "ceiling",
)


@pytest.fixture
def synthetic_run(screen, tmp_path):
    adata = screen(targets=[f"G{i}" for i in range(1, 21)], n_cells=30)
    config = BenchmarkConfig(dataset="synthetic", seeds=(1, 2), methods=SYNTHETIC_METHODS)
    steps: list[str] = []
    results = run_benchmark(config, tmp_path, adata=adata, progress=steps.append)
    return results, tmp_path, steps


def test_writes_results_csv_and_deltas_in_the_documented_format(synthetic_run):
    results, out, steps = synthetic_run
    assert len(steps) == 2 * len(SYNTHETIC_METHODS)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert {"dataset", "split", "seeds", "groups", "methods", "gap_closed", "settings"} <= set(on_disk)
    assert set(on_disk["methods"]) == set(SYNTHETIC_METHODS)
    stats = on_disk["methods"]["train_mean"]["all"]["pearson_delta"]
    assert {"mean", "sd", "median", "per_seed", "per_seed_mean", "n"} <= set(stats)
    assert len(stats["per_seed"]) == 2
    assert "median" in on_disk["settings"]["aggregation"]
    assert set(on_disk["groups"]["strong"]) <= set(on_disk["groups"]["all"])
    # every fitted method records its fit and predict wall time per seed (the ceiling fits nothing)
    timings = on_disk["settings"]["timings"]
    assert set(timings) == set(SYNTHETIC_METHODS) - {"ceiling"}
    assert all(t["fit_s"] >= 0 and t["predict_s"] >= 0 for m in timings.values() for t in m.values())
    assert set(timings["train_mean"]) == {"seed1", "seed2"}

    table = pd.read_csv(out / "per_perturbation.csv")
    assert list(table.columns[:7]) == [
        "method",
        "seed",
        "perturbation",
        "context",
        "group",
        "reference",
        "n_cells",
    ]
    assert set(table.loc[table["method"] == "train_mean", "n_cells"]) == {30}
    assert set(table.loc[table["method"] == "ceiling", "n_cells"]) == {15}
    assert "discrimination" in table.columns and "de_overlap" in table.columns
    # the per-seed median in the JSON is the median of the CSV rows
    rows = table[(table["method"] == "train_mean") & (table["seed"] == 1)]
    assert stats["per_seed"][0] == pytest.approx(rows["pearson_delta"].median())

    with np.load(out / "deltas" / "linear__seed1.npz") as npz:
        assert npz["predicted"].dtype == np.float32 and npz["observed"].shape == npz["predicted"].shape
        assert npz["predicted"].shape == (len(npz["perturbations"]), len(npz["genes"]))
        assert npz["strong"].dtype == bool and len(npz["contexts"]) == len(npz["perturbations"])
    assert not list(out.rglob("*.tmp"))


def test_scores_are_sane_on_a_screen_with_real_effects(synthetic_run):
    results, _, _ = synthetic_run
    methods = results["methods"]
    assert methods["ceiling"]["all"]["pearson_delta"]["mean"] > 0.8
    assert methods["no_change"]["all"]["pearson_delta"]["mean"] is None  # undefined, not a number
    # perturbation-blind predictors cannot tell perturbations apart (a constant prediction ranks the N
    # true Δs in one fixed order: mean score 1 − (N − 1)/2N = 0.6 for N = 5); the ceiling can
    assert methods["train_mean"]["all"]["discrimination"]["mean"] < 0.65
    assert methods["ceiling"]["all"]["discrimination"]["mean"] > 0.9


def test_unknown_methods_and_empty_seeds_are_refused(screen, tmp_path):
    with pytest.raises(DataError, match="unknown method"):
        resolve_methods(["train_mean", "nope"])
    assert resolve_methods(["all"])[-1] == "ceiling"
    assert resolve_methods(["baselines"]) == list(BASELINES)
    with pytest.raises(DataError, match="no seeds"):
        run_benchmark(BenchmarkConfig("x", seeds=()), tmp_path, adata=screen())


def test_papalexi_calibration(shared_data_dir, tmp_path):
    """Real 299-gene Papalexi subset: the mean is a strong bar, the ceiling is near 0.9 on strong targets."""
    config = BenchmarkConfig(dataset="papalexi2021", seeds=(1, 2), methods=BASELINES)
    results = run_benchmark(config, tmp_path)
    assert list(results["methods"]) == list(BASELINES)
    # the receptor / JAK-STAT knockouts move the IFN-γ response; most other targets barely move cells
    ceiling = results["ceiling_pearson_delta"]
    assert min(ceiling[f"{t}|THP-1"] for t in ("IFNGR1", "IFNGR2", "JAK2", "STAT1")) > 0.8
    assert sum(v < 0.5 for v in ceiling.values()) > len(ceiling) / 2
    assert results["groups"]["strong"] and set(results["groups"]["strong"]) <= {
        k.split("|")[0] for k, v in ceiling.items() if v >= 0.5
    }
    methods = results["methods"]
    assert methods["ceiling"]["strong"]["pearson_delta"]["median"] > 0.8
    assert 0.2 < methods["train_mean"]["strong"]["pearson_delta"]["median"] < 0.9
    assert methods["train_mean"]["all"]["discrimination"]["mean"] < 0.7
    assert (tmp_path / "per_perturbation.csv").is_file()


def test_simulated_data_is_also_scored_against_the_noise_free_truth(tmp_path):
    adata = prepare(simulate("tiny", 0))
    # ridge_prior runs on the simulator's own (noisy) gene priors: its genes have no GO annotations
    config = BenchmarkConfig(dataset="tiny", seeds=(1,), methods=("train_mean", "ridge_prior", "ceiling"))
    results = run_benchmark(config, tmp_path / "bench", adata=adata, export_cell_eval=tmp_path / "export")
    assert set(results["vs_truth"]) == {"train_mean", "ridge_prior"}  # the ceiling has no noise-free twin
    truth = results["vs_truth"]["train_mean"]["all"]["pearson_delta"]
    assert truth["n"] == results["methods"]["train_mean"]["all"]["pearson_delta"]["n"]
    table = pd.read_csv(tmp_path / "bench" / "per_perturbation.csv")
    assert set(table["reference"]) == {"observed", "truth"}
    assert sorted(p.name for p in (tmp_path / "export").glob("*.h5ad")) == [
        "ridge_prior__seed1_pred.h5ad",
        "ridge_prior__seed1_real.h5ad",
        "train_mean__seed1_pred.h5ad",
        "train_mean__seed1_real.h5ad",
    ]


def test_highly_variable_genes_are_chosen_on_training_cells_only(screen, tmp_path, monkeypatch):
    adata = screen(targets=[f"G{i}" for i in range(1, 13)])
    seen: list[np.ndarray] = []
    original = preprocess.select_hvg

    def spy(data, train_mask, n_top):
        seen.append(np.asarray(train_mask))
        return original(data, train_mask, n_top)

    monkeypatch.setattr(preprocess, "select_hvg", spy)
    config = BenchmarkConfig(dataset="synthetic", seeds=(1,), methods=("train_mean", "ceiling"), n_hvg=12)
    run_benchmark(config, tmp_path, adata=adata)
    test_cells = make_split(adata, "unseen_perturbation", 1).cell_masks(adata)["test"]
    assert len(seen) == 1 and not (seen[0] & test_cells).any()
    with np.load(tmp_path / "deltas" / "train_mean__seed1.npz") as npz:
        assert len(npz["genes"]) == 12 and npz["predicted"].shape[1] == 12


class _NaNMethod(Method):
    """Predicts NaN for one gene: must stop the benchmark with the method named."""

    def fit(self, train, val, priors) -> None:
        self.n_genes = train.n_vars

    def predict_deltas(self, conditions, controls) -> np.ndarray:
        out = np.zeros((len(conditions), self.n_genes))
        out[0, 3] = np.nan
        return out


def test_a_method_predicting_nan_stops_the_run_with_a_clear_error(screen, tmp_path, monkeypatch):
    fitted_after: list[str] = []

    class _Later(_NaNMethod):
        def fit(self, train, val, priors) -> None:
            fitted_after.append("fitted")

    monkeypatch.setitem(methods_module._REGISTRY, "nan_method", _NaNMethod)
    monkeypatch.setitem(methods_module._REGISTRY, "later", _Later)
    config = BenchmarkConfig(dataset="synthetic", seeds=(1, 2), methods=("nan_method", "later"))
    with pytest.raises(DataError, match=r"method 'nan_method', seed 1: predicted Δ holds 1 NaN"):
        run_benchmark(config, tmp_path, adata=screen())
    assert not (tmp_path / "results.json").exists()
    assert not fitted_after  # the run stopped at the bad prediction, before the next fit


class _FittingMethod(Method):
    """Predicts zero, after choosing a scale from the training size: stands for fitted gates."""

    def fit(self, train, val, priors) -> None:
        self.n_genes, self.scale = train.n_vars, float(train.n_obs)

    def fitted_values(self) -> dict:
        return {"scale": self.scale}

    def predict_deltas(self, conditions, controls) -> np.ndarray:
        return np.zeros((len(conditions), self.n_genes))


def test_what_a_method_fits_on_its_own_is_recorded_per_seed(screen, tmp_path, monkeypatch):
    monkeypatch.setitem(methods_module._REGISTRY, "fitting", _FittingMethod)
    config = BenchmarkConfig(dataset="synthetic", seeds=(1, 2), methods=("fitting", "train_mean"))
    results = run_benchmark(config, tmp_path, adata=screen(targets=[f"G{i}" for i in range(1, 13)]))
    fitted = json.loads((tmp_path / "results.json").read_text())["settings"]["fitted"]
    assert fitted == results["settings"]["fitted"]
    assert set(fitted) == {"fitting"}  # the baselines choose nothing on their own
    assert set(fitted["fitting"]) == {"seed1", "seed2"} and fitted["fitting"]["seed1"]["scale"] > 0


class _SeededMethod(_FittingMethod):
    """Records the seed it was built with: stands for a model with its own randomness."""

    seeded = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fitted_values(self) -> dict:
        return {"seed": self.seed}


@pytest.mark.parametrize(
    ("training_seed", "expected"), [(0, {1: 0, 2: 0}), (7, {1: 7, 2: 7}), (None, {1: 1, 2: 2})]
)
def test_seeded_methods_train_with_the_fixed_training_seed_or_the_split_seed(
    screen, tmp_path, monkeypatch, training_seed, expected
):
    monkeypatch.setitem(methods_module._REGISTRY, "seeded", _SeededMethod)
    config = BenchmarkConfig(
        dataset="synthetic", seeds=(1, 2), methods=("seeded", "train_mean"), training_seed=training_seed
    )
    results = run_benchmark(config, tmp_path, adata=screen(targets=[f"G{i}" for i in range(1, 13)]))
    fitted = results["settings"]["fitted"]["seeded"]
    assert {s: fitted[f"seed{s}"]["seed"] for s in (1, 2)} == expected
    assert results["settings"]["training_seed"] == training_seed


def test_split_groups_are_counted_under_the_seed_that_made_them(tmp_path):
    adata = prepare(simulate("tiny", 0))
    seeds = (1, 2, 3)
    config = BenchmarkConfig(dataset="tiny", split="doubles", seeds=seeds, methods=("train_mean",))
    run_benchmark(config, tmp_path, adata=adata)
    table = pd.read_csv(tmp_path / "per_perturbation.csv")
    table = table[table["reference"] == "observed"]
    for seed in seeds:
        split = make_split(adata, "doubles", seed)
        rows = table[table["seed"] == seed]
        for name, members in split.groups.items():
            expected = {(p, c) for p, c in members}
            tagged = rows[rows["group"].str.split(";").apply(lambda g, n=name: n in g)]
            assert set(zip(tagged["perturbation"], tagged["context"], strict=True)) == expected & set(
                zip(rows["perturbation"], rows["context"], strict=True)
            )
            # the same group restricted to the strong conditions
            strong = rows[rows["group"].str.split(";").apply(lambda g: "strong" in g)]
            strong_keys = set(zip(strong["perturbation"], strong["context"], strict=True))
            tagged = rows[rows["group"].str.split(";").apply(lambda g, n=name: f"strong_{n}" in g)]
            assert set(zip(tagged["perturbation"], tagged["context"], strict=True)) == expected & strong_keys
