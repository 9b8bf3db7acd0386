"""Export to cell-eval's format, and an outside check of our Pearson Δ arithmetic with cell-eval itself.

Where the definitions coincide. Both compute Pearson Δ as the Pearson correlation, over genes, of the
predicted and observed pseudobulk effects (mean log-normalised expression of a perturbation minus the
control mean, on the same genes). They differ in two ways:

* our ``pearson_delta`` drops the targeted gene(s) of each perturbation (a knockdown trivially lowers its
  own target); cell-eval keeps every gene. Where the target is not a measured gene the two agree (up to
  the float32 storage of the exported cells); where it is, cell-eval equals ours computed with the target
  kept, and both are checked.
* cell-eval takes the predicted effect against the *predicted* control cells; the export copies the real
  control cells into the prediction, so both use the measured control mean, as ours does.

Discrimination (cell-eval's ``discrimination_score_l1``, the VCC "PDS") is compared too: both rank the
true observed Δ by L1 distance to the prediction, dropping the target column when it is a measured gene;
they differ only on exact ties (cell-eval takes the argsort position, ours counts ties as ½). Not
compared: our top-20 variants (``pearson_delta_top20``, ``mse_top20``, ``direction_acc_top20``) have no
cell-eval counterpart; its ``mse_delta`` averages over all genes; its DE metrics (Wilcoxon via pdex) are
skipped to keep the tests fast.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from biojepa.data.schema import CONTROL, UNS_KEY, Condition
from biojepa.errors import DataError
from biojepa.eval.cell_eval import PERT_COL, condition_labels, export_prediction, shift_to_mean
from biojepa.eval.metrics import pearson_delta, score_predictions
from biojepa.eval.pseudobulk import pseudobulk_deltas

GENES = [f"G{i}" for i in range(30)]
# G0 is a measured gene that its perturbation knocks down; the others target unmeasured genes.
PERTURBATIONS = ["PA", "PB", "PC", "G0"]


def _prepared(contexts: tuple[str, ...] = ("ctx",), seed: int = 0) -> ad.AnnData:
    """Tiny log-normalised screen: 50 control cells and 15 cells per perturbation in each context."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 8.0, size=len(GENES))
    blocks, obs = [], []
    for context in contexts:
        for label, n in [(CONTROL, 50)] + [(p, 15) for p in PERTURBATIONS]:
            effect = np.ones(len(GENES)) if label == CONTROL else rng.lognormal(0.0, 0.6, size=len(GENES))
            effect[np.isin(GENES, [label])] = 0.05
            blocks.append(rng.poisson(base * effect, size=(n, len(GENES))))
            obs += [(label, context)] * n
    frame = pd.DataFrame(obs, columns=["perturbation", "context"])
    frame["perturbation_type"] = np.where(frame["perturbation"] == CONTROL, "control", "crispr_ko")
    frame["dose"], frame["time"], frame["batch"] = 0.0, np.nan, "b1"
    frame.index = [f"cell{i}" for i in range(len(frame))]
    adata = ad.AnnData(X=np.vstack(blocks).astype(np.float32), obs=frame, var=pd.DataFrame(index=GENES))
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.uns[UNS_KEY] = {"log_normalised": True}
    return adata


def _observed_deltas(adata: ad.AnnData, conditions: list[Condition]) -> np.ndarray:
    return pseudobulk_deltas(adata, conditions, de=False).deltas


def _conditions(contexts: tuple[str, ...] = ("ctx",)) -> list[Condition]:
    return [Condition(p, ctx) for ctx in contexts for p in PERTURBATIONS]


