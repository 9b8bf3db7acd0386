from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from biojepa.cli import app

runner = CliRunner()


@pytest.mark.filterwarnings("ignore:.*used the train mean for them:UserWarning")
def test_demo_simulates_a_screen_and_benchmarks_it_with_parallel_fits(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo", "--out", str(out), "--seeds", "1,2", "--methods", "train_mean,ceiling", "--jobs", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "sim_demo_seed0.h5ad").is_file() and (out / "benchmark" / "report.html").is_file()
    results = json.loads((out / "benchmark" / "results.json").read_text())
    assert results["settings"]["jobs"] == 2 and results["seeds"] == [1, 2]
    assert results["methods"]["train_mean"]["strong"]["pearson_delta"]["mean"] is not None
    assert "demo finished in" in result.output
