"""Calibration of the predictive distribution: coverage of central intervals on measured cells.

Run ``python -m biojepa.models.calibration --dataset papalexi2021 --seed 1 --out FILE.json`` to fit the
model on an unseen-perturbation split and score its intervals on the held-out perturbations.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse

from biojepa.data.schema import Condition
from biojepa.models.world_model import WorldModel


def interval_coverage(
    predicted: ad.AnnData, observed: ad.AnnData, levels: tuple[float, ...] = (0.5, 0.9), seed: int = 0
) -> dict[float, float]:
    """Share of observed expression values inside the predicted central intervals, per level.

    The predictive distribution of a post-intervention cell is the mixture over pre-cells of the decoder's
    Gaussians (``predicted.X`` means, ``layers["variance"]``); intervals are its per-gene quantiles, from
    samples. A calibrated model covers about ``level`` of the observed values.
    """
    rng = np.random.default_rng(seed)
    mean = np.asarray(predicted.X)
    samples = mean + rng.standard_normal(mean.shape) * np.sqrt(predicted.layers["variance"])
    genes = list(predicted.var_names)
    values = observed[:, genes].X
    values = values.toarray() if scipy.sparse.issparse(values) else np.asarray(values)
    out = {}
    for level in levels:
        low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
        out[level] = float(((values >= low) & (values <= high)).mean())
    return out


def main() -> None:
    """Fit on one split and write the coverage of each held-out perturbation."""
    from biojepa.data.splits import make_split
    from biojepa.eval.benchmark import load_benchmark_data
    from biojepa.train.checkpoints import atomic_write_bytes

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="papalexi2021")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    adata = load_benchmark_data(args.dataset)
    split = make_split(adata, "unseen_perturbation", args.seed)
    masks = split.cell_masks(adata)
    model = WorldModel().fit(adata, masks["train"], masks["val"] if masks["val"].any() else None)
    controls = adata[masks["control"]]
    controls = controls[
        np.random.default_rng(0).choice(controls.n_obs, min(1000, controls.n_obs), replace=False)
    ]
    rows = []
    for perturbation, context in sorted(split.test):
        cells = adata[(adata.obs["perturbation"] == perturbation) & (adata.obs["context"] == context)]
        ptype = str(cells.obs["perturbation_type"].iloc[0])
        condition = Condition(perturbation, context, ptype)
        predicted = model.predict(controls[controls.obs["context"] == context], [condition])
        coverage = interval_coverage(predicted, cells)
        rows.append(
            {
                "perturbation": perturbation,
                "context": context,
                "cells": cells.n_obs,
                **{f"coverage_{int(k * 100)}": v for k, v in coverage.items()},
            }
        )
    summary = {f"median_{k}": float(np.median([r[k] for r in rows])) for k in ("coverage_50", "coverage_90")}
    report = {
        "command": f"python -m biojepa.models.calibration --dataset {args.dataset} --seed {args.seed} "
        f"--out {args.out}",
        "split": "unseen_perturbation",
        "seed": args.seed,
        **summary,
        "per_perturbation": rows,
    }
    atomic_write_bytes(args.out, (json.dumps(report, indent=2) + "\n").encode())
    print(json.dumps(report | {"per_perturbation": len(rows)}, indent=2))


if __name__ == "__main__":
    main()
