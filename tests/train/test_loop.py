import itertools
import json
from dataclasses import astuple

import numpy as np
import pytest
import torch

from biojepa.data.schema import Condition
from biojepa.errors import CheckpointError, DataError
from biojepa.models.actions import ActionVocabulary
from biojepa.models.module import BioJepaModule, ModelConfig
from biojepa.train.config import TrainConfig
from biojepa.train.data import CellTable
from biojepa.train.loop import (
    FitData,
    Trainer,
    clipped_scale,
    fit_retrieval,
    gain_and_edge_weight,
    pearson_rows,
)


def _table(n: int = 512, genes: int = 30) -> CellTable:
    g = torch.Generator().manual_seed(0)
    factors = torch.randn(n, 4, generator=g) @ torch.randn(4, genes, generator=g)
    x = (factors + 0.3 * torch.randn(n, genes, generator=g)).clamp_min(0)
    index = np.where(np.arange(n) < n // 2, -1, 0)
    return CellTable(
        x,
        torch.ones(n, genes),
        torch.full((n,), 8.0),
        [Condition("A", "c")],
        index,
        np.full(n, "c"),
        np.full(n, "b"),
    )


def _config(
    weight: float, regularizer: str = "sigreg", teacher: str = "none", epochs: int = 8
) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "prior_kinds": [],
            "pretrain": {
                "epochs": epochs,
                "batch_size": 128,
                "lr": 3e-3,
                "sigreg_weight": weight,
                "n_slices": 64,
                "regularizer": regularizer,
                "teacher": teacher,
            },
            "decoder": {"epochs": 0},
            "dynamics": {"epochs": 0},
        }
    )


def _trainer(config: TrainConfig, **kwargs) -> Trainer:
    torch.manual_seed(0)
    module = BioJepaModule(
        ModelConfig(
            n_genes=30,
            n_targets=1,
            n_actions=2,
            latent_dim=16,
            encoder_hidden=64,
            encoder_blocks=1,
            dropout=0.0,
        )
    )
    vocab = ActionVocabulary(["A"], 0)
    return Trainer(module, vocab, config, FitData(_table()), ["A", "control"], **kwargs)


def _pretrain(weight: float, regularizer: str = "sigreg", teacher: str = "none") -> list[dict]:
    return _trainer(_config(weight, regularizer, teacher)).run()


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict]]:
    return {
        "sigreg": _pretrain(0.05),
        "none": _pretrain(0.0),
        "vicreg": _pretrain(0.0, "vicreg"),
        "ema": _pretrain(0.0, "vicreg", "ema"),
    }


def test_sigreg_prevents_collapse_that_happens_without_it(runs):
    with_reg, without = runs["sigreg"][-1], runs["none"][-1]
    # without the regulariser the invariance loss shrinks every cell onto one point
    assert without["latent_std"] < 0.2 * with_reg["latent_std"]
    assert with_reg["effective_rank"] > 4
    # the regulariser is logged and falls during training
    assert runs["sigreg"][-1]["regularizer"] < runs["sigreg"][0]["regularizer"]


def test_vicreg_alternative_keeps_spread(runs):
    assert runs["vicreg"][-1]["latent_std"] > 5 * runs["none"][-1]["latent_std"]
    assert runs["vicreg"][-1]["effective_rank"] > 4


def test_ema_teacher_with_vicreg_keeps_spread(runs):
    ema, none = runs["ema"], runs["none"]
    # the student spreads its cells over many directions instead of collapsing
    assert ema[-1]["latent_std"] > 5 * none[-1]["latent_std"]
    assert ema[-1]["latent_std"] > 0.5
    assert ema[-1]["effective_rank"] > 4
    # and so does the teacher that it regresses
    assert ema[-1]["teacher_effective_rank"] > 4
    assert ema[-1]["teacher_latent_std"] > 0.3
    # the anti-collapse part of the loss falls; the momentum rises on its cosine schedule towards 1
    assert ema[-1]["regularizer"] < ema[0]["regularizer"]
    momenta = [h["ema_momentum"] for h in ema]
    assert 0.996 < momenta[0] < momenta[-1] < 1.0
    assert all(a < b for a, b in itertools.pairwise(momenta))
    assert "ema_momentum" not in runs["vicreg"][-1]


