"""Summaries of per-condition scores: per group and metric, over conditions and seeds; gap closed.

Aggregation convention (stated in ``results.json``): for each method, group, metric and seed, the
per-condition scores are summarised by their median (``per_seed``) and mean (``per_seed_mean``) over
the group's conditions; ``mean`` and ``sd`` (ddof = 1) are taken over the per-seed medians, and
``median`` is the median of all (seed, condition) scores pooled. NaN scores (undefined, e.g. Pearson of
a constant prediction) are left out and ``n`` counts the scores used; a seed whose group is empty is
``None`` in the per-seed lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from biojepa.eval.metrics import get_metric

AGGREGATION = (
    "per_seed / per_seed_mean: median / mean over the group's conditions in each seed; mean, sd: over the "
    "per-seed medians (sd with ddof=1); median: over all (seed, condition) scores pooled; NaN scores "
    "(undefined) are left out and n counts the scores used"
)
GAP_CLOSED = "(method − best baseline) / (ceiling − best baseline), on the 'mean' of each group and metric"


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def summarise_metric(rows: pd.DataFrame, metric: str, seeds: Sequence[int]) -> dict:
    """Summary of one metric's scores in ``rows`` (one method, one group; column ``seed``)."""
    medians, means = [], []
    for seed in seeds:
        values = rows.loc[rows["seed"] == seed, metric].dropna().to_numpy(dtype=float)
        medians.append(_none_if_nan(np.median(values)) if values.size else None)
        means.append(_none_if_nan(values.mean()) if values.size else None)
    present = [v for v in medians if v is not None]
    pooled = rows[metric].dropna().to_numpy(dtype=float)
    return {
        "mean": _none_if_nan(np.mean(present)) if present else None,
        "sd": _none_if_nan(np.std(present, ddof=1)) if len(present) > 1 else None,
        "median": _none_if_nan(np.median(pooled)) if pooled.size else None,
        "n": int(pooled.size),
        "per_seed": medians,
        "per_seed_mean": means,
    }


def summarise(
    scores: pd.DataFrame,
    groups: Mapping[str, Iterable[tuple[str, str]]],
    metrics: Sequence[str],
    seeds: Sequence[int],
) -> dict:
    """``{method: {group: {metric: summary}}}`` of a per-condition score table.

    ``scores`` has columns ``method``, ``seed``, ``perturbation``, ``context`` and one per metric;
    ``groups`` maps a group name to its ``(seed, perturbation, context)`` keys (a condition can belong to
    a group under one split seed and not under another).
    """
    keys = list(zip(scores["seed"], scores["perturbation"], scores["context"], strict=True))
    out: dict = {}
    for method in dict.fromkeys(scores["method"]):
        by_method = scores["method"].to_numpy() == method
        out[method] = {}
        for group, members in groups.items():
            member_set = set(members)
            in_group = by_method & np.array([k in member_set for k in keys], dtype=bool)
            rows = scores.loc[in_group]
            out[method][group] = {m: summarise_metric(rows, m, seeds) for m in metrics}
    return out


def gap_closed(summary: Mapping, baselines: Sequence[str], ceiling: str = "ceiling") -> dict:
    """``{method: {group: {metric: gap}}}`` with gap = (method − best baseline) / (ceiling − best baseline).

    The best baseline is the best of ``baselines`` on that group and metric (by the metric's direction);
    the gap is None where a value is missing or the ceiling does not beat the best baseline.
    """
    out: dict = {}
    for method, by_group in summary.items():
        if method == ceiling:
            continue
        out[method] = {}
        for group, by_metric in by_group.items():
            out[method][group] = {}
            for metric, stats in by_metric.items():
                sign = 1.0 if get_metric(metric).higher_is_better else -1.0
                base_values = [
                    summary[b][group][metric]["mean"]
                    for b in baselines
                    if b in summary and summary[b][group][metric]["mean"] is not None
                ]
                top = summary.get(ceiling, {}).get(group, {}).get(metric, {}).get("mean")
                value = stats["mean"]
                gap = None
                if base_values and top is not None and value is not None:
                    best = max(base_values, key=lambda v: sign * v)
                    if sign * (top - best) > 0:
                        gap = (value - best) / (top - best)
                out[method][group][metric] = gap
    return out
