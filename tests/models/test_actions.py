import math

import numpy as np
import pytest
import torch

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.models.actions import (
    DOSE_TIME_FEATURES,
    ActionEncoder,
    ActionVocabulary,
    dose_time_features,
    morgan_fingerprint,
)


def _vocab(priors):
    vocab = ActionVocabulary(["G0", "G1", "G5"], priors.dim, fingerprint_bits=64, prior_lookup=priors.lookup)
    vocab.add_priors(vocab.targets)
    return vocab


def test_encode_sets_of_any_size(priors):
    vocab = _vocab(priors)
    batch = vocab.encode(
        [Condition("G0", "c"), Condition("G1+G5", "c"), Condition("control", "c", "control")]
    )
    assert batch.target_ids.shape == (3, 2)
    assert batch.target_ids[1].tolist() == [2, 3]
    assert batch.token_mask.tolist() == [[True, False], [True, True], [False, False]]
    assert batch.has_prior[0, 0] == 1.0


def test_unseen_target_uses_priors_and_unknown_target_is_a_clear_error(priors):
    vocab = _vocab(priors)
    assert vocab.check_known([Condition("NEWGENE", "c")]) == {"NEWGENE": "prior"}
    batch = vocab.encode([Condition("NEWGENE", "c")])
    assert batch.target_ids[0, 0] == 0 and batch.has_prior[0, 0] == 1.0
    with pytest.raises(DataError, match=r"NOTAGENE.*seen in training: G0, G1, G5"):
        vocab.encode([Condition("NOTAGENE", "c")])


def test_compounds_get_morgan_fingerprints_and_dose_features():
    aspirin = "CC(=O)OC1=CC=CC=C1C(=O)O"
    fp = morgan_fingerprint(aspirin, 64)
    assert fp.shape == (64,) and 0 < fp.sum() < 64
    with pytest.raises(DataError, match="SMILES"):
        morgan_fingerprint("not a molecule(", 64)
    vocab = ActionVocabulary([], 0, fingerprint_bits=64, smiles={"aspirin": aspirin})
    batch = vocab.encode([Condition("aspirin", "c", "compound", 100.0, 24.0)])
    assert batch.has_fingerprint[0, 0] == 1.0
    assert torch.allclose(batch.dose_time[0, 0, :2], torch.tensor([math.log1p(100.0), math.log1p(24.0)]))
    features = dose_time_features(0.0, float("nan"))
    assert features.shape == (DOSE_TIME_FEATURES,) and features[2] == 0.0


def test_encoder_distinguishes_actions_and_blind_does_not(priors):
    vocab = _vocab(priors)
    batch = vocab.encode([Condition("G0", "c"), Condition("G1", "c"), Condition("NEWGENE", "c")])
    torch.manual_seed(0)
    enc = ActionEncoder(vocab.n_targets, priors.dim, 64, dim=16).eval()
    out = enc(batch)
    assert out.shape == (3, 16)
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[0], out[2])
    blind = ActionEncoder(vocab.n_targets, priors.dim, 64, dim=16, blind=True).eval()
    out = blind(batch)
    assert torch.allclose(out[0], out[1]) and torch.allclose(out[1], out[2])


def test_vocabulary_state_round_trip(priors):
    vocab = _vocab(priors)
    meta, tensors = vocab.state()
    again = ActionVocabulary.from_state(meta, tensors)
    assert again.targets == vocab.targets
    np.testing.assert_array_equal(again.prior_table["G5"], vocab.prior_table["G5"])


def _network_vocab(priors):
    edges = {"G0": np.array([1.0, 0.0, -1.0], np.float32), "NEWGENE": np.array([0.0, 1.0, 1.0], np.float32)}

    def network_lookup(names):
        rows = np.stack([edges.get(n, np.zeros(3, np.float32)) for n in names])
        return rows, np.abs(rows).sum(1) > 0

    vocab = ActionVocabulary(
        ["G0", "G1"],
        priors.dim,
        64,
        prior_lookup=priors.lookup,
        network_lookup=network_lookup,
        network_width=3,
    )
    vocab.add_priors(vocab.targets)
    return vocab


def test_tokens_carry_their_targets_edges_turned_by_the_mode(priors):
    vocab = _network_vocab(priors)
    conditions = [
        Condition("G0", "c", "crispri"),
        Condition("G0+NEWGENE", "c", "crispra"),
        Condition("G1", "c", "crispr_ko"),
        Condition("control", "c", "control"),
    ]
    response = vocab.encode(conditions).network_response()
    assert response.shape == (4, 2, 3)
    assert response[0, 0].tolist() == [-1.0, 0.0, 1.0]  # a knockdown moves regulated genes against the signs
    assert response[1].sum(0).tolist() == [1.0, 1.0, 0.0]
    assert not response[2:].any()  # no known edges; the control has no tokens
    assert sorted(vocab.network_table) == ["G0", "NEWGENE"]


def test_vocabulary_state_keeps_the_network_table(priors):
    vocab = _network_vocab(priors)
    vocab.add_priors(["NEWGENE"])
    meta, tensors = vocab.state()
    again = ActionVocabulary.from_state(meta, tensors)
    assert again.network_width == 3 and sorted(again.network_table) == ["G0", "NEWGENE"]
    np.testing.assert_array_equal(again.network_table["NEWGENE"], vocab.network_table["NEWGENE"])
    without = ActionVocabulary.from_state({k: v for k, v in meta.items() if "network" not in k}, tensors)
    assert without.network_width == 0  # a model saved before the prior network
    assert without.encode([Condition("G0", "c")]).network.shape == (1, 1, 0)
