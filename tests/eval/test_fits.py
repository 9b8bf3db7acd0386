from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import biojepa.eval.fits as fits
from biojepa.data.schema import Condition
from biojepa.errors import DataError, WorkerError
from biojepa.eval.benchmark import BenchmarkConfig, run_benchmark
from biojepa.eval.fits import FitTask, run_fits, threads_per_job

pytestmark = pytest.mark.filterwarnings("ignore:.*used the train mean for them:UserWarning")


def _tasks(adata, methods: tuple[str, ...], test: tuple[str, ...] = ("G9", "G10")) -> list[FitTask]:
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    control = labels == "control"
    held_out = np.isin(labels, test)
    conditions = tuple(Condition(t, "ctx", "crispr_ko") for t in test)
    return [
        FitTask(
            method=name,
            seed=1,
            training_seed=0,
            fit_cells=~held_out,
            val_cells=np.zeros(adata.n_obs, dtype=bool),
            control_cells=control,
            genes=np.ones(adata.n_vars, dtype=bool),
            conditions=conditions,
        )
        for name in methods
    ]


def test_worker_processes_give_the_predictions_of_a_serial_run(screen):
    adata = screen()
    tasks = _tasks(adata, ("train_mean", "linear", "no_change"))
    serial = run_fits(tasks, adata, None, jobs=1)
    finished: list[str] = []
    parallel = run_fits(tasks, adata, None, jobs=2, done=lambda t, r: finished.append(t.method))
    assert sorted(finished) == sorted(t.method for t in tasks)
    assert set(parallel) == set(serial) == {(t.method, 1) for t in tasks}
    for key, result in serial.items():
        np.testing.assert_array_equal(parallel[key].predicted, result.predicted)
        assert parallel[key].fit_s >= 0 and parallel[key].predict_s >= 0
    assert np.abs(serial[("train_mean", 1)].predicted).sum() > 0


def test_an_error_in_a_worker_reaches_the_caller(screen):
    adata = screen()
    tasks = _tasks(adata, ("ridge_prior", "no_change"))  # ridge_prior cannot fit without gene priors
    with pytest.raises(DataError, match="ridge_prior needs gene priors"):
        run_fits(tasks, adata, None, jobs=2)
    with pytest.raises(DataError, match="jobs must be at least 1"):
        run_fits(tasks, adata, None, jobs=0)


def test_an_error_raised_on_a_result_stops_a_parallel_run(screen):
    adata = screen()
    tasks = _tasks(adata, ("train_mean", "no_change", "linear", "additive"))
    seen: list[str] = []

    def reject(task, result) -> None:
        seen.append(task.method)
        raise DataError(f"{task.method} rejected")

    with pytest.raises(DataError, match="rejected"):
        run_fits(tasks, adata, None, jobs=2, done=reject)
    assert len(seen) == 1


class _KillsTheWorker:
    """Unpickling it ends the process at once, as the kernel's out-of-memory killer would."""

    def __reduce__(self):
        return os._exit, (3,)


def test_a_worker_that_dies_gives_a_clear_error(screen):
    adata = screen()
    tasks = _tasks(adata, ("train_mean", "no_change"))
    with pytest.raises(WorkerError, match="rerun with fewer than --jobs 2"):
        run_fits(tasks, adata, _KillsTheWorker(), jobs=2)  # type: ignore[arg-type]


def test_the_cores_are_shared_out_among_the_workers(monkeypatch):
    monkeypatch.setattr(fits, "available_cores", lambda: 8)
    assert [threads_per_job(j) for j in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


def test_a_parallel_benchmark_writes_what_a_serial_one_does(screen, tmp_path):
    adata = screen(targets=[f"G{i}" for i in range(1, 13)])
    methods = ("no_change", "train_mean", "additive", "linear", "ceiling")
    tables = {}
    for jobs in (1, 2):
        config = BenchmarkConfig(dataset="synthetic", seeds=(1, 2), methods=methods, jobs=jobs)
        steps: list[str] = []
        results = run_benchmark(config, tmp_path / str(jobs), adata=adata, progress=steps.append)
        assert len(steps) == 2 * len(methods) and results["settings"]["jobs"] == jobs
        tables[jobs] = pd.read_csv(tmp_path / str(jobs) / "per_perturbation.csv")
    pd.testing.assert_frame_equal(tables[1], tables[2])
