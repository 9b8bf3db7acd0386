import json

import numpy as np
import pytest
import scipy.sparse as sp

from biojepa.data.schema import Condition
from biojepa.errors import CheckpointError, DataError
from biojepa.models.world_model import WorldModel, parse_actions


@pytest.fixture(scope="module")
def fitted(screen, priors, tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("model")
    labels = screen.obs["perturbation"].to_numpy()
    train = np.isin(labels, ["G0", "G1", "G2", "G4", "G5", "G6"])
    val = labels == "G3"
    model = WorldModel(tiny_config(), priors=priors).fit(screen, train, val, out=out)
    return model, out


def test_parse_actions():
    conditions = parse_actions("STAT1, JAK2+IRF1,control", "crispri")
    assert [c.perturbation for c in conditions] == ["STAT1", "IRF1+JAK2", "control"]
    assert [c.perturbation_type for c in conditions] == ["crispri", "crispri", "control"]
    with pytest.raises(DataError, match="no perturbations"):
        parse_actions(" , ", "crispri")


def test_fit_logs_every_stage(fitted):
    model, _ = fitted
    stages = [h["stage"] for h in model.history]
    assert stages == ["pretrain", "decoder", "dynamics", "dynamics"]
    assert {"effective_rank", "regularizer"} <= set(model.history[0])
    last = model.history[-1]
    assert "val_pearson_delta" in last and 0.0 <= last["combination_gate"] <= 1.0
    assert 0.0 <= last["latent_gate"] <= 1.0
    # the retrieval's sharpness and gain were refitted leave-one-out, and the model holds them
    effect = model.module.effect
    assert last["retrieval_scale"] == pytest.approx(effect.feature_scale.item())
    assert last["retrieval_gain"] == pytest.approx(effect.log_gain.exp().item())
    assert last["retrieval_gain"] > 0
    # the memory's denoising rule was chosen by split-half validation, every candidate scored
    assert last["memory_shrinkage"] in last["shrinkage_scores"]
    assert last["shrinkage_scores"][last["memory_shrinkage"]] == max(last["shrinkage_scores"].values())


def test_predict_returns_anndata_for_seen_unseen_and_combo(fitted, screen):
    model, _ = fitted
    controls = screen[screen.obs["perturbation"] == "control"][:10]
    pred = model.predict(controls, "G0,NEWGENE,G1+G7,control")
    assert pred.shape == (40, screen.n_vars)
    assert pred.obs["perturbation"].unique().tolist() == ["G0", "NEWGENE", "G1+G7", "control"]
    assert (pred.layers["variance"] > 0).all()
    assert pred.uns["biojepa"]["targets"] == {"G0": "seen", "G1": "seen", "G7": "prior", "NEWGENE": "prior"}
    assert np.isfinite(pred.X).all()
    with pytest.raises(DataError, match="NOPE"):
        model.predict(controls, "NOPE")


def test_embed_and_deltas(fitted, screen):
    model, _ = fitted
    assert model.embed(screen[:5]).shape == (5, 16)
    controls = screen[screen.obs["perturbation"] == "control"]
    deltas = model.predict_deltas([Condition("G0", "ctx"), Condition("G7", "ctx")], controls)
    assert deltas.shape == (2, screen.n_vars) and np.isfinite(deltas).all()
    with pytest.raises(DataError, match="no control cells in context 'other'"):
        model.predict_deltas([Condition("G0", "other")], controls)


def test_save_load_round_trip_and_corruption(fitted, screen, tmp_path):
    model, out = fitted
    controls = screen[screen.obs["perturbation"] == "control"]
    loaded = WorldModel.load(out)
    conditions = [Condition("G0", "ctx"), Condition("G1+G2", "ctx")]
    np.testing.assert_allclose(
        loaded.predict_deltas(conditions, controls),
        model.predict_deltas(conditions, controls),
        rtol=1e-5,
        atol=1e-6,
    )
    model.save(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        WorldModel.load(tmp_path)
    with pytest.raises(CheckpointError, match="missing"):
        WorldModel.load(tmp_path / "nothing")


def test_a_model_saved_before_the_prior_network_still_loads(fitted, screen, tmp_path):
    from biojepa.models.world_model import MODEL_NAME, PRIOR_NETWORK_BUFFERS
    from biojepa.train.checkpoints import load_checkpoint, save_checkpoint

    model, out = fitted
    tensors, meta = load_checkpoint(out, MODEL_NAME)
    old_tensors = {
        k: v
        for k, v in tensors.items()
        if k != "vocab.network_table" and k[len("module.") :] not in PRIOR_NETWORK_BUFFERS
    }
    meta["vocab"] = {k: v for k, v in meta["vocab"].items() if not k.startswith("network_")}
    save_checkpoint(tmp_path, MODEL_NAME, old_tensors, meta)
    loaded = WorldModel.load(tmp_path)
    effect = loaded.module.effect
    assert (effect.network_weight.item(), effect.novel_gain_ratio.item()) == (0.0, 1.0)
    assert effect.novel_network_weight.item() == 0.0 and loaded.vocab.network_width == 0
    controls = screen[screen.obs["perturbation"] == "control"]
    measured = [Condition("G0", "ctx")]
    np.testing.assert_allclose(
        loaded.predict_deltas(measured, controls), model.predict_deltas(measured, controls), atol=1e-6
    )


def test_resume_continues_to_the_same_model(screen, priors, tmp_path, fitted, tiny_config):
    model, out = fitted
    labels = screen.obs["perturbation"].to_numpy()
    train = np.isin(labels, ["G0", "G1", "G2", "G4", "G5", "G6"])
    val = labels == "G3"
    with pytest.raises(CheckpointError, match="--resume"):
        WorldModel(tiny_config(), priors=priors).fit(screen, train, val, out=out)

    def interrupt(stage, epoch, total, record):
        if stage == "dynamics" and epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        WorldModel(tiny_config(), priors=priors).fit(screen, train, val, out=tmp_path, on_epoch=interrupt)
    assert json.loads((tmp_path / "last.json").read_text())["position"] == [2, 1]
    resumed = WorldModel(tiny_config(), priors=priors).fit(screen, train, val, out=tmp_path, resume=True)
    assert [h["epoch"] for h in resumed.history] == [h["epoch"] for h in model.history]
    controls = screen[screen.obs["perturbation"] == "control"]
    conditions = [Condition("G0", "ctx"), Condition("G7", "ctx")]
    np.testing.assert_allclose(
        resumed.predict_deltas(conditions, controls),
        model.predict_deltas(conditions, controls),
        rtol=1e-4,
        atol=1e-5,
    )
    (tmp_path / "last.json").write_text("{ truncated")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        WorldModel(tiny_config(), priors=priors).fit(screen, train, val, out=tmp_path, resume=True)


def test_interval_coverage_on_held_out_cells(fitted, screen):
    from biojepa.models.calibration import interval_coverage

    model, _ = fitted
    controls = screen[screen.obs["perturbation"] == "control"]
    predicted = model.predict(controls, "G3")
    coverage = interval_coverage(predicted, screen[screen.obs["perturbation"] == "G3"])
    assert set(coverage) == {0.5, 0.9}
    assert 0.0 <= coverage[0.5] <= coverage[0.9] <= 1.0
    own = interval_coverage(model.predict(controls, "control"), controls)
    assert 0.0 < own[0.5] < own[0.9] <= 1.0


def test_gates_fit_on_a_validation_set_mixing_unseen_singles_and_combinations(screen, priors, tiny_config):
    data = screen.copy()
    labels = data.obs["perturbation"].astype(str).to_numpy()
    labels[labels == "G7"] = "G0+G1"  # a combination of two training targets
    data.obs["perturbation"] = labels
    train = np.isin(labels, ["G0", "G1", "G2", "G4", "G5", "G6"])
    val = np.isin(labels, ["G3", "G0+G1"])
    model = WorldModel(tiny_config(), priors=priors).fit(data, train, val)
    last = model.history[-1]
    assert 0.0 <= last["latent_gate"] <= 1.0 and 0.0 <= last["combination_gate"] <= 1.0


def test_the_latent_gate_stays_one_when_every_validation_target_is_measured(screen, priors, tiny_config):
    labels = screen.obs["perturbation"].astype(str).to_numpy()
    g0 = np.flatnonzero(labels == "G0")
    val = np.zeros(screen.n_obs, dtype=bool)
    val[g0[::2]] = True  # half of a training target's cells: the memory holds that target measured
    train = np.isin(labels, ["G0", "G1", "G2", "G4"]) & ~val
    model = WorldModel(tiny_config(), priors=priors).fit(screen, train, val)
    assert model.history[-1]["latent_gate"] == 1.0
    assert model.module.effect.latent_gate.item() == 1.0


@pytest.fixture(scope="module")
def network_priors(priors):
    """The toy priors plus what each target is known to regulate: the genes of its program, signed so that a
    knockout moves them the way the screen does."""
    from biojepa.priors.base import GenePriors
    from biojepa.priors.network import PriorNetwork

    from .conftest import N_GENES, TARGETS, _effects

    genes = [f"G{i}" for i in range(N_GENES)] + ["NEWGENE"]
    edges = np.zeros((len(genes), len(genes)))
    for i, target in enumerate(TARGETS):
        edges[i, :N_GENES] = -np.sign(_effects()[target])
    network = PriorNetwork("toy_edges", genes, sp.csr_matrix(edges))
    return GenePriors(priors.name, priors.genes, priors.features, network)


def test_known_edges_that_explain_the_responses_are_weighed_and_saved(
    screen, network_priors, tiny_config, tmp_path
):
    labels = screen.obs["perturbation"].to_numpy()
    train = np.isin(labels, ["G0", "G1", "G2", "G4", "G5", "G6"])
    model = WorldModel(tiny_config(), priors=network_priors).fit(screen, train, labels == "G3", out=tmp_path)
    last = model.history[-1]
    weight = last["novel_network_weight"]  # G7 trains nowhere: a novel target
    assert weight > 0 and weight == pytest.approx(model.module.effect.novel_network_weight.item())
    assert last["network_weight"] == pytest.approx(model.module.effect.network_weight.item())
    controls = screen[screen.obs["perturbation"] == "control"]
    conditions = [Condition("G7", "ctx"), Condition("G0", "ctx")]
    predicted = model.predict_deltas(conditions, controls)
    loaded = WorldModel.load(tmp_path, priors=network_priors)
    np.testing.assert_allclose(loaded.predict_deltas(conditions, controls), predicted, rtol=1e-5, atol=1e-6)
    model.module.effect.novel_network_weight.fill_(0.0)
    without = model.predict_deltas(conditions, controls)
    np.testing.assert_allclose(without[1], predicted[1])  # G0 is measured: its own Δ, no edges added
    edges, _ = network_priors.network.responses(["G7"], model.genes)
    np.testing.assert_allclose(predicted[0] - without[0], -weight * edges[0], rtol=1e-4, atol=1e-5)
