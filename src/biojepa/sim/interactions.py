"""Genetic-interaction types of doubles, from the noise-free truth (Norman et al. 2019 style).

For a double A+B, the true Δ_AB is fitted as ``c_A Δ_A + c_B Δ_B`` (least squares over all genes but
A and B). Its deviation from the additive expectation ``Δ_A + Δ_B`` is ‖Δ_AB − Δ_A − Δ_B‖ / ‖Δ_A + Δ_B‖.
Types: ``additive`` (deviation below ``tolerance``); otherwise ``neomorphic`` when the linear fit
explains less than ``min_fit`` of Δ_AB's variance, ``epistatic`` when one single dominates
(|log10(c_A / c_B)| > ``dominance``), else ``synergistic`` ((c_A + c_B) / 2 > 1) or ``buffering``.
Doubles whose singles and double all move less than ``min_effect`` (L2 norm) are ``no_effect``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from biojepa.data.schema import CONTROL, Condition
from biojepa.sim.simulator import Simulator


def interaction_table(
    sim: Simulator,
    doubles: Sequence[Condition],
    *,
    tolerance: float = 0.2,
    min_fit: float = 0.8,
    dominance: float = 0.5,
    min_effect: float = 0.1,
) -> pd.DataFrame:
    """One row per double: the fit coefficients, deviation from additivity and the interaction type."""
    gene_index = {g: i for i, g in enumerate(sim.genes)}
    rows = []
    for double in doubles:
        a, b = double.targets
        singles = [
            Condition(t, double.context, double.perturbation_type, double.dose, double.time) for t in (a, b)
        ]
        control = Condition(CONTROL, double.context, "control")
        expected = sim.expected([double, *singles, control])
        keep = np.ones(len(sim.genes), dtype=bool)
        keep[[gene_index[a], gene_index[b]]] = False
        d_ab, d_a, d_b = (expected[:3] - expected[3])[:, keep]
        additive = d_a + d_b
        coef, *_ = np.linalg.lstsq(np.stack([d_a, d_b], axis=1), d_ab, rcond=None)
        fitted = coef[0] * d_a + coef[1] * d_b
        fit = 1.0 - np.sum((d_ab - fitted) ** 2) / max(np.sum((d_ab - d_ab.mean()) ** 2), 1e-12)
        deviation = np.linalg.norm(d_ab - additive) / max(np.linalg.norm(additive), 1e-12)
        ratio = abs(np.log10(max(abs(coef[0]), 1e-6) / max(abs(coef[1]), 1e-6)))
        if max(np.linalg.norm(d_ab), np.linalg.norm(d_a), np.linalg.norm(d_b)) < min_effect:
            kind = "no_effect"
        elif deviation < tolerance:
            kind = "additive"
        elif fit < min_fit:
            kind = "neomorphic"
        elif ratio > dominance:
            kind = "epistatic"
        else:
            kind = "synergistic" if coef.sum() / 2 > 1 else "buffering"
        rows.append(
            {
                "perturbation": double.perturbation,
                "context": double.context,
                "c_a": coef[0],
                "c_b": coef[1],
                "deviation": deviation,
                "fit_r2": fit,
                "norm_double": float(np.linalg.norm(d_ab)),
                "norm_additive": float(np.linalg.norm(additive)),
                "type": kind,
            }
        )
    return pd.DataFrame(rows)
