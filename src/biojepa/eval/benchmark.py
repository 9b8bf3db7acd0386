"""`biojepa benchmark`: every method on the same splits, scored on the same pseudobulk Δ.

For each split seed the methods are fitted on the training cells plus all control cells (validation
cells are passed separately) and predict the Δ of every test condition; the split-half ceiling
(:mod:`biojepa.eval.ceiling`) is scored beside them as the method ``ceiling``. Observed Δ come from all
cells of a test condition against the control cells of its context (:mod:`biojepa.eval.pseudobulk`).

Groups: ``all`` (every test condition), ``strong`` (conditions whose split-half ceiling Pearson Δ is at
least 0.5, measured once on the whole dataset with the ceiling's fixed seed, so a condition is strong or
not whichever split seed tests it) and the split's own groups (e.g. doubles ``seen_0``…``seen_2``),
each also restricted to its strong conditions (``strong_seen_0``…).

Methods with randomness of their own (``Method.seeded``: the world model) are built with
``training_seed``, the same for every split seed (0 by default, so a split seed's result does not
depend on which other seeds run), or with the split seed itself when ``training_seed`` is None; the
spread over seeds then covers initialisation and minibatch order too.

Outputs in ``out_dir`` (each written atomically): ``results.json`` (summaries, see
:mod:`biojepa.eval.aggregate`), ``per_perturbation.csv`` (one row per method, seed, condition and
reference, with the groups it belongs to, ``;``-joined, and the number of observed cells, which is
half the group for the ceiling) and ``deltas/{method}__seed{S}.npz`` (predicted and observed Δ,
float32). On simulated data whose simulator exposes ``biojepa.sim.ground_truth_deltas``, methods
are also scored against the noise-free Δ: rows with ``reference == "truth"`` in the CSV and a
``vs_truth`` block in the JSON.
"""

from __future__ import annotations

import importlib.metadata
import io
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from biojepa.data.io import atomic_write, write_json
from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.eval.aggregate import AGGREGATION, GAP_CLOSED, gap_closed, summarise
from biojepa.eval.ceiling import split_half
from biojepa.eval.fits import FitResult, FitTask, gene_subset, run_fits
from biojepa.eval.methods import available_methods, get_method
from biojepa.eval.metrics import available_metrics, get_metric, score_predictions
from biojepa.eval.pseudobulk import ControlBy, PseudobulkDeltas, pseudobulk_deltas
from biojepa.priors.base import GenePriors

CEILING = "ceiling"
HEADLINE_METRIC = "pearson_delta"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to run: dataset, split kind and seeds, method names (``all`` = every registered one)."""

    dataset: str
    split: str = "unseen_perturbation"
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    methods: tuple[str, ...] = ("all",)
    control_by: ControlBy = "context"
    min_cells: int = 2
    n_hvg: int | None = None
    strong_threshold: float = 0.5
    ceiling_seed: int = 0
    training_seed: int | None = 0  # None: each split seed trains with its own value
    jobs: int = 1  # method fits run in this many worker processes (biojepa.eval.fits)


def resolve_methods(names: Sequence[str]) -> list[str]:
    """Expand ``all`` (every registered method) or ``baselines`` (the baselines) plus ``ceiling``.

    Other names must be registered methods or ``ceiling``; unknown ones raise :class:`DataError`.
    """
    registered = available_methods()
    if list(names) == ["all"]:
        return [*registered, CEILING]
    if list(names) == ["baselines"]:
        return [*(m for m in registered if get_method(m).is_baseline), CEILING]
    unknown = [n for n in names if n not in registered and n != CEILING]
    if unknown:
        raise DataError(
            f"unknown method(s) {unknown}; available: {[*registered, CEILING]}, 'all' or 'baselines'"
        )
    return list(dict.fromkeys(names))


def load_benchmark_data(dataset: str) -> ad.AnnData:
    """The prepared AnnData of a registry name or an .h5ad path (prepared here unless it already is)."""
    from biojepa.data import load_dataset
    from biojepa.data.preprocess import is_prepared, load_prepared, prepare

    path = Path(dataset)
    is_file = path.suffix == ".h5ad" and path.is_file()
    if is_file and is_prepared(ad.read_h5ad(path, backed="r")):
        return load_prepared(path)
    return prepare(load_dataset(dataset), dataset=path.stem if is_file else dataset)


def _ground_truth(adata: ad.AnnData, conditions: list[Condition]) -> np.ndarray | None:
    """Noise-free Δ when ``adata`` was simulated, else None."""
    from biojepa.sim import ground_truth_deltas

    return ground_truth_deltas(adata, conditions)


def _priors_for(adata: ad.AnnData, methods: list[str]) -> GenePriors | None:
    """Gene priors if a method needs them: the simulator's for simulated data, else GO+regulons+Hallmark."""
    if not any(get_method(m).needs_priors for m in methods if m != CEILING):
        return None
    from biojepa.priors import load_gene_priors
    from biojepa.sim import priors_of

    simulated = priors_of(adata)
    if simulated is not None:
        return simulated
    labels = adata.obs["perturbation"].astype(str).unique()
    return load_gene_priors(genes=sorted({t for p in labels for t in Condition(p, "").targets}))