def test_export_matches_cell_eval_layout_and_predicted_pseudobulk(tmp_path):
    adata = _prepared(contexts=("ctxA", "ctxB"))
    conditions = _conditions(("ctxA", "ctxB"))
    predicted = _observed_deltas(adata, conditions) * 0.5
    real_path, pred_path = export_prediction(
        tmp_path, method="linear", seed=3, real=adata, conditions=conditions, predicted_deltas=predicted
    )
    assert real_path.name == "linear__seed3_real.h5ad"
    assert pred_path.name == "linear__seed3_pred.h5ad"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([real_path.name, pred_path.name])

    real, pred = ad.read_h5ad(real_path), ad.read_h5ad(pred_path)
    assert list(real.var_names) == GENES and list(pred.var_names) == GENES
    assert real.n_obs == adata.n_obs
    group = [PERT_COL, "context"]
    assert real.obs.groupby(group).size().to_dict() == pred.obs.groupby(group).size().to_dict()
    assert pred.X.min() >= 0

    for which in ("ctxA", "ctxB"):
        is_control = (real.obs["perturbation"] == CONTROL) & (real.obs["context"] == which)
        np.testing.assert_array_equal(
            pred.X[((pred.obs["perturbation"] == CONTROL) & (pred.obs["context"] == which)).to_numpy()],
            real.X[is_control.to_numpy()],
        )
    # The predicted pseudobulk Δ is exactly the Δ that was passed in (no gene needed flooring here).
    assert pred.uns[UNS_KEY]["floored_entries"] == 0
    np.testing.assert_allclose(_observed_deltas(pred, conditions), predicted, atol=1e-5)
    np.testing.assert_allclose(_observed_deltas(real, conditions), predicted * 2, atol=1e-5)


def _cell_eval_scores(real_path, pred_path, outdir, metric: str = "pearson_delta") -> dict[str, float]:
    """cell-eval's own per-perturbation score for one of its AnnData-pair metrics (no DE, for speed)."""
    from cell_eval import MetricsEvaluator, MetricType, metrics_registry

    others = [m for m in metrics_registry.list_metrics(MetricType.ANNDATA_PAIR) if m != metric]
    evaluator = MetricsEvaluator(
        adata_pred=str(pred_path),
        adata_real=str(real_path),
        control_pert=CONTROL,
        pert_col=PERT_COL,
        num_threads=1,
        outdir=str(outdir),
        skip_de=True,
    )
    results, _ = evaluator.compute(profile="anndata", skip_metrics=others, write_csv=False)
    return dict(zip(results["perturbation"].to_list(), results[metric].to_list(), strict=True))


def test_cell_eval_pearson_delta_agrees_with_ours(tmp_path):
    adata = _prepared()
    conditions = _conditions()
    truth = pseudobulk_deltas(adata, conditions, de=False)
    noise = np.random.default_rng(1).normal(0.0, 0.3, size=truth.deltas.shape)
    predicted = truth.deltas + noise
    real_path, pred_path = export_prediction(
        tmp_path / "export",
        method="ridge_prior",
        seed=1,
        real=adata,
        conditions=conditions,
        predicted_deltas=predicted,
    )
    theirs = _cell_eval_scores(real_path, pred_path, tmp_path / "cell_eval")

    scores = score_predictions(predicted, conditions, truth.genes, truth, metrics=["pearson_delta"])
    ours = dict(zip(scores["perturbation"], scores["pearson_delta"], strict=True))
    assert set(theirs) == set(PERTURBATIONS)
    for label in ["PA", "PB", "PC"]:  # target not measured: the definitions coincide
        assert theirs[label] == pytest.approx(ours[label], abs=1e-5)
    # The check has teeth: the perturbations score differently and far from 1.
    assert max(ours.values()) < 0.999 and np.ptp(list(ours.values())) > 1e-3
    # G0 targets a measured gene: cell-eval keeps it, ours drops it. With the target kept, ours matches.
    g0 = PERTURBATIONS.index("G0")
    kept = pearson_delta(predicted[g0], truth.deltas[g0], truth.genes, targets=())
    assert theirs["G0"] == pytest.approx(kept, abs=1e-5)
    assert abs(theirs["G0"] - ours["G0"]) > 1e-3


