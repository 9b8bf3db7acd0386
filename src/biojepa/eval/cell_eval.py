"""Export predictions as AnnData pairs that cell-eval (ArcInstitute's VCC metrics) scores directly.

For one method and seed, :func:`export_prediction` writes

* ``{method}__seed{S}_real.h5ad``: the measured test cells of every evaluated condition plus the control
  cells of the same contexts, with their log-normalised ``X``;
* ``{method}__seed{S}_pred.h5ad``: for every condition, as many cells as the real group, each a control
  cell of the same context shifted by the predicted Δ; the real control cells are copied unchanged (so
  cell-eval's predicted effects are taken against the measured controls, cell-eval issue #196).

Both files share ``var_names`` and obs: the canonical columns plus ``condition``, cell-eval's
perturbation column (the perturbation label, with dose and time appended where one perturbation is
evaluated at several, see :func:`condition_labels`; control label ``"control"``). Score them with::

    cell-eval run -ar X_real.h5ad -ap X_pred.h5ad --pert-col condition --control-pert control

adding ``--celltype-col context`` when the data holds more than one context (labels repeat across
contexts). The shift is mean-preserving: each group's predicted pseudobulk equals the context's control
mean plus the predicted Δ exactly, while no value drops below zero (log-normalised data cannot). Where
the control mean plus Δ is itself negative the gene is floored at zero in every cell; the number of such
(condition, gene) entries is recorded in ``uns["biojepa"]["floored_entries"]`` of the predicted file.

Caveat for cell-eval's DE metrics (``overlap_at_N``, ``precision_at_N``, ``de_*``): a predicted group is
control cells moved by one shift per gene, with the control cells' own spread, so its Wilcoxon test calls
many more genes significant than the real group does (on Papalexi, 137–185 predicted vs 0–102 real
significant genes per perturbation for the train-mean baseline). The pseudobulk metrics (``pearson_delta``,
``mse``, ``mae``, ``discrimination_score_*``) are the ones these exports measure faithfully.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse

from biojepa.data.io import atomic_write
from biojepa.data.schema import CONTROL, UNS_KEY, Condition
from biojepa.errors import DataError
from biojepa.eval.pseudobulk import cell_conditions, check_log_normalised, condition_key

PERT_COL = "condition"
CONTEXT_COL = "context"
# cell-eval rejects decimal data whose maximum reaches this value (utils.guess_is_lognorm).
_LOG1P_MAX = 15.0
_KEPT_OBS = ("perturbation", "perturbation_type", "dose", "time", "context", "batch")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def export_prediction(
    out_dir: Path,
    *,
    method: str,
    seed: int,
    real: ad.AnnData,
    conditions: list[Condition],
    predicted_deltas: np.ndarray,
) -> tuple[Path, Path]:
    """Write the real and predicted AnnData of one method and seed in cell-eval's format.

    ``real`` is prepared (log-normalised) data holding at least the test cells of ``conditions`` and the
    control cells of their contexts; ``predicted_deltas[i]`` is the predicted pseudobulk Δ of
    ``conditions[i]`` over ``real.var_names``. Control cells for the predicted groups are drawn with a
    generator seeded by ``seed``. Returns ``(real_path, pred_path)``.
    """
    if not _SAFE_NAME.match(method):
        raise DataError(f"method name {method!r} is not usable in a file name; use letters, digits, _ . -")
    check_log_normalised(real)
    if not real.var_names.is_unique:
        raise DataError("real data has duplicate gene names; make var_names unique first")
    deltas = _check_deltas(predicted_deltas, conditions, real.n_vars)
    labels = condition_labels(conditions)
    codes, cell_conds = cell_conditions(real)
    code_of = {condition_key(c): code for code, c in enumerate(cell_conds) if c is not None}
    is_control = (real.obs["perturbation"].astype(str) == CONTROL).to_numpy()
    contexts = real.obs[CONTEXT_COL].astype(str).to_numpy()

    rng = np.random.default_rng(seed)
    real_parts: list[tuple[np.ndarray, str]] = []
    pred_blocks: list[np.ndarray] = []
    floored = 0
    for context in dict.fromkeys(c.context for c in conditions):
        control_rows = np.flatnonzero(is_control & (contexts == context))
        if control_rows.size == 0:
            raise DataError(
                f"context {context!r} has no control cells in the real data; pass the control cells of "
                "every evaluated context"
            )
        controls = _dense(real.X[control_rows])
        _check_expression(controls)
        control_mean = controls.mean(axis=0)
        real_parts.append((control_rows, CONTROL))
        pred_blocks.append(controls)
        for i, condition in enumerate(conditions):
            if condition.context != context:
                continue
            code = code_of.get(condition_key(condition))
            rows = np.flatnonzero(codes == code) if code is not None else np.zeros(0, dtype=int)
            if rows.size == 0:
                raise DataError(
                    f"condition {condition.perturbation!r} in context {context!r} (dose {condition.dose}, "
                    f"time {condition.time}) has no cells in the real data; export only measured conditions"
                )
            picked = rng.choice(control_rows.size, size=rows.size, replace=rows.size > control_rows.size)
            target = control_mean + deltas[i]
            floored += int((target < 0).sum())
            pred_blocks.append(shift_to_mean(controls[picked], np.maximum(target, 0.0)))
            real_parts.append((rows, labels[i]))

    order = np.concatenate([rows for rows, _ in real_parts])
    real_x = _dense(real.X[order])
    _check_expression(real_x)
    obs = real.obs.iloc[order][[c for c in _KEPT_OBS if c in real.obs.columns]].copy()
    obs[PERT_COL] = pd.Categorical(
        np.concatenate([np.full(rows.size, label, dtype=object) for rows, label in real_parts])
    )
    var = pd.DataFrame(index=real.var_names.astype(str))
    real_out = ad.AnnData(X=real_x.astype(np.float32), obs=obs, var=var)
    pred_obs = obs.copy()
    pred_obs.index = [f"pred_{k}" for k in range(len(pred_obs))]
    pred_out = ad.AnnData(X=np.vstack(pred_blocks).astype(np.float32), obs=pred_obs, var=var.copy())
    info = {"method": method, "seed": int(seed), "pert_col": PERT_COL, "control_pert": CONTROL}
    real_out.uns[UNS_KEY] = dict(info, log_normalised=True)
    pred_out.uns[UNS_KEY] = dict(info, log_normalised=True, floored_entries=floored)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{method}__seed{int(seed)}"
    real_path, pred_path = out_dir / f"{stem}_real.h5ad", out_dir / f"{stem}_pred.h5ad"
    for adata, path in ((real_out, real_path), (pred_out, pred_path)):
        atomic_write(path, lambda tmp, adata=adata: adata.write_h5ad(tmp, compression="gzip"))
    return real_path, pred_path


def condition_labels(conditions: Sequence[Condition]) -> list[str]:
    """The ``condition`` label of each condition in the exported files.

    It is the perturbation, with dose (nM) and time (h) appended where one perturbation is evaluated at
    several doses or times in a context (``"drugX_100nM_24h"``), so each label names one cell group.
    """
    per_group: dict[tuple[str, str], int] = {}
    for c in conditions:
        per_group[(c.perturbation, c.context)] = per_group.get((c.perturbation, c.context), 0) + 1
    labels = []
    for c in conditions:
        label = c.perturbation
        if per_group[(c.perturbation, c.context)] > 1:
            label += f"_{c.dose:g}nM" + ("" if np.isnan(c.time) else f"_{c.time:g}h")
        labels.append(label)
    seen = [(label, c.context) for label, c in zip(labels, conditions, strict=True)]
    if len(set(seen)) != len(seen):
        raise DataError("conditions contain duplicates; each condition must appear once")
    return labels


def shift_to_mean(cells: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Shift each gene of ``cells`` so its mean equals ``target``, keeping every value ≥ 0.

    Per gene, returns ``max(x + s, 0)`` with the scalar ``s`` solving ``mean(max(x + s, 0)) = target``
    (a uniform shift wherever no value would turn negative). ``cells`` is ``(n_cells, n_genes)`` with
    non-negative values, ``target`` is ``(n_genes,)`` and non-negative.
    """
    x = np.asarray(cells, dtype=np.float64)
    m = np.asarray(target, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or m.shape != (x.shape[1],):
        raise DataError(
            f"shift_to_mean needs (n_cells ≥ 1, n_genes) cells and (n_genes,) target, got "
            f"{x.shape} and {m.shape}"
        )
    if (m < 0).any() or (x < 0).any():
        raise DataError("shift_to_mean needs non-negative cells and target (log-normalised expression)")
    n = x.shape[0]
    ordered = np.sort(x, axis=0)
    tails = np.cumsum(ordered[::-1], axis=0)[::-1]  # tails[k] = sum of the n - k largest values
    kept = (n - np.arange(n))[:, None]
    # Mean when the k smallest cells are exactly at zero (s = -ordered[k]); non-increasing in k.
    mean_at_break = (tails - kept * ordered) / n
    first = n - (mean_at_break <= m[None, :] + 1e-12).sum(axis=0)
    cols = np.arange(x.shape[1])
    shift = (n * m - tails[first, cols]) / kept[first, 0]
    return np.maximum(x + shift[None, :], 0.0)


def _check_deltas(deltas: np.ndarray, conditions: Sequence[Condition], n_genes: int) -> np.ndarray:
    if not conditions:
        raise DataError("no conditions to export; pass the evaluated test conditions")
    if any(c.is_control for c in conditions):
        raise DataError("conditions include 'control'; control cells are exported automatically")
    array = np.asarray(deltas)
    expected = (len(conditions), n_genes)
    if array.shape != expected:
        raise DataError(
            f"predicted_deltas has shape {array.shape}, expected {expected} "
            "(one row per condition, one column per gene of the real data, in its var order)"
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise DataError("predicted_deltas contains NaN, infinite or non-numeric values")
    return array.astype(np.float64)


def _check_expression(expression: np.ndarray) -> None:
    if not np.isfinite(expression).all():
        raise DataError("real expression contains NaN or infinite values")
    if expression.min() < 0 or expression.max() >= _LOG1P_MAX:
        raise DataError(
            f"real expression spans [{expression.min():.3g}, {expression.max():.3g}]; log1p-normalised "
            f"data lies in [0, {_LOG1P_MAX}) as cell-eval requires"
        )


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if scipy.sparse.issparse(matrix) else matrix, dtype=np.float64)
