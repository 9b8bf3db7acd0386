"""The benchmark report: a self-contained HTML page with PNG figures, built from a benchmark output dir.

:func:`write_report` reads what ``biojepa benchmark --out DIR`` wrote (``results.json``,
``per_perturbation.csv``, ``deltas/{method}__seed{S}.npz``) and writes ``DIR/report.html`` plus
``DIR/figures/*.png``: one bar chart per metric (methods side by side, mean ± sd over seeds, one panel per
perturbation group, the split-half ceiling as a line), predicted-vs-observed Δ scatters of the best and
worst perturbations, and the results table. Figures are drawn on bare ``matplotlib.figure.Figure`` objects,
which render PNG through the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from biojepa.data.io import atomic_write
from biojepa.data.schema import split_perturbation
from biojepa.errors import DataError
from biojepa.eval.aggregate import AGGREGATION, GAP_CLOSED
from biojepa.eval.metrics import Metric, get_metric

CEILING = "ceiling"
MODEL = "biojepa"
RANKING_METRIC = "pearson_delta"
N_EXTREMES = 3
_REQUIRED_KEYS = ("dataset", "split", "seeds", "groups", "methods", "gap_closed")
_STAT_KEYS = ("mean", "sd", "per_seed")
_BASELINE_COLOUR = "#a6a6a6"
_MODEL_COLOUR = "#1f6fb4"
_ABLATION_COLOUR = "#9cc3e6"
_CEILING_COLOUR = "#c0392b"
_CHART_COLUMNS = 4  # groups per row of a metric's bar chart


@dataclass(frozen=True)
class BenchmarkResults:
    """The parts of a benchmark output directory the report reads."""

    root: Path
    summary: dict
    per_perturbation: pd.DataFrame
    methods: list[str]
    groups: list[str]
    metrics: list[str]
    gaps: dict
    baselines: list[str]

    def kind(self, method: str) -> str:
        """``"ceiling"``, ``"baseline"`` or ``"model"`` (the world model and its ablations)."""
        if method == CEILING:
            return "ceiling"
        return "baseline" if method in self.baselines else "model"

    def gap_closed(self, method: str, group: str, metric: str) -> float | None:
        """Gap closed by ``method`` on the group's ``metric`` (see :data:`GAP_CLOSED`); None if undefined."""
        value = self.gaps.get(method, {}).get(group, {}).get(metric)
        return None if value is None or not math.isfinite(float(value)) else float(value)


