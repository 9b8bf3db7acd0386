from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
import zipfile

import anndata as ad
import pytest
from typer.testing import CliRunner

from biojepa.cli import app
from biojepa.data import registry
from biojepa.data.preprocess import load_prepared
from biojepa.data.registry import DatasetEntry, RemoteFile

runner = CliRunner()


def test_list_shows_all_datasets_with_local_status(shared_data_dir):
    result = runner.invoke(app, ["data", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in registry.DATASETS:
        assert name in result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "yes" in lines["papalexi2021"] and "no" in lines["norman2019"]


def test_prepare_papalexi_writes_schema(shared_data_dir, tmp_path):
    out = tmp_path / "papalexi.h5ad"
    result = runner.invoke(app, ["data", "prepare", "papalexi2021", "--out", str(out)])
    assert result.exit_code == 0, result.output
    prepared = load_prepared(out)
    assert prepared.obs["perturbation"].nunique() == 26
    assert prepared.obs["batch"].nunique() == 3
    assert "25 perturbations + control" in result.output


def test_errors_are_clean_messages(tmp_path):
    result = runner.invoke(app, ["data", "fetch", "nope"])
    assert result.exit_code == 1
    assert "unknown dataset 'nope'" in result.output and "Traceback" not in result.output
    result = runner.invoke(
        app,
        ["data", "prepare", "norman2019", "--out", str(tmp_path / "x.h5ad")],
        env={"BIOJEPA_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 1 and "biojepa data fetch norman2019" in result.output


@pytest.fixture
def served_zip(tmp_path, shared_data_dir):
    """A zip holding a small canonical h5ad, served from 127.0.0.1."""
    source = ad.read_h5ad(
        shared_data_dir / "norman2019_genetic_interactions/fixture_scx/norman_subset_50x50.h5ad"
    )
    h5ad = tmp_path / "fixture.h5ad"
    source.write_h5ad(h5ad)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(h5ad, "tiny/perturb_processed.h5ad")
    root = tmp_path / "www"
    root.mkdir()
    (root / "tiny.zip").write_bytes(buffer.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield (
        f"http://127.0.0.1:{httpd.server_address[1]}/tiny.zip",
        hashlib.sha256(buffer.getvalue()).hexdigest(),
    )
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_verifies_and_extracts(served_zip, tmp_path, monkeypatch):
    url, sha = served_zip
    entry = DatasetEntry(
        name="tiny",
        title="tiny CPA-format fixture",
        adapter="cpa_norman",
        license="GPL-3.0",
        citation="-",
        paths=("tiny/tiny/perturb_processed.h5ad",),
        remote=(RemoteFile(url, "tiny/tiny.zip", sha256=sha, extract=True),),
    )
    monkeypatch.setitem(registry.DATASETS, "tiny", entry)
    data = tmp_path / "data"
    result = runner.invoke(app, ["data", "fetch", "tiny"], env={"BIOJEPA_DATA_DIR": str(data)})
    assert result.exit_code == 0, result.output
    assert (data / "tiny/tiny/perturb_processed.h5ad").is_file()
    again = runner.invoke(app, ["data", "fetch", "tiny"], env={"BIOJEPA_DATA_DIR": str(data)})
    assert "already present" in again.output
    bad = DatasetEntry(**{**entry.__dict__, "remote": (RemoteFile(url, "tiny/tiny.zip", sha256="0" * 64),)})
    monkeypatch.setitem(registry.DATASETS, "tiny", bad)
    result = runner.invoke(app, ["data", "fetch", "tiny", "--force"], env={"BIOJEPA_DATA_DIR": str(data)})
    assert result.exit_code == 1 and "checksum mismatch" in result.output
    assert not (data / "tiny/tiny.zip").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["data", "--help"],
        ["data", "list", "--help"],
        ["data", "fetch", "--help"],
        ["data", "prepare", "--help"],
    ],
)
def test_help(command):
    result = runner.invoke(app, command)
    assert result.exit_code == 0 and "Usage" in result.output
