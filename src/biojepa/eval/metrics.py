"""Metrics registry: every metric of the benchmark, each declaring its direction and best value.

All metrics compare a predicted Δ with an observed Δ (pseudobulk minus the control mean of the same
context, see :mod:`biojepa.eval.pseudobulk`) and leave out the targeted gene(s) of the condition: a
knockdown trivially lowers its own target, and scoring that gene would reward copying the label.

Per-condition metrics take ``(predicted, observed, genes, targets)`` (1-D arrays over genes) and return
a float; ``de_overlap`` also takes ``de_genes`` (the observed significant genes). ``discrimination`` is a
set metric: it needs every test condition at once. A metric that is undefined for a condition (Pearson
of a constant prediction, DE overlap when the truth has no DE gene) is NaN, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.eval.pseudobulk import PseudobulkDeltas, condition_key

TOP_DE = 20
Scope = Literal["condition", "set"]


@dataclass(frozen=True)
class Metric:
    """A registered metric: its function, direction and best attainable value."""

    name: str
    func: Callable[..., float] | Callable[..., np.ndarray]
    description: str
    higher_is_better: bool
    best_value: float
    scope: Scope = "condition"
    needs_de: bool = False


_REGISTRY: dict[str, Metric] = {}


def register_metric(
    name: str,
    *,
    description: str,
    higher_is_better: bool,
    best_value: float,
    scope: Scope = "condition",
    needs_de: bool = False,
) -> Callable[[Callable], Callable]:
    """Decorator adding a metric function to the registry under ``name``."""

    def decorate(func: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is already registered")
        _REGISTRY[name] = Metric(name, func, description, higher_is_better, best_value, scope, needs_de)
        return func

    return decorate


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; unknown names raise :class:`KeyError` listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; available: {available_metrics()}") from None


def available_metrics() -> list[str]:
    """Names of all registered metrics, in registration order."""
    return list(_REGISTRY)


def _scored_genes(genes: Sequence[str], targets: Sequence[str]) -> np.ndarray:
    """Boolean mask of the genes that are scored: every gene except the condition's targets."""
    return ~np.isin(np.asarray(genes, dtype=str), np.asarray(list(targets), dtype=str))


def top_de_genes(
    observed: np.ndarray, genes: Sequence[str], targets: Sequence[str], k: int = TOP_DE
) -> np.ndarray:
    """Indices of the truth's ``k`` largest |Δ| genes, targeted genes excluded (ties by gene order)."""
    candidates = np.flatnonzero(_scored_genes(genes, targets))
    order = np.argsort(-np.abs(observed[candidates]), kind="stable")
    return candidates[order[:k]]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either vector is constant (the correlation is undefined)."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


@register_metric(
    "pearson_delta",
    description="Pearson correlation of predicted and observed Δ over all genes but the targets",
    higher_is_better=True,
    best_value=1.0,
)
def pearson_delta(
    predicted: np.ndarray, observed: np.ndarray, genes: Sequence[str], targets: Sequence[str]
) -> float:
    keep = _scored_genes(genes, targets)
    return _pearson(predicted[keep], observed[keep])


@register_metric(
    "pearson_delta_top20",
    description="Pearson of Δ over the truth's 20 largest-|Δ| genes (targets excluded)",
    higher_is_better=True,
    best_value=1.0,
)
def pearson_delta_top20(
    predicted: np.ndarray, observed: np.ndarray, genes: Sequence[str], targets: Sequence[str]
) -> float:
    top = top_de_genes(observed, genes, targets)
    return _pearson(predicted[top], observed[top])


@register_metric(
    "mse_top20",
    description="Mean squared error of Δ over the truth's 20 largest-|Δ| genes (targets excluded)",
    higher_is_better=False,
    best_value=0.0,
)
def mse_top20(
    predicted: np.ndarray, observed: np.ndarray, genes: Sequence[str], targets: Sequence[str]
) -> float:
    top = top_de_genes(observed, genes, targets)
    return float(np.mean((predicted[top] - observed[top]) ** 2))


@register_metric(
    "direction_acc_top20",
    description="Share of the truth's top-20 |Δ| genes whose predicted Δ has the observed sign (0 has none)",
    higher_is_better=True,
    best_value=1.0,
)
def direction_acc_top20(
    predicted: np.ndarray, observed: np.ndarray, genes: Sequence[str], targets: Sequence[str]
) -> float:
    top = top_de_genes(observed, genes, targets)
    return float(np.mean(np.sign(predicted[top]) == np.sign(observed[top])))


@register_metric(
    "r2_delta",
    description="Coefficient of determination of observed Δ by predicted Δ over all genes but the targets",
    higher_is_better=True,
    best_value=1.0,
)
def r2_delta(
    predicted: np.ndarray, observed: np.ndarray, genes: Sequence[str], targets: Sequence[str]
) -> float:
    keep = _scored_genes(genes, targets)
    y, y_hat = observed[keep], predicted[keep]
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return float("nan")
    return 1.0 - float(np.sum((y - y_hat) ** 2)) / total


@register_metric(
    "de_overlap",
    description=(
        "cell-eval overlap_at_N: share of the k observed DE genes (Wilcoxon, BH-FDR < 0.05) found among "
        "the k genes of largest predicted |Δ| (targets excluded)"
    ),
    higher_is_better=True,
    best_value=1.0,
    needs_de=True,
)
def de_overlap(
    predicted: np.ndarray,
    observed: np.ndarray,
    genes: Sequence[str],
    targets: Sequence[str],
    *,
    de_genes: np.ndarray,
) -> float:
    keep = _scored_genes(genes, targets)
    true_de = np.flatnonzero(de_genes & keep)
    k = true_de.size
    if k == 0:
        return float("nan")
    candidates = np.flatnonzero(keep)
    predicted_top = candidates[np.argsort(-np.abs(predicted[candidates]), kind="stable")[:k]]
    return float(np.intersect1d(predicted_top, true_de).size / k)


