from __future__ import annotations

import pytest
from typer.testing import CliRunner

from biojepa.cli import app
from biojepa.data import load_dataset
from biojepa.data.io import write_h5ad
from biojepa.data.preprocess import prepare
from biojepa.data.splits import Split

runner = CliRunner()


@pytest.fixture(scope="module")
def prepared_file(shared_data_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("split") / "papalexi.h5ad"
    return write_h5ad(prepare(load_dataset("papalexi2021", data_dir=shared_data_dir)), path)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_split_writes_leak_free_json(prepared_file, tmp_path, seed):
    out = tmp_path / f"split{seed}.json"
    result = runner.invoke(
        app,
        [
            "split",
            str(prepared_file),
            "--kind",
            "unseen_perturbation",
            "--seed",
            str(seed),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    split = Split.load(out)
    assert split.seed == seed and len(split.test) == 6
    test = {p for p, _ in split.test}
    assert not test & {p for p, _ in split.train + split.val}


def test_split_errors_are_clean(prepared_file, tmp_path):
    result = runner.invoke(
        app, ["split", str(prepared_file), "--kind", "doubles", "--out", str(tmp_path / "s.json")]
    )
    assert (
        result.exit_code == 1 and "doubles split needs" in result.output and "Traceback" not in result.output
    )
    result = runner.invoke(app, ["split", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_split_help():
    result = runner.invoke(app, ["split", "--help"])
    assert result.exit_code == 0 and "--test-fraction" in result.output
