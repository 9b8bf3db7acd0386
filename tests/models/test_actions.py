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