@register_metric(
    "discrimination",
    description=(
        "1 − r/N, r = number of test conditions whose observed Δ is closer (L1, every test condition's "
        "targets excluded) to the prediction than the true one's (ties count ½), N = number of test "
        "conditions; perfect = 1"
    ),
    higher_is_better=True,
    best_value=1.0,
    scope="set",
)
def discrimination(
    predicted: np.ndarray, observed: np.ndarray, genes: Sequence[str], targets: Sequence[Sequence[str]]
) -> np.ndarray:
    """Per-condition discrimination of an ``(n, genes)`` prediction against all ``n`` observed Δ.

    Rank convention: r counts the *other* conditions strictly closer to the prediction than the true
    observed Δ, plus half of those at exactly the same distance, so a perfect prediction gets r = 0 and
    a score of 1, the worst gets 1/N, and a prediction that ignores the perturbation averages about 0.5.
    Distances leave out the targeted genes of *all* n conditions: leaving out only the true condition's
    target would drop its largest entry (the knockdown) from the true observed Δ alone and make it the
    closest to any prediction, so that even a constant prediction would score well.
    """
    n = predicted.shape[0]
    if n < 2:
        raise DataError(
            f"discrimination ranks the true condition among all test conditions and needs at least 2, got {n}"
        )
    keep = _scored_genes(genes, [t for condition_targets in targets for t in condition_targets])
    distances = cdist(predicted[:, keep], observed[:, keep], metric="cityblock")  # (prediction, truth)
    true = np.diag(distances)[:, None]
    others = ~np.eye(n, dtype=bool)
    rank = ((distances < true) & others).sum(axis=1) + 0.5 * ((distances == true) & others).sum(axis=1)
    return 1.0 - rank / n


def check_predictions(
    predicted: np.ndarray,
    conditions: Sequence[Condition],
    genes: Sequence[str],
    truth: PseudobulkDeltas,
) -> None:
    """Raise :class:`DataError` unless a prediction matches the truth's conditions and genes and is finite."""
    predicted = np.asarray(predicted)
    if predicted.ndim != 2:
        raise DataError(f"predicted Δ must be a 2-D (conditions × genes) array, got shape {predicted.shape}")
    pred_genes = np.asarray(genes, dtype=str)
    if pred_genes.shape != truth.genes.shape or not np.array_equal(pred_genes, truth.genes):
        extra = sorted(set(pred_genes) - set(truth.genes))[:5]
        absent = sorted(set(truth.genes) - set(pred_genes))[:5]
        raise DataError(
            f"predicted genes do not match the observed genes ({len(pred_genes)} vs {len(truth.genes)}; "
            f"not observed e.g. {extra}, not predicted e.g. {absent}, or a different order); "
            "predict over exactly the observed gene list, in its order"
        )
    pred_keys = [condition_key(c) for c in conditions]
    true_keys = [condition_key(c) for c in truth.conditions]
    if pred_keys != true_keys:
        extra = [k[:2] for k in pred_keys if k not in set(true_keys)][:5]
        absent = [k[:2] for k in true_keys if k not in set(pred_keys)][:5]
        raise DataError(
            f"predicted conditions do not match the observed ones ({len(pred_keys)} vs {len(true_keys)}; "
            f"not observed e.g. {extra}, not predicted e.g. {absent}, or a different order)"
        )
    if predicted.shape != truth.deltas.shape:
        raise DataError(f"predicted Δ has shape {predicted.shape}, the truth {truth.deltas.shape}")
    bad = ~np.isfinite(predicted)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"predicted Δ holds {int(bad.sum())} NaN/inf value(s) in {rows.size} condition(s), "
            f"e.g. {conditions[rows[0]].perturbation!r}; a method must predict a finite Δ for every gene"
        )


def score_predictions(
    predicted: np.ndarray,
    conditions: Sequence[Condition],
    genes: Sequence[str],
    truth: PseudobulkDeltas,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Score a prediction against the truth: one row per condition, one column per metric.

    The prediction is validated first (:func:`check_predictions`). Columns ``perturbation`` and
    ``context`` identify the rows; ``discrimination`` is ranked among all rows given.
    """
    check_predictions(predicted, conditions, genes, truth)
    predicted = np.asarray(predicted, dtype=np.float64)
    names = available_metrics() if metrics is None else list(metrics)
    chosen = [get_metric(name) for name in names]
    targets = [c.targets for c in truth.conditions]
    table: dict[str, object] = {
        "perturbation": [c.perturbation for c in truth.conditions],
        "context": [c.context for c in truth.conditions],
    }
    for metric in chosen:
        if metric.scope == "set":
            table[metric.name] = metric.func(predicted, truth.deltas, truth.genes, targets)
            continue
        if metric.needs_de and truth.de_genes is None:
            raise DataError(
                f"metric {metric.name!r} needs the observed DE genes; build the truth with de=True"
            )
        values = []
        for i in range(len(truth.conditions)):
            extra = {"de_genes": truth.de_genes[i]} if metric.needs_de else {}
            values.append(metric.func(predicted[i], truth.deltas[i], truth.genes, targets[i], **extra))
        table[metric.name] = values
    return pd.DataFrame(table)
