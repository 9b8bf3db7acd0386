from __future__ import annotations

import json

from typer.testing import CliRunner

from biojepa.cli import app

runner = CliRunner()


def test_benchmark_command_writes_results_and_prints_the_table(shared_data_dir, tmp_path):
    out = tmp_path / "bench"
    result = runner.invoke(
        app,
        [
            "benchmark",
            "--dataset",
            "papalexi2021",
            "--seeds",
            "1",
            "--methods",
            "train_mean,ceiling",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "train_mean" in result.output and "strong" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [1] and list(results["methods"]) == ["train_mean", "ceiling"]
    assert (out / "per_perturbation.csv").is_file()
    assert (out / "deltas" / "ceiling__seed1.npz").is_file()


def test_bad_options_give_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["benchmark", "--dataset", "x", "--seeds", "1,a", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "--seeds must be comma-separated integers" in result.output
    result = runner.invoke(app, ["benchmark", "--dataset", "x", "--methods", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "unknown method" in result.output
    result = runner.invoke(
        app, ["benchmark", "--dataset", "x", "--control-by", "plate", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1 and "--control-by" in result.output
    result = runner.invoke(
        app, ["benchmark", "--dataset", "x", "--training-seed", "each", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1 and "--training-seed must be an integer or 'split'" in result.output
    for jobs in ("0", "two"):
        result = runner.invoke(app, ["benchmark", "--dataset", "x", "--jobs", jobs, "--out", str(tmp_path)])
        assert result.exit_code == 1 and "--jobs must be a positive integer or 'auto'" in result.output


def test_jobs_auto_is_one_worker_per_core_up_to_a_limit(monkeypatch):
    import biojepa.eval.fits as fits
    from biojepa.cli.benchmark import parse_jobs

    monkeypatch.setattr(fits, "available_cores", lambda: 6)
    assert (parse_jobs("auto"), parse_jobs("3")) == (6, 3)
    monkeypatch.setattr(fits, "available_cores", lambda: 64)  # each worker holds a copy of the data
    assert (parse_jobs("auto"), parse_jobs("16")) == (8, 16)
