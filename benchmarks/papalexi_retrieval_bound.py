"""How far can a method that predicts within the span of the training responses get on Papalexi?

For every test target of the unseen-perturbation splits (seeds 1–5; each split's training targets, as the
baselines see them) this scores, on Pearson Δ with the targeted gene left out (the benchmark's metric
and pseudobulk Δs):

- ``train_mean``: the mean Δ of the training targets (the baseline to beat);
- ``size_weighted_mean``: the training Δs weighted by their squared size (a blind predictor that lets the
  strong responses dominate);
- ``oracle_best_training_target``: the single training target whose Δ correlates best with the test
  target's — chosen by looking at the answer, so no retrieval method, however it weighs prior
  similarity, can beat it with one neighbour;
- ``oracle_nonnegative_mix``: the non-negative least-squares mix of all training Δs fitted to the test Δ
  itself (an optimistic bound for any similarity-weighted mix of training responses).

Usage: ``.venv/bin/python benchmarks/papalexi_retrieval_bound.py``; writes
``benchmarks/results/papalexi2021/retrieval_bound.json`` (needs the staged Papalexi data).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from biojepa.data.io import write_json
from biojepa.data.splits import make_split
from biojepa.eval.benchmark import BenchmarkConfig, load_benchmark_data, strong_conditions
from biojepa.eval.metrics import pearson_delta
from biojepa.eval.pseudobulk import pseudobulk_deltas

OUT = Path(__file__).resolve().parent / "results" / "papalexi2021" / "retrieval_bound.json"
SEEDS = (1, 2, 3, 4, 5)


def _best_single(train: np.ndarray, score: Callable[[np.ndarray], float]) -> np.ndarray:
    return train[int(np.nanargmax([score(row) for row in train]))]


def _nonnegative_mix(train: np.ndarray, truth: np.ndarray) -> np.ndarray:
    weights, _ = nnls(train.T.astype(np.float64), truth.astype(np.float64))
    return weights @ train


def main() -> None:
    adata = load_benchmark_data("papalexi2021")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        truth = pseudobulk_deltas(adata, de=False)
        strong, _ = strong_conditions(adata, truth, BenchmarkConfig(dataset="papalexi2021"))
    index = {key: i for i, key in enumerate(truth.condition_keys())}
    genes = list(truth.genes)
    rows = []
    for seed in SEEDS:
        split = make_split(adata, "unseen_perturbation", seed)
        train = truth.deltas[[index[k] for k in split.train if k in index]]
        sizes = np.square(train).sum(axis=1)
        for key in split.test:
            if key not in index:
                continue
            observed = truth.deltas[index[key]]
            targets = truth.conditions[index[key]].targets

            def score(pred: np.ndarray, observed=observed, targets=targets) -> float:
                return pearson_delta(pred, observed, genes, targets)

            keep = np.array([g not in targets for g in genes])
            predictions = {
                "train_mean": train.mean(axis=0),
                "size_weighted_mean": sizes @ train,
                "oracle_best_training_target": _best_single(train, score),
                "oracle_nonnegative_mix": _masked_mix(train, observed, keep),
            }
            for name, pred in predictions.items():
                rows.append(
                    {"seed": seed, "perturbation": key[0], "strong": key in strong, "method": name,
                     "pearson_delta": score(pred)}
                )  # fmt: skip
    table = pd.DataFrame(rows)
    summary = {}
    for group, part in (("all", table), ("strong", table[table["strong"]])):
        per_seed = part.groupby(["method", "seed"])["pearson_delta"].median().unstack("seed")
        summary[group] = {
            method: {
                "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)),
                "per_seed": [float(v) for v in values],
            }
            for method, values in per_seed.iterrows()
        }
    per_target = table[table["strong"]].pivot_table(
        index=["perturbation", "seed"], columns="method", values="pearson_delta"
    )
    report = {
        "dataset": "papalexi2021",
        "split": "unseen_perturbation",
        "seeds": list(SEEDS),
        "metric": "pearson_delta (targeted gene excluded); mean ± sd over the per-seed medians",
        "summary": summary,
        "strong_targets": {
            f"{p}|seed{s}": {m: round(float(v), 4) for m, v in row.items()}
            for (p, s), row in per_target.iterrows()
        },
    }
    write_json(report, OUT)
    for group, methods in summary.items():
        for method, stats in methods.items():
            print(f"{group:6s} {method:30s} {stats['mean']:.3f} ± {stats['sd']:.3f}")


def _masked_mix(train: np.ndarray, observed: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Non-negative mix fitted on the scored genes only (the targeted gene gets 0)."""
    out = np.zeros_like(observed)
    out[keep] = _nonnegative_mix(train[:, keep], observed[keep])
    return out


if __name__ == "__main__":
    main()