def write_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/figures/*.png`` from a benchmark output directory."""
    results = load_results(Path(out_dir))
    scatter = _scatter_data(results, scatter_method(results))  # every input is read before drawing
    figures = results.root / "figures"
    figures.mkdir(exist_ok=True)
    bar_charts = {metric: _bar_chart(results, metric, figures) for metric in results.metrics}
    page = _html(results, bar_charts, scatter, _scatter_figure(scatter, figures))
    path = results.root / "report.html"
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path


def load_results(out_dir: Path) -> BenchmarkResults:
    """Read and check a benchmark output directory; :class:`DataError` if it is missing or incomplete."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise DataError(
            f"benchmark output directory {out_dir} does not exist; run `biojepa benchmark --out DIR`"
        )
    summary = _read_json(out_dir / "results.json")
    missing = [key for key in _REQUIRED_KEYS if key not in summary]
    if missing:
        raise DataError(f"{out_dir / 'results.json'} lacks the key(s) {missing}; rerun the benchmark")
    methods = list(summary["methods"])
    if not methods:
        raise DataError(f"{out_dir / 'results.json'} lists no methods; rerun the benchmark")
    groups, metrics = _groups_and_metrics(summary["methods"], out_dir)
    csv = out_dir / "per_perturbation.csv"
    if not csv.is_file():
        raise DataError(f"{csv} is missing; the benchmark run did not finish, rerun it")
    table = pd.read_csv(csv, dtype={"perturbation": str, "context": str})
    needed = {"method", "seed", "perturbation", "context"}
    if not needed <= set(table.columns):
        raise DataError(
            f"{csv} lacks the column(s) {sorted(needed - set(table.columns))}; rerun the benchmark"
        )
    if "reference" in table.columns:  # simulated data also scores against the noise-free truth
        table = table[table["reference"] == "observed"]
    baselines = summary.get("settings", {}).get("baselines")
    if not isinstance(baselines, list):
        raise DataError(f"{out_dir / 'results.json'} lacks settings.baselines; rerun the benchmark")
    return BenchmarkResults(
        out_dir, summary, table, methods, groups, metrics, summary["gap_closed"], baselines
    )


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better, as declared in :mod:`biojepa.eval.metrics`."""
    return _metric(metric).higher_is_better


def _metric(name: str) -> Metric:
    try:
        return get_metric(name)
    except KeyError as error:
        raise DataError(
            f"the results report metric {name!r}, which biojepa.eval.metrics does not define ({error})"
        ) from None


def scatter_method(results: BenchmarkResults) -> str:
    """The method whose Δ scatters the report shows: ``biojepa`` if run, else the best non-ceiling method."""
    if MODEL in results.methods:
        return MODEL
    metric = _ranking_metric(results.metrics)
    best = sorted(_best_methods(results, results.groups[0], metric))
    if not best:
        raise DataError(f"no method other than the ceiling has a {metric} score; nothing to plot")
    return best[0]


def _ranking_metric(metrics: list[str]) -> str:
    return RANKING_METRIC if RANKING_METRIC in metrics else metrics[0]


def _groups_and_metrics(methods: dict, out_dir: Path) -> tuple[list[str], list[str]]:
    groups: list[str] = []
    metrics: list[str] = []
    for method, by_group in methods.items():
        if not isinstance(by_group, dict) or not by_group:
            raise DataError(f"results.json in {out_dir}: method {method!r} has no per-group results")
        for group, by_metric in by_group.items():
            groups += [group] if group not in groups else []
            for metric, stats in by_metric.items():
                if not isinstance(stats, dict) or any(k not in stats for k in _STAT_KEYS):
                    raise DataError(
                        f"results.json in {out_dir}: {method}/{group}/{metric} lacks one of {_STAT_KEYS}"
                    )
                metrics += [metric] if metric not in metrics else []
    if not metrics:
        raise DataError(f"results.json in {out_dir} holds no metric values; rerun the benchmark")
    for metric in metrics:
        _metric(metric)
    return groups, metrics


def _stat(
    results: BenchmarkResults, method: str, group: str, metric: str, key: str, block: str = "methods"
) -> float | None:
    value = results.summary[block].get(method, {}).get(group, {}).get(metric, {}).get(key)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _per_seed(results: BenchmarkResults, method: str, group: str, metric: str) -> list[float]:
    values = results.summary["methods"].get(method, {}).get(group, {}).get(metric, {}).get("per_seed") or []
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _colour(results: BenchmarkResults, method: str) -> tuple[str, str]:
    """Face colour and hatch: baselines grey, the model blue, its blind ablation light blue and hatched."""
    if results.kind(method) == "baseline":
        return _BASELINE_COLOUR, ""
    return (_ABLATION_COLOUR, "//") if "blind" in method else (_MODEL_COLOUR, "")


def _bar_chart(results: BenchmarkResults, metric: str, figures: Path) -> str:
    methods = [m for m in results.methods if m != CEILING]
    n_columns = min(len(results.groups), _CHART_COLUMNS)
    n_rows = -(-len(results.groups) // n_columns)
    fig = Figure(
        figsize=(max(4.0, 0.55 * len(methods) + 1.5) * n_columns, 3.6 * n_rows), layout="constrained"
    )
    grid = fig.subplots(n_rows, n_columns, sharey=True, squeeze=False)
    axes = list(grid.ravel())
    for unused in axes[len(results.groups) :]:
        unused.set_visible(False)
    x = np.arange(len(methods))
    for ax, group in zip(axes, results.groups, strict=False):
        n = len(results.summary["groups"].get(group, []))
        ax.set_title(f"{group} ({n} perturbations)", fontsize=9)
        ax.set_xticks(x, methods, rotation=40, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        if n == 0:
            ax.text(
                0.5, 0.5, "no perturbation in this group", ha="center", transform=ax.transAxes, fontsize=8
            )
            continue
        means = [_stat(results, method, group, metric, "mean") for method in methods]
        shown = [i for i, mean in enumerate(means) if mean is not None]
        for i in (i for i, mean in enumerate(means) if mean is None):
            ax.text(i, 0.0, "n/a", ha="center", va="bottom", fontsize=7, color="#555555")
        if shown:  # one call per panel: drawing bar by bar dominates the report's run time
            styles = [_colour(results, methods[i]) for i in shown]
            sds = [_stat(results, methods[i], group, metric, "sd") for i in shown]
            ax.bar(
                shown,
                [means[i] for i in shown],
                yerr=[np.nan if sd is None else sd for sd in sds],
                color=[face for face, _ in styles],
                hatch=[hatch for _, hatch in styles],
                edgecolor="#333333",
                linewidth=0.6,
                capsize=3,
            )
            seeds = [(i, value) for i in shown for value in _per_seed(results, methods[i], group, metric)]
            if seeds:
                ax.scatter(*zip(*seeds, strict=True), s=7, color="#222222", zorder=3)
        ceiling = _stat(results, CEILING, group, metric, "mean")
        if ceiling is not None:
            ax.axhline(ceiling, color=_CEILING_COLOUR, linestyle="--", linewidth=1.2)
            ax.text(
                0.99,
                ceiling,
                f"ceiling (split-half) {ceiling:.3g}",
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="bottom",
                color=_CEILING_COLOUR,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
                fontsize=7,
            )
        ax.axhline(0.0, color="#555555", linewidth=0.6)
    arrow = "higher is better" if higher_is_better(metric) else "lower is better"
    for row in grid:
        row[0].set_ylabel(f"{metric}\n({arrow})", fontsize=8)
    name = f"metric_{_slug(metric)}.png"
    _save(fig, figures / name)
    return f"figures/{name}"


@dataclass(frozen=True)
class _Extreme:
    """One condition shown in the Δ scatter: its mean score over seeds and where its first seed's Δ is."""

    label: str
    score: float
    seed: int
    seed_score: float
    row: int


def _extremes(results: BenchmarkResults, method: str) -> tuple[str, list[_Extreme], list[_Extreme]]:
    """The best and worst conditions of ``method`` by the ranking metric averaged over seeds.

    A condition is ``(perturbation, context, k)``: ``k`` numbers the conditions that share a perturbation
    and context (doses or times of one compound) in the benchmark's order, which the CSV and the Δ files
    share row by row (:func:`_load_deltas` checks it).
    """
    metric = _ranking_metric(results.metrics)
    table = results.per_perturbation
    if metric not in table.columns:
        raise DataError(f"per_perturbation.csv in {results.root} has no {metric} column; rerun the benchmark")
    rows = table[table["method"] == method].copy()
    rows["row"] = rows.groupby("seed").cumcount()
    rows["k"] = rows.groupby(["seed", "perturbation", "context"]).cumcount()
    rows = rows[rows[metric].notna()]
    if rows.empty:
        raise DataError(f"per_perturbation.csv in {results.root} has no {metric} scores for {method!r}")
    key = ["perturbation", "context", "k"]
    numbered = set(map(tuple, rows.loc[rows["k"] > 0, ["perturbation", "context"]].to_numpy()))
    means = rows.groupby(key, sort=True)[metric].mean()
    ordered = means.sort_values(ascending=not higher_is_better(metric), kind="stable")
    first = rows.sort_values("seed", kind="stable").groupby(key).first()
    n_shown = min(N_EXTREMES, len(ordered) // 2) or 1

    def extreme(condition: tuple[str, str, int]) -> _Extreme:
        perturbation, context, k = condition
        label = f"{perturbation} ({context})"
        if (perturbation, context) in numbered:
            label = f"{perturbation} #{k + 1} ({context})"
        at = first.loc[condition]
        return _Extreme(label, float(ordered[condition]), int(at["seed"]), float(at[metric]), int(at["row"]))

    best = [extreme(c) for c in ordered.index[:n_shown]]
    worst = [extreme(c) for c in ordered.index[::-1][:n_shown]]
    return metric, best, worst


def _load_deltas(results: BenchmarkResults, method: str, seed: int) -> dict[str, np.ndarray]:
    """One ``deltas/{method}__seed{S}.npz``, checked to list the CSV's conditions of that seed in order."""
    path = results.root / "deltas" / f"{method}__seed{seed}.npz"
    if not path.is_file():
        raise DataError(f"{path} is missing; the benchmark run did not finish, rerun it")
    needed = ("predicted", "observed", "perturbations", "contexts", "genes")
    with np.load(path, allow_pickle=False) as data:
        if any(key not in data for key in needed):
            raise DataError(f"{path} lacks one of the arrays {needed}; rerun the benchmark")
        deltas = {key: data[key] for key in needed}
    table = results.per_perturbation
    block = table[(table["method"] == method) & (table["seed"] == seed)]
    listed = list(zip(deltas["perturbations"].astype(str), deltas["contexts"].astype(str), strict=True))
    if listed != list(zip(block["perturbation"], block["context"], strict=True)):
        raise DataError(
            f"{path} and per_perturbation.csv list different conditions for {method!r}, seed {seed}; "
            "they come from different runs, rerun the benchmark"
        )
    return deltas


@dataclass(frozen=True)
class _Scatter:
    """The conditions the Δ scatter shows, ranked by ``metric``, with their Δ rows loaded."""

    method: str
    metric: str
    best: list[_Extreme]
    worst: list[_Extreme]
    panels: list[tuple[str, _Extreme, np.ndarray, np.ndarray, np.ndarray]]  # kind, e, obs, pred, targeted


def _scatter_data(results: BenchmarkResults, method: str) -> _Scatter:
    """Pick the best and worst conditions of ``method`` and load their Δ rows."""
    metric, best, worst = _extremes(results, method)
    loaded: dict[int, dict[str, np.ndarray]] = {}
    panels = []
    for kind, e in [("best", e) for e in best] + [("worst", e) for e in worst]:
        if e.seed not in loaded:
            loaded[e.seed] = _load_deltas(results, method, e.seed)
        deltas = loaded[e.seed]
        perturbation = str(deltas["perturbations"][e.row])
        targeted = np.isin(deltas["genes"].astype(str), split_perturbation(perturbation))
        panels.append((kind, e, deltas["observed"][e.row], deltas["predicted"][e.row], targeted))
    return _Scatter(method, metric, best, worst, panels)


def _scatter_figure(scatter: _Scatter, figures: Path) -> str:
    fig = Figure(figsize=(3.2 * len(scatter.best), 3.3 * 2), layout="constrained")
    axes = fig.subplots(2, len(scatter.best), squeeze=False)
    for ax, (kind, e, observed, predicted, targeted) in zip(axes.ravel(), scatter.panels, strict=True):
        ax.scatter(
            observed[~targeted], predicted[~targeted], s=6, color=_MODEL_COLOUR, alpha=0.6, linewidths=0
        )
        if targeted.any():
            ax.scatter(
                observed[targeted], predicted[targeted], s=22, color=_CEILING_COLOUR, label="targeted gene"
            )
            ax.legend(loc="upper left", fontsize=7, frameon=False)
        bound = float(np.abs(np.concatenate([observed, predicted])).max()) * 1.05 or 1.0
        ax.plot([-bound, bound], [-bound, bound], color="#555555", linestyle="--", linewidth=0.8)
        ax.set_xlim(-bound, bound)
        ax.set_ylim(-bound, bound)
        ax.set_aspect("equal")
        title = f"{kind}: {e.label}, seed {e.seed}\n{scatter.metric} {e.seed_score:.2f}"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("observed Δ", fontsize=8)
        ax.set_ylabel("predicted Δ", fontsize=8)
    name = f"scatter_{_slug(scatter.method)}.png"
    _save(fig, figures / name)
    return f"figures/{name}"


def _format_cell(results: BenchmarkResults, method: str, group: str, metric: str, block: str) -> str:
    mean = _stat(results, method, group, metric, "mean", block)
    if mean is None:
        return "–"
    sd = _stat(results, method, group, metric, "sd", block)
    median = _stat(results, method, group, metric, "median", block)
    text = f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")
    if median is not None:
        text += f'<br><span class="median">median {median:.3f}</span>'
    return text


def _best_methods(results: BenchmarkResults, group: str, metric: str, block: str = "methods") -> set[str]:
    """The non-ceiling method(s) with the best mean (all of them when tied)."""
    scored = {m: _stat(results, m, group, metric, "mean", block) for m in results.methods if m != CEILING}
    scored = {m: v for m, v in scored.items() if v is not None}
    if not scored:
        return set()
    top = max(scored.values()) if higher_is_better(metric) else min(scored.values())
    return {m for m, v in scored.items() if math.isclose(v, top, rel_tol=1e-9, abs_tol=1e-12)}


def _table(results: BenchmarkResults, group: str, block: str = "methods") -> str:
    """Mean ± sd per method and metric, best values starred; gap closed for the observed scores."""
    gap_metric = _ranking_metric(results.metrics)
    with_gap = block == "methods"
    best = {metric: _best_methods(results, group, metric, block) for metric in results.metrics}
    head = "".join(
        f"<th>{html.escape(m)} {'↑' if higher_is_better(m) else '↓'}</th>" for m in results.metrics
    )
    if with_gap:
        head += f"<th>gap closed ({html.escape(gap_metric)})</th>"
    rows = []
    for method in results.summary[block]:
        cells = []
        for metric in results.metrics:
            content = _format_cell(results, method, group, metric, block)
            starred = method in best[metric]
            cells.append(f'<td class="best">{content} ★</td>' if starred else f"<td>{content}</td>")
        if with_gap:
            gap = results.gap_closed(method, group, gap_metric)
            cells.append(f"<td>{gap:.2f}</td>" if gap is not None else "<td>–</td>")
        row = f"<th>{html.escape(method)}</th>{''.join(cells)}"
        rows.append(f'<tr class="{results.kind(method)}">{row}</tr>')
    return f"<table><thead><tr><th>method</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html(results: BenchmarkResults, bar_charts: dict[str, str], scatter: _Scatter, scatter_path: str) -> str:
    s = results.summary
    esc = html.escape
    seeds = ", ".join(str(v) for v in s["seeds"])
    group_sizes = ", ".join(f"{esc(g)}: {len(s['groups'].get(g, []))}" for g in results.groups)
    tables = "".join(f"<h3>{esc(g)}</h3>{_table(results, g)}" for g in results.groups)
    if "vs_truth" in s:
        tables += (
            "<h3>Scored against the noise-free truth (simulated data)</h3>"
            "<p>The same predictions compared with the simulator's noiseless Δ, not the measured one.</p>"
            + "".join(f"<h4>{esc(g)}</h4>{_table(results, g, 'vs_truth')}" for g in results.groups)
        )
    charts = "".join(
        f'<figure><img src="{esc(path)}" alt="{esc(metric)} by method"><figcaption>{esc(metric)}</figcaption>'
        "</figure>"
        for metric, path in bar_charts.items()
    )
    definitions = "".join(f"<dt>{esc(m)}</dt><dd>{esc(_metric(m).description)}</dd>" for m in results.metrics)

    settings = ""
    if s.get("settings"):
        dumped = json.dumps(s["settings"], indent=2, sort_keys=True, default=str)
        settings = f"<details><summary>Run settings</summary><pre>{esc(dumped)}</pre></details>"

    def listed(items: list[_Extreme]) -> str:
        return ", ".join(f"{esc(e.label)} {e.score:.2f}" for e in items)

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>biojepa benchmark: {esc(str(s["dataset"]))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }}
thead th {{ background: #f0f0f0; }}
tbody th {{ text-align: left; }}
tr.model th {{ color: {_MODEL_COLOUR}; }}
tr.ceiling {{ color: {_CEILING_COLOUR}; font-style: italic; }}
td.best {{ font-weight: bold; background: #eef5fb; }}
.median {{ color: #777; font-size: 0.85em; }}
figure {{ display: inline-block; margin: 0.5em; }}
img {{ max-width: 100%; }}
dt {{ font-weight: bold; margin-top: 0.4em; }}
</style></head><body>
<h1>Benchmark: {esc(str(s["dataset"]))}</h1>
<p>Split <b>{esc(str(s["split"]))}</b>; seeds {esc(seeds)}; perturbations per group: {group_sizes}.
Aggregation: {esc(str(s.get("settings", {}).get("aggregation", AGGREGATION)))}.</p>
<h2>Results</h2>
<p>★ marks the best method other than the ceiling in each column (all of them when tied); – marks a value
that is undefined (e.g. Pearson Δ of a prediction that is constant over genes). Baselines are grey, the
model blue, the ceiling (split-half technical duplicate of the truth) red.</p>
{tables}
<h2>Metrics by method</h2>
<p>Bars: the mean over seeds, error bars ± sd, dots the per-seed values; dashed line: the ceiling.</p>
{charts}
<h2>Predicted vs observed Δ: {esc(scatter.method)}</h2>
<p>Ranked by {esc(scatter.metric)} averaged over seeds. Best: {listed(scatter.best)}.
Worst: {listed(scatter.worst)}. Each panel shows the first seed in which the condition was tested;
targeted genes (excluded from the scores) are red. Conditions that share a perturbation and context (doses
or times of one compound) are numbered #1, #2, … in the benchmark's order.</p>
<figure><img src="{esc(scatter_path)}" alt="predicted versus observed delta"></figure>
<h2>Definitions</h2>
<p>Δ is the pseudobulk effect: mean log-normalised expression of a perturbation minus the control mean of
the same context. <b>Gap closed</b> (shown for {esc(_ranking_metric(results.metrics))}) =
{esc(GAP_CLOSED)}; the best baseline is the best method that is neither the model nor the ceiling.
It is – where a value is missing or the ceiling does not beat the best baseline (then it is no bound).</p>
<dl>{definitions}</dl>
{settings}
</body></html>
"""


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path} is missing; run `biojepa benchmark --out {path.parent}` first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON ({error}); rerun the benchmark") from error
    if not isinstance(data, dict):
        raise DataError(f"{path} does not hold a JSON object; rerun the benchmark")
    return data


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _save(fig: Figure, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