def test_cell_eval_discrimination_agrees_with_ours_without_ties(tmp_path):
    """PDS (``discrimination_score_l1``) equals our ``discrimination`` for single-gene perturbations.

    Both rank the true observed Δ among all test perturbations' by L1 distance to the prediction, dropping
    the target column when it is a measured gene; they differ only on exact ties, which noisy data lacks.
    """
    adata = _prepared()
    conditions = _conditions()
    truth = pseudobulk_deltas(adata, conditions, de=False)
    # Predictions that land closest to the wrong perturbation for some conditions, so ranks vary.
    predicted = np.roll(truth.deltas, 1, axis=0) * 0.5 + truth.deltas * 0.5
    predicted += np.random.default_rng(2).normal(0.0, 0.4, size=predicted.shape)
    real_path, pred_path = export_prediction(
        tmp_path, method="m", seed=0, real=adata, conditions=conditions, predicted_deltas=predicted
    )
    theirs = _cell_eval_scores(real_path, pred_path, tmp_path / "ce", metric="discrimination_score_l1")
    scores = score_predictions(predicted, conditions, truth.genes, truth, metrics=["discrimination"])
    ours = dict(zip(scores["perturbation"], scores["discrimination"], strict=True))
    assert theirs == pytest.approx(ours, abs=1e-9)
    assert len(set(ours.values())) > 1


def test_doses_of_one_compound_get_distinct_condition_labels(tmp_path):
    adata = _prepared()
    obs = adata.obs
    for label, dose in [("PA", 10.0), ("PB", 100.0)]:
        rows = obs["perturbation"] == label
        obs.loc[rows, ["perturbation_type", "dose", "time"]] = ["compound", dose, 24.0]
    obs["perturbation"] = obs["perturbation"].replace({"PA": "drugX", "PB": "drugX"})
    conditions = [Condition("drugX", "ctx", "compound", dose, 24.0) for dose in (10.0, 100.0)]
    assert condition_labels(conditions) == ["drugX_10nM_24h", "drugX_100nM_24h"]
    assert condition_labels([Condition("drugX", "ctx", "compound", 10.0)]) == ["drugX"]

    predicted = np.full((2, len(GENES)), 0.1)
    real_path, pred_path = export_prediction(
        tmp_path, method="m", seed=0, real=adata, conditions=conditions, predicted_deltas=predicted
    )
    real, pred = ad.read_h5ad(real_path), ad.read_h5ad(pred_path)
    counts = real.obs[PERT_COL].value_counts().to_dict()
    assert counts == {CONTROL: 50, "drugX_10nM_24h": 15, "drugX_100nM_24h": 15}
    assert pred.obs[PERT_COL].value_counts().to_dict() == counts
    np.testing.assert_allclose(_observed_deltas(pred, conditions), predicted, atol=1e-5)


def test_cell_eval_agrees_on_real_papalexi(tmp_path, shared_data_dir):
    """The same check on the real Papalexi THP-1 screen, with a leave-one-out mean-effect predictor."""
    from biojepa.data import load_dataset
    from biojepa.data.preprocess import prepare

    adata = prepare(load_dataset("papalexi2021"), dataset="papalexi2021")
    every = pseudobulk_deltas(adata, de=False)
    chosen = ["IFNGR1", "SMAD4", "SPI1", "STAT2", "STAT3"]
    rows = [every.condition_keys().index((p, "THP-1")) for p in chosen]
    conditions = [every.conditions[i] for i in rows]
    # Each condition is predicted as the mean Δ of all the other perturbations.
    predicted = np.array([np.delete(every.deltas, i, axis=0).mean(axis=0) for i in rows])
    real_path, pred_path = export_prediction(
        tmp_path, method="train_mean", seed=1, real=adata, conditions=conditions, predicted_deltas=predicted
    )
    theirs = _cell_eval_scores(real_path, pred_path, tmp_path / "cell_eval")
    truth = every.subset(conditions)
    ours = score_predictions(predicted, conditions, truth.genes, truth, metrics=["pearson_delta"])
    ours = dict(zip(ours["perturbation"], ours["pearson_delta"], strict=True))
    measured = [p for p in chosen if p in adata.var_names]
    assert measured == ["STAT2", "STAT3"]
    for i, label in enumerate(chosen):
        if label in measured:  # target kept by cell-eval, dropped by ours
            kept = pearson_delta(predicted[i], truth.deltas[i], truth.genes, targets=())
            assert theirs[label] == pytest.approx(kept, abs=1e-4)
            assert abs(theirs[label] - ours[label]) > 1e-3
        else:  # float32 storage of the exported cells limits the agreement to ~1e-5
            assert theirs[label] == pytest.approx(ours[label], abs=1e-4)