def _gene_subset(truth: PseudobulkDeltas, mask: np.ndarray) -> PseudobulkDeltas:
    return PseudobulkDeltas(
        conditions=truth.conditions,
        genes=truth.genes[mask],
        deltas=truth.deltas[:, mask],
        n_cells=truth.n_cells,
        de_genes=None if truth.de_genes is None else truth.de_genes[:, mask],
        skipped=truth.skipped,
    )


def _score_rows(
    predicted: np.ndarray, truth: PseudobulkDeltas, *, method: str, seed: int, reference: str
) -> pd.DataFrame:
    try:
        table = score_predictions(predicted, truth.conditions, truth.genes, truth)
    except DataError as exc:
        raise DataError(f"method {method!r}, seed {seed}: {exc}") from exc
    table.insert(0, "n_cells", truth.n_cells)
    table.insert(0, "reference", reference)
    table.insert(0, "seed", seed)
    table.insert(0, "method", method)
    return table


def _save_deltas(path: Path, predicted: np.ndarray, truth: PseudobulkDeltas, strong: set) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        predicted=predicted.astype(np.float32),
        observed=truth.deltas.astype(np.float32),
        perturbations=np.array([c.perturbation for c in truth.conditions], dtype=str),
        contexts=np.array([c.context for c in truth.conditions], dtype=str),
        genes=truth.genes.astype(str),
        strong=np.array([k in strong for k in truth.condition_keys()], dtype=bool),
    )
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def strong_conditions(
    adata: ad.AnnData, truth: PseudobulkDeltas, config: BenchmarkConfig
) -> tuple[set, dict]:
    """Keys whose split-half ceiling Pearson Δ reaches the threshold, and every condition's value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        halves = split_half(
            adata,
            truth.conditions,
            seed=config.ceiling_seed,
            min_cells=config.min_cells,
            control_by=config.control_by,
        )
    table = score_predictions(
        halves.predicted.deltas,
        halves.predicted.conditions,
        halves.predicted.genes,
        halves.observed,
        [HEADLINE_METRIC],
    )
    values = dict(zip(halves.observed.condition_keys(), table[HEADLINE_METRIC], strict=True))
    strong = {k for k, v in values.items() if np.isfinite(v) and v >= config.strong_threshold}
    return strong, values


@dataclass
class SeedPlan:
    """One split seed: its cell masks, scorable test conditions, genes and observed Δ."""

    seed: int
    masks: dict[str, np.ndarray]
    conditions: list[Condition]
    genes: np.ndarray
    truth: PseudobulkDeltas


def _plan_seed(
    adata: ad.AnnData,
    truth_all: PseudobulkDeltas,
    strong: set,
    groups: dict[str, set],
    config: BenchmarkConfig,
    seed: int,
) -> SeedPlan:
    """Split ``adata`` with ``seed``, choose its genes and add its test conditions to ``groups``."""
    from biojepa.data.splits import make_split

    split = make_split(adata, config.split, seed)
    masks = split.cell_masks(adata)
    test_keys = set(split.test)
    conditions = [c for c in truth_all.conditions if (c.perturbation, c.context) in test_keys]
    if len(conditions) < 2:
        raise DataError(f"seed {seed}: {len(conditions)} scorable test condition(s); the benchmark needs 2+")
    genes = np.ones(adata.n_vars, dtype=bool)
    if config.n_hvg is not None:
        from biojepa.data.preprocess import select_hvg

        genes = select_hvg(adata, masks["train"] | masks["control"], config.n_hvg)
    truth = _gene_subset(truth_all.subset(conditions), genes)
    # group members carry the seed: a condition's split group (e.g. doubles seen_k) differs by seed
    keys = set(truth.condition_keys())
    groups["all"] |= {(seed, *k) for k in keys}
    groups["strong"] |= {(seed, *k) for k in keys & strong}
    for name, members in split.groups.items():
        scored = keys & set(members)
        groups.setdefault(name, set()).update((seed, *k) for k in scored)
        groups.setdefault(f"strong_{name}", set()).update((seed, *k) for k in scored & strong)
    return SeedPlan(seed, masks, conditions, genes, truth)


def run_benchmark(
    config: BenchmarkConfig,
    out_dir: Path,
    *,
    adata: ad.AnnData | None = None,
    export_cell_eval: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run the benchmark and write its outputs to ``out_dir``; returns the ``results.json`` content.

    ``adata`` (prepared) skips loading ``config.dataset``. ``progress(description)`` is called after
    each method and seed (fits in the order they finish, then the ceilings); the number of calls is
    ``len(seeds) × len(methods)``. ``config.jobs > 1`` runs the fits in worker processes
    (:func:`biojepa.eval.fits.run_fits`). ``export_cell_eval``
    receives, per method (the ceiling excepted) and seed, cell-eval's real/predicted AnnData pair
    (:func:`biojepa.eval.cell_eval.export_prediction`; real = the seed's test cells plus all controls).
    """
    out_dir = Path(out_dir)
    methods = resolve_methods(config.methods)
    if not config.seeds:
        raise DataError("no seeds given; pass e.g. --seeds 1,2,3,4,5")
    adata = load_benchmark_data(config.dataset) if adata is None else adata
    priors = _priors_for(adata, methods)
    truth_all = pseudobulk_deltas(adata, min_cells=config.min_cells, control_by=config.control_by)
    strong, ceiling_pearson = strong_conditions(adata, truth_all, config)
    metrics = available_metrics()

    groups: dict[str, set] = {"all": set(), "strong": set()}
    plans = {seed: _plan_seed(adata, truth_all, strong, groups, config, seed) for seed in config.seeds}
    tasks = [
        FitTask(
            method=name,
            seed=plan.seed,
            training_seed=plan.seed if config.training_seed is None else config.training_seed,
            fit_cells=plan.masks["train"] | plan.masks["control"],
            val_cells=plan.masks["val"],
            control_cells=plan.masks["control"],
            genes=plan.genes,
            conditions=tuple(plan.conditions),
        )
        for plan in plans.values()
        for name in methods
        if name != CEILING
    ]
    observed_rows: dict[tuple[str, int], pd.DataFrame] = {}

    def fitted(task: FitTask, result: FitResult) -> None:
        # scored as it finishes: a bad prediction stops the run before the other fits
        observed_rows[task.key] = _score_rows(
            result.predicted, plans[task.seed].truth, method=task.method, seed=task.seed, reference="observed"
        )
        if progress is not None:
            progress(f"seed {task.seed} · {task.method}")

    fits = run_fits(tasks, adata, priors, config.jobs, fitted)

    rows: list[pd.DataFrame] = []
    notes: dict[str, dict] = {}
    timings: dict[str, dict] = {}
    fitted_values: dict[str, dict] = {}
    for plan in plans.values():
        seed, conditions, truth = plan.seed, plan.conditions, plan.truth
        data = gene_subset(adata, plan.genes)
        noise_free = _ground_truth(data, conditions)
        for name in methods:
            if name == CEILING:
                halves = split_half(
                    data,
                    conditions,
                    seed=config.ceiling_seed,
                    min_cells=config.min_cells,
                    control_by=config.control_by,
                )
                predicted, observed = halves.predicted.deltas, halves.observed
                rows.append(_score_rows(predicted, observed, method=name, seed=seed, reference="observed"))
                if progress is not None:
                    progress(f"seed {seed} · {name}")
            else:
                fit = fits[(name, seed)]
                predicted, observed = fit.predicted, truth
                notes.setdefault(name, {})[f"seed{seed}_fallback"] = fit.n_fallback
                if fit.fitted:
                    fitted_values.setdefault(name, {})[f"seed{seed}"] = fit.fitted
                timings.setdefault(name, {})[f"seed{seed}"] = {"fit_s": fit.fit_s, "predict_s": fit.predict_s}
                rows.append(observed_rows[(name, seed)])
            if export_cell_eval is not None and name != CEILING:
                real = data[plan.masks["test"] | plan.masks["control"]]
                _export(export_cell_eval, name, seed, real, conditions, predicted)
            _save_deltas(out_dir / "deltas" / f"{name}__seed{seed}.npz", predicted, observed, strong)
            if noise_free is not None and name != CEILING:
                reference = PseudobulkDeltas(
                    conditions, truth.genes, np.asarray(noise_free), truth.n_cells, truth.de_genes
                )
                rows.append(_score_rows(predicted, reference, method=name, seed=seed, reference="truth"))

    scores = pd.concat(rows, ignore_index=True)
    results = _results(config, methods, metrics, scores, groups, ceiling_pearson, notes)
    results["settings"]["timings"] = timings
    results["settings"]["fitted"] = fitted_values
    _write_outputs(out_dir, results, scores, groups)
    return results