def test_ema_teacher_with_sigreg_runs():
    history = _trainer(_config(0.05, "sigreg", "ema", epochs=2)).run()
    assert all(np.isfinite(h["loss"]) and h["regularizer"] > 0 for h in history)
    assert history[-1]["effective_rank"] > 4 and "teacher_effective_rank" in history[-1]


def test_ema_teacher_resumes_exactly(tmp_path):
    unbroken = _trainer(_config(0.0, "vicreg", "ema", epochs=4))
    unbroken.run()

    def interrupt(stage, epoch, total, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(_config(0.0, "vicreg", "ema", epochs=4), checkpoint_dir=tmp_path, on_epoch=interrupt).run()
    assert json.loads((tmp_path / "last.json").read_text())["position"] == [0, 2]
    resumed = _trainer(_config(0.0, "vicreg", "ema", epochs=4), checkpoint_dir=tmp_path)
    resumed.run(resume=True)
    assert resumed.history == unbroken.history
    for name, state in (("student", "module"), ("teacher", "teacher")):
        a = getattr(unbroken, state).state_dict()
        b = getattr(resumed, state).state_dict()
        assert a.keys() == b.keys(), name
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    # the teacher is not a copy of the student: it lags behind it
    gap = [
        (t - s).abs().max().item()
        for t, s in zip(resumed.teacher.parameters(), resumed.module.encoder.parameters(), strict=True)
    ]
    assert max(gap) > 1e-4


def test_resume_needs_the_teacher_weights(tmp_path):
    def interrupt(stage, epoch, total, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(_config(0.0, "vicreg", epochs=2), checkpoint_dir=tmp_path, on_epoch=interrupt).run()
    with pytest.raises(CheckpointError, match="no EMA teacher weights"):
        _trainer(_config(0.0, "vicreg", "ema", epochs=2), checkpoint_dir=tmp_path).run(resume=True)


def test_trainer_rejects_an_unknown_teacher():
    config = _config(0.0)
    config.pretrain.teacher = "momentum"
    with pytest.raises(DataError, match="teacher = 'momentum' is not supported"):
        _trainer(config)


def test_pearson_rows():
    a = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
    np.testing.assert_allclose(pearson_rows(a, 2 * a + 1).numpy(), [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(pearson_rows(a, -a).numpy(), [-1.0, -1.0], atol=1e-6)


def test_clipped_scale_fits_least_squares_on_kept_entries_within_zero_and_one():
    x = torch.tensor([[1.0, 2.0, 100.0]])
    keep = torch.tensor([[True, True, False]])
    assert clipped_scale(x, 0.5 * x, keep) == pytest.approx(0.5)
    assert clipped_scale(x, -x, keep) == 0.0  # a latent path that points the wrong way is switched off
    assert clipped_scale(x, 3 * x, keep) == 1.0
    assert clipped_scale(torch.zeros(1, 3), x, keep) == 0.0


def test_clipped_scale_beside_another_predictor_counts_only_what_x_adds():
    g = torch.Generator().manual_seed(0)
    base, extra = torch.randn(1, 200, generator=g), torch.randn(1, 200, generator=g)
    keep = torch.ones(1, 200, dtype=torch.bool)
    # alone, x = base + extra looks useful for y = 2·base; beside base it adds nothing
    assert clipped_scale(base + extra, 2 * base, keep) > 0.5
    assert clipped_scale(base + extra, 2 * base, keep, alongside=base) == pytest.approx(0.0, abs=1e-6)
    assert clipped_scale(extra, 2 * base + 0.3 * extra, keep, alongside=base) == pytest.approx(0.3)
    # a zero companion falls back to the plain fit
    assert clipped_scale(base, 0.5 * base, keep, alongside=torch.zeros(1, 200)) == pytest.approx(0.5)


def _memory_module(
    features: torch.Tensor,
    deltas: torch.Tensor,
    network: torch.Tensor | None = None,
    labels: list[str] | None = None,
) -> BioJepaModule:
    """A module whose memory holds ``deltas`` of the conditions ``labels`` (default: each target G0, G1, …
    alone); target ``Gi`` has prior ``features[i]`` and known edges ``network[i]``."""
    names = [f"G{i}" for i in range(len(features))]
    labels = names if labels is None else labels
    table = dict(zip(names, features.numpy(), strict=True))
    edges = {} if network is None else dict(zip(names, network.numpy(), strict=True))

    def lookup(genes):
        return np.stack([table[g] for g in genes]), np.ones(len(genes), dtype=bool)

    def network_lookup(genes):
        rows = np.stack([edges[g] for g in genes])
        return rows, np.abs(rows).sum(1) > 0

    vocab = ActionVocabulary(
        names,
        prior_dim=features.shape[1],
        fingerprint_bits=8,
        prior_lookup=lookup,
        network_lookup=network_lookup if network is not None else None,
        network_width=deltas.shape[1] if network is not None else 0,
    )
    vocab.add_priors(names)
    config = ModelConfig(
        n_genes=deltas.shape[1], n_targets=len(names), n_actions=len(labels), n_memory=len(labels),
        prior_dim=features.shape[1], fingerprint_bits=8, latent_dim=4, encoder_hidden=8, action_dim=8,
        predictor_hidden=8, predictor_blocks=1, decoder_hidden=8,
    )  # fmt: skip
    module = BioJepaModule(config).eval()
    memory = vocab.encode([Condition(label, "ctx", "crispr_ko") for label in labels])
    module.set_memory(memory, deltas, torch.zeros(len(labels), 4))
    return module


def test_fit_retrieval_sharpens_when_similar_targets_respond_alike():
    g = torch.Generator().manual_seed(0)
    # three pairs of twins: same prior features and same response within a pair, unrelated across pairs
    features = torch.eye(3).repeat_interleave(2, dim=0) + 0.01 * torch.randn(6, 3, generator=g)
    deltas = torch.randn(3, 40, generator=g).repeat_interleave(2, dim=0)
    module = _memory_module(features, deltas)
    fit = fit_retrieval(module, deltas, torch.ones_like(deltas, dtype=torch.bool))
    scale, gain = fit.retrieval_scale, fit.retrieval_gain
    assert scale >= 20.0  # a sharp nearest-neighbour lookup
    assert gain == pytest.approx(1.0, abs=0.02)  # each entry retrieves its twin's response, as is
    assert module.effect.feature_scale.item() == scale
    assert module.effect.log_gain.exp().item() == pytest.approx(gain)


def test_fit_retrieval_softens_when_features_do_not_tell_responses_apart():
    g = torch.Generator().manual_seed(1)
    # every response is one shared effect plus its own noise; features are unrelated to the noise
    features = torch.randn(12, 5, generator=g)
    deltas = torch.randn(1, 40, generator=g) + 0.8 * torch.randn(12, 40, generator=g)
    module = _memory_module(features, deltas)
    scale = fit_retrieval(module, deltas, torch.ones_like(deltas, dtype=torch.bool)).retrieval_scale
    assert scale <= 1.0  # close to the plain mean of the other entries, which averages the noise out


def test_fit_retrieval_keeps_the_trained_sharpness_when_no_candidate_does_better():
    deltas = torch.randn(4, 10, generator=torch.Generator().manual_seed(2))
    module = _memory_module(torch.zeros(4, 3), deltas)  # no features: the sharpness changes nothing
    module.effect.feature_scale.data.fill_(4.2)
    scale = fit_retrieval(module, deltas, torch.ones_like(deltas, dtype=torch.bool)).retrieval_scale
    assert scale == pytest.approx(4.2)


def test_fit_retrieval_leaves_a_one_entry_memory_as_trained():
    deltas = torch.ones(1, 10)
    module = _memory_module(torch.ones(1, 3), deltas)
    fitted = fit_retrieval(module, deltas, torch.ones_like(deltas, dtype=torch.bool))
    assert astuple(fitted) == pytest.approx((10.0, 1.0, 0.0, 1.0, 0.0))


def _signed_edges(n_targets: int, n_genes: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    present = torch.rand(n_targets, n_genes, generator=g) < 0.2
    return torch.where(present, torch.randint(0, 2, (n_targets, n_genes), generator=g) * 2.0 - 1.0, 0.0)


def test_fit_retrieval_weighs_known_edges_that_explain_the_responses():
    g = torch.Generator().manual_seed(3)
    edges = _signed_edges(10, 60, seed=4)
    # a knockout moves its known targets against the edge signs, twice as far as one unit, plus noise
    deltas = -2.0 * edges + 0.1 * torch.randn(10, 60, generator=g)
    module = _memory_module(torch.randn(10, 5, generator=g), deltas, network=edges)
    weight = fit_retrieval(module, deltas, torch.ones_like(deltas, dtype=torch.bool)).network_weight
    assert weight == pytest.approx(2.0, abs=0.1)
    assert module.effect.network_weight.item() == weight


def test_fit_retrieval_gives_unrelated_or_contrary_edges_no_weight():
    g = torch.Generator().manual_seed(5)
    edges = _signed_edges(10, 60, seed=6)
    contrary = 1.0 * edges + 0.1 * torch.randn(10, 60, generator=g)  # moves with the signs after a knockout
    module = _memory_module(torch.randn(10, 5, generator=g), contrary, network=edges)
    assert fit_retrieval(module, contrary, torch.ones_like(contrary, dtype=torch.bool)).network_weight == 0.0
    unrelated = torch.randn(10, 60, generator=g)
    module = _memory_module(torch.randn(10, 5, generator=g), unrelated, network=edges)
    assert (
        fit_retrieval(module, unrelated, torch.ones_like(unrelated, dtype=torch.bool)).network_weight < 0.15
    )


def test_gain_and_edge_weight_shrinks_edges_that_only_a_strong_entry_follows():
    g = torch.Generator().manual_seed(7)
    retrieved = torch.randn(4, 50, generator=g)
    edges = torch.zeros(4, 50)
    edges[:, :5] = 1.0
    rest = 2.0 * retrieved + 3.0 * edges
    gain, weight = gain_and_edge_weight(retrieved, rest, edges)
    assert gain == pytest.approx(2.0, abs=0.2) and weight == pytest.approx(3.0, abs=0.3)
    # one entry moves its edges 20 times as far as seven others move against them: least squares follows
    # the strong entry (a weight of 3.25), the per-entry scores drop the edges
    many = torch.randn(8, 50, generator=g)
    edges = torch.zeros(8, 50)
    edges[:, :5] = 1.0
    contrary = 2.0 * many - 2.0 * edges
    contrary[0] = 2.0 * many[0] + 40.0 * edges[0]
    assert gain_and_edge_weight(many, contrary, edges)[1] == 0.0
    edges = edges[:4]
    assert gain_and_edge_weight(torch.zeros(4, 50), 3.0 * edges, edges) == (None, pytest.approx(3.0))
    assert gain_and_edge_weight(retrieved, rest, torch.zeros(4, 50))[1] == 0.0


def test_novel_targets_get_the_gain_and_edge_weight_of_a_memory_without_their_target():
    g = torch.Generator().manual_seed(9)
    edges = _signed_edges(12, 80, seed=10)
    singles = -edges + 0.05 * torch.randn(12, 80, generator=g)
    # every target trains alone and in one pair, so leaving out only an entry itself still finds its target
    pairs = [(i, (i + 1) % 12) for i in range(12)]
    labels = [f"G{i}" for i in range(12)] + [f"G{i}+G{j}" if i < j else f"G{j}+G{i}" for i, j in pairs]
    deltas = torch.cat([singles, torch.stack([singles[i] + singles[j] for i, j in pairs])])
    module = _memory_module(torch.randn(12, 6, generator=g), deltas, network=edges, labels=labels)
    fit = fit_retrieval(module, deltas, torch.ones_like(deltas, dtype=torch.bool))
    # with its partner's pair in reach the retrieval explains much; with neither, only the edges do
    assert fit.novel_network_weight == pytest.approx(1.0, abs=0.15)
    assert fit.novel_network_weight > fit.network_weight
    assert fit.novel_retrieval_gain < fit.retrieval_gain
    effect = module.effect
    assert effect.novel_network_weight.item() == pytest.approx(fit.novel_network_weight)
    assert effect.novel_gain_ratio.item() == pytest.approx(fit.novel_retrieval_gain / fit.retrieval_gain)


def test_entries_sharing_targets_and_novel_tokens():
    deltas = torch.zeros(3, 5)
    module = _memory_module(torch.eye(3), deltas, labels=["G0", "G1", "G0+G2"])
    vocab_actions = module.memory_actions
    assert module.entries_sharing_targets(vocab_actions).tolist() == [
        [True, False, True],
        [False, True, False],
        [True, False, True],
    ]
    assert not module.novel_tokens(vocab_actions).any()
