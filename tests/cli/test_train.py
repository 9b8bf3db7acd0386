import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from biojepa.cli import app
from biojepa.data.io import write_h5ad
from biojepa.data.preprocess import prepare
from biojepa.data.splits import make_split

runner = CliRunner()
CONFIG = """
seed = 3
prior_kinds = []
[model]
latent_dim = 16
encoder_hidden = 32
action_dim = 16
predictor_hidden = 32
decoder_hidden = 32
[pretrain]
epochs = 1
[decoder]
epochs = 1
[dynamics]
epochs = 2
steps_per_epoch = 3
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("cli")
    labels = ["control"] * 150 + [
        t for t in ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8") for _ in range(30)
    ]
    genes = [f"A{i}" for i in range(1, 31)]
    base = rng.uniform(1, 10, len(genes))
    counts = np.stack(
        [rng.poisson(base * (0.2 if lab in genes and g == lab else 1.0)) for lab in labels for g in [None]]
    ).astype(np.float32)
    obs = pd.DataFrame(
        {
            "perturbation": labels,
            "perturbation_type": ["control" if lab == "control" else "crispri" for lab in labels],
            "dose": 0.0,
            "time": np.nan,
            "context": "ctx",
            "batch": "b0",
        },
        index=[f"c{i}" for i in range(len(labels))],
    )
    adata = prepare(ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=genes)))
    write_h5ad(adata, root / "prepared.h5ad")
    make_split(adata, "unseen_perturbation", 1).save(root / "split.json")
    write_h5ad(adata[adata.obs["perturbation"] == "control"][:20].copy(), root / "controls.h5ad")
    (root / "cfg.toml").write_text(CONFIG)
    return root


def test_train_then_predict(files):
    out = files / "model"
    args = [
        "train",
        "--data",
        str(files / "prepared.h5ad"),
        "--split",
        str(files / "split.json"),
        "--config",
        str(files / "cfg.toml"),
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file() and (out / "last.json").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--resume" in again.output
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output

    pred = files / "pred.h5ad"
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(out),
            "--cells",
            str(files / "controls.h5ad"),
            "--perturbations",
            "A2,A4+A5",
            "--out",
            str(pred),
        ],
    )
    assert result.exit_code == 0, result.output
    predicted = ad.read_h5ad(pred)
    assert predicted.shape == (40, 30)
    assert set(predicted.obs["perturbation"]) == {"A2", "A4+A5"}

    bad = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(out),
            "--cells",
            str(files / "controls.h5ad"),
            "--perturbations",
            "ZZZ9",
            "--out",
            str(files / "bad.h5ad"),
        ],
    )
    assert bad.exit_code == 1 and "ZZZ9" in bad.output and "seen in training" in bad.output


def test_corrupt_model_is_a_clean_error(files, tmp_path):
    (tmp_path / "model.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(tmp_path),
            "--cells",
            str(files / "controls.h5ad"),
            "--perturbations",
            "A1",
            "--out",
            str(tmp_path / "p.h5ad"),
        ],
    )
    assert result.exit_code == 1 and "checksum" in result.output


def test_a_simulated_screen_trains_and_predicts_with_the_simulators_priors(tmp_path, monkeypatch):
    from biojepa.sim import simulate

    # no real prior sources anywhere: the simulated screen must bring its own gene priors
    monkeypatch.setenv("BIOJEPA_DATA_DIR", str(tmp_path / "empty"))
    adata = prepare(simulate("tiny", 0))
    write_h5ad(adata, tmp_path / "sim.h5ad")
    split = make_split(adata, "unseen_perturbation", 1)
    split.save(tmp_path / "split.json")
    controls = adata[adata.obs["perturbation"] == "control"][:10].copy()
    write_h5ad(controls, tmp_path / "controls.h5ad")
    (tmp_path / "cfg.toml").write_text(CONFIG.replace("prior_kinds = []", 'prior_kinds = ["go"]'))
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        ["train", "--data", str(tmp_path / "sim.h5ad"), "--split", str(tmp_path / "split.json"),
         "--config", str(tmp_path / "cfg.toml"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    trained = {t for label, _ in [*split.train, *split.val] for t in label.split("+")}
    unseen = next(label for label, _ in split.test if "+" not in label and label not in trained)
    result = runner.invoke(
        app,
        ["predict", "--model", str(out), "--cells", str(tmp_path / "controls.h5ad"),
         "--perturbations", unseen, "--out", str(tmp_path / "pred.h5ad")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "predicted from gene priors" in result.output and unseen in result.output