def test_negative_predicted_means_are_floored_and_counted(tmp_path):
    adata = _prepared()
    conditions = _conditions()
    predicted = np.zeros((len(conditions), len(GENES)))
    predicted[0, :3] = -100.0
    _, pred_path = export_prediction(
        tmp_path, method="m", seed=0, real=adata, conditions=conditions, predicted_deltas=predicted
    )
    pred = ad.read_h5ad(pred_path)
    assert pred.uns[UNS_KEY]["floored_entries"] == 3
    assert np.all(pred.X[(pred.obs["perturbation"] == "PA").to_numpy(), :3] == 0)


def test_shift_to_mean_is_uniform_without_floor_and_exact_with_it():
    cells = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    np.testing.assert_allclose(shift_to_mean(cells, np.array([3.0, 3.0])), cells + np.array([1.0, 0.0]))
    shifted = shift_to_mean(cells, np.array([0.5, 0.0]))
    assert shifted.min() >= 0
    np.testing.assert_allclose(shifted.mean(axis=0), [0.5, 0.0], atol=1e-12)
    # Gene 0: s = -3 gives (0, 0, 1) → mean 1/3; the exact solution is s = -2.5 → (0, 0, 1.5).
    np.testing.assert_allclose(shifted[:, 0], [0.0, 0.0, 1.5])


def test_shift_to_mean_rejects_negative_input():
    with pytest.raises(DataError, match="non-negative"):
        shift_to_mean(np.array([[1.0]]), np.array([-1.0]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a, c, d: (a, c, d[:, :-1]), "shape"),
        (lambda a, c, d: (a, c, np.where(d == d[0, 0], np.nan, d)), "NaN"),
        (lambda a, c, d: (a, [*c[:-1], Condition("PZ", "ctx")], d), "no cells"),
        (lambda a, c, d: (a, [*c[:-1], Condition("PA", "other")], d), "no control cells"),
        (lambda a, c, d: (a, [*c[:-1], c[0]], d), "duplicates"),
        (lambda a, c, d: (a, [Condition(CONTROL, "ctx"), *c[1:]], d), "include 'control'"),
        (lambda a, c, d: (a, [], d[:0]), "no conditions"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, change, message):
    adata = _prepared()
    conditions = _conditions()
    deltas = _observed_deltas(adata, conditions)
    adata, conditions, deltas = change(adata, conditions, deltas)
    with pytest.raises(DataError, match=message):
        export_prediction(
            tmp_path, method="m", seed=0, real=adata, conditions=conditions, predicted_deltas=deltas
        )


def _export_zero_deltas(tmp_path, adata: ad.AnnData, method: str = "m"):
    conditions = _conditions()
    return export_prediction(
        tmp_path,
        method=method,
        seed=0,
        real=adata,
        conditions=conditions,
        predicted_deltas=np.zeros((len(conditions), len(GENES))),
    )


def test_rejects_data_that_is_not_log_normalised(tmp_path):
    adata = _prepared()
    adata.uns[UNS_KEY] = {}
    with pytest.raises(DataError, match="log-normalised"):
        _export_zero_deltas(tmp_path, adata)
    adata.uns[UNS_KEY] = {"log_normalised": True}
    adata.X = adata.X * 100
    with pytest.raises(DataError, match="log1p"):
        _export_zero_deltas(tmp_path, adata)


def test_rejects_unsafe_method_name(tmp_path):
    with pytest.raises(DataError, match="file name"):
        _export_zero_deltas(tmp_path, _prepared(), method="../x")
