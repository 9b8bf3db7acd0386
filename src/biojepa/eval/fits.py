"""The benchmark's method fits: one (method, split seed) each, run in this process or in worker processes.

A fit is described by a :class:`FitTask` (the method, its seeds, and boolean masks into the prepared
AnnData), so a worker needs only the AnnData and the gene priors, sent to it once when it starts. With
``jobs > 1`` the fits run in ``jobs`` spawned processes (no more than there are fits), each with
``cores // jobs`` torch threads: on a
CPU two one-thread fits of the world model run about 1.4× faster together than one after the other
with two threads each (its matrices are too small to keep two threads busy). Results do not depend on
``jobs`` beyond floating-point summation order; every worker holds its own copy of the data, so memory
grows with ``jobs``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import anndata as ad
import numpy as np

from biojepa.data.schema import Condition
from biojepa.errors import DataError, WorkerError
from biojepa.eval.methods import Method, get_method, method_class
from biojepa.priors.base import GenePriors


@dataclass(frozen=True)
class FitTask:
    """Fit ``method`` on one split seed's training cells and predict its test ``conditions``."""

    method: str
    seed: int
    training_seed: int
    fit_cells: np.ndarray  # training + control cells
    val_cells: np.ndarray
    control_cells: np.ndarray
    genes: np.ndarray
    conditions: tuple[Condition, ...]

    @property
    def key(self) -> tuple[str, int]:
        return self.method, self.seed


@dataclass
class FitResult:
    """A fit's predicted Δ (conditions × genes) and what the benchmark records about it."""

    predicted: np.ndarray
    n_fallback: int | None
    fitted: dict[str, Any] = field(default_factory=dict)
    fit_s: float = 0.0
    predict_s: float = 0.0


def build_method(name: str, training_seed: int) -> Method:
    """A fresh instance of ``name``; a seeded method gets ``training_seed``."""
    return get_method(name, seed=training_seed) if method_class(name).seeded else get_method(name)


def gene_subset(adata: ad.AnnData, genes: np.ndarray) -> ad.AnnData:
    """``adata`` on the genes the boolean mask ``genes`` selects (``adata`` itself when it selects all)."""
    return adata if genes.all() else adata[:, genes]


def run_fit(task: FitTask, adata: ad.AnnData, priors: GenePriors | None) -> FitResult:
    """Fit and predict one task on ``adata`` (the prepared AnnData its masks index)."""
    data = gene_subset(adata, task.genes)
    train = data[task.fit_cells].copy()
    val = data[task.val_cells].copy() if task.val_cells.any() else None
    controls = data[task.control_cells].copy()
    method = build_method(task.method, task.training_seed)
    started = time.perf_counter()
    method.fit(train, val, priors)
    fitted = time.perf_counter()
    predicted = method.predict_deltas(list(task.conditions), controls)
    return FitResult(
        predicted=np.asarray(predicted),
        n_fallback=getattr(method, "n_fallback", None),
        fitted=method.fitted_values(),
        fit_s=round(fitted - started, 3),
        predict_s=round(time.perf_counter() - fitted, 3),
    )


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Torch threads each of ``jobs`` workers uses: the cores shared out, at least one."""
    return max(1, available_cores() // jobs)


def run_fits(
    tasks: Sequence[FitTask],
    adata: ad.AnnData,
    priors: GenePriors | None,
    jobs: int = 1,
    done: Callable[[FitTask, FitResult], None] | None = None,
) -> dict[tuple[str, int], FitResult]:
    """Every task's result by ``(method, seed)``; ``done(task, result)`` is called as each finishes (an
    exception it raises stops the run, so a bad prediction need not wait for the other fits).

    ``jobs == 1`` runs them here in order; more run them in that many worker processes, slowest first
    (methods with a training seed of their own, i.e. the trained models, go before the baselines).
    """
    if jobs < 1:
        raise DataError(f"jobs must be at least 1, not {jobs}")
    results: dict[tuple[str, int], FitResult] = {}

    def record(task: FitTask, result: FitResult) -> None:
        results[task.key] = result
        if done is not None:
            done(task, result)

    if jobs == 1 or len(tasks) < 2:
        for task in tasks:
            record(task, run_fit(task, adata, priors))
        return results
    ordered = sorted(tasks, key=lambda t: not method_class(t.method).seeded)
    try:
        _run_in_workers(ordered, adata, priors, jobs, record)
    except BrokenProcessPool as err:
        raise WorkerError(
            f"a worker process stopped without an answer ({len(results)} of {len(tasks)} fits done): killed, "
            "perhaps for lack of memory, as each worker holds a copy of the data and its own fit; rerun with "
            f"fewer than --jobs {jobs}"
        ) from err
    return results


def _run_in_workers(
    tasks: Sequence[FitTask],
    adata: ad.AnnData,
    priors: GenePriors | None,
    jobs: int,
    record: Callable[[FitTask, FitResult], None],
) -> None:
    """Run ``tasks`` in worker processes, ``record`` each result as it arrives; the first exception (a
    worker's, or one ``record`` raises) cancels the tasks not started and is raised once the running
    ones end."""
    workers = min(jobs, len(tasks))
    start = (adata, priors, threads_per_job(workers))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=start) as pool:
        futures = {pool.submit(_worker_fit, task): task for task in tasks}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    record(futures[future], future.result())  # result() raises the worker's exception
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


_WORKER: dict[str, Any] = {}


def _start_worker(adata: ad.AnnData, priors: GenePriors | None, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER.update(adata=adata, priors=priors)


def _worker_fit(task: FitTask) -> FitResult:
    return run_fit(task, _WORKER["adata"], _WORKER["priors"])