def _export(
    root: Path, method: str, seed: int, real: ad.AnnData, conditions: list[Condition], predicted
) -> None:
    from biojepa.eval.cell_eval import export_prediction

    export_prediction(
        root, method=method, seed=seed, real=real.copy(), conditions=conditions, predicted_deltas=predicted
    )


def _results(
    config: BenchmarkConfig,
    methods: list[str],
    metrics: list[str],
    scores: pd.DataFrame,
    groups: dict[str, set],
    ceiling_pearson: dict,
    notes: dict,
) -> dict:
    observed = scores[scores["reference"] == "observed"]
    summary = summarise(observed, groups, metrics, config.seeds)
    baselines = [m for m in methods if m != CEILING and get_method(m).is_baseline]
    results: dict[str, Any] = {
        "dataset": config.dataset,
        "split": config.split,
        "seeds": list(config.seeds),
        "groups": {name: sorted({p for _, p, _ in keys}) for name, keys in groups.items()},
        "group_conditions": {name: sorted(map(list, keys)) for name, keys in groups.items()},  # [seed, p, c]
        "methods": summary,
        "gap_closed": gap_closed(summary, baselines, CEILING),
        "metrics": {
            m: {
                "higher_is_better": get_metric(m).higher_is_better,
                "best_value": get_metric(m).best_value,
                "description": get_metric(m).description,
            }
            for m in metrics
        },
        "ceiling_pearson_delta": {f"{p}|{c}": _finite(v) for (p, c), v in sorted(ceiling_pearson.items())},
        "settings": {
            **asdict(config),
            "methods": methods,
            "baselines": baselines,
            "aggregation": AGGREGATION,
            "gap_closed": GAP_CLOSED,
            "strong": f"split-half ceiling {HEADLINE_METRIC} >= {config.strong_threshold}, halves drawn "
            f"with seed {config.ceiling_seed}",
            "fallbacks": notes,
            "versions": _versions(),
        },
    }
    truth_rows = scores[scores["reference"] == "truth"]
    if not truth_rows.empty:
        results["vs_truth"] = summarise(truth_rows, groups, metrics, config.seeds)
    return results


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _versions() -> dict[str, str]:
    packages = ("biojepa", "numpy", "scipy", "pandas", "anndata", "scanpy", "scikit-learn", "torch")
    return {"python": platform.python_version(), **{p: importlib.metadata.version(p) for p in packages}}


def _write_outputs(out_dir: Path, results: dict, scores: pd.DataFrame, groups: dict[str, set]) -> None:
    keys = list(zip(scores["seed"], scores["perturbation"], scores["context"], strict=True))
    membership = [";".join(g for g, members in groups.items() if k in members) for k in keys]
    table = scores.copy()
    table.insert(table.columns.get_loc("context") + 1, "group", membership)
    columns = ["method", "seed", "perturbation", "context", "group", "reference", "n_cells"]
    table = table[[*columns, *available_metrics()]]
    write_json(results, out_dir / "results.json")
    atomic_write(out_dir / "per_perturbation.csv", lambda tmp: table.to_csv(tmp, index=False))
