import anndata as ad
from typer.testing import CliRunner

from biojepa.cli import app
from biojepa.data.schema import validate

runner = CliRunner()


def test_simulate_writes_h5ad_config_and_network(tmp_path):
    out = tmp_path / "tiny.h5ad"
    result = runner.invoke(app, ["simulate", "--preset", "tiny", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    adata = ad.read_h5ad(out)
    validate(adata)
    assert adata.uns["biojepa_sim"]["seed"] == 2
    assert (tmp_path / "tiny.sim.toml").is_file() and (tmp_path / "tiny.edges.tsv").is_file()
    assert f"{adata.n_obs:,} cells" in result.output


def test_simulate_from_a_config_reproduces_the_file(tmp_path):
    first, second = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
    assert (
        runner.invoke(app, ["simulate", "--preset", "tiny", "--seed", "3", "--out", str(first)]).exit_code
        == 0
    )
    config = tmp_path / "a.sim.toml"
    result = runner.invoke(app, ["simulate", "--config", str(config), "--seed", "3", "--out", str(second)])
    assert result.exit_code == 0, result.output
    a, b = ad.read_h5ad(first), ad.read_h5ad(second)
    assert (a.X != b.X).nnz == 0 and a.obs.equals(b.obs)


def test_simulate_reports_bad_input_without_traceback(tmp_path):
    result = runner.invoke(app, ["simulate", "--preset", "nope", "--out", str(tmp_path / "x.h5ad")])
    assert result.exit_code == 1
    assert "unknown simulator preset" in result.output
    result = runner.invoke(
        app, ["simulate", "--config", str(tmp_path / "none.toml"), "--out", str(tmp_path / "x.h5ad")]
    )
    assert result.exit_code == 1 and "not found" in result.output


def test_simulate_help():
    result = runner.invoke(app, ["simulate", "--help"])
    assert result.exit_code == 0 and "--preset" in result.output
