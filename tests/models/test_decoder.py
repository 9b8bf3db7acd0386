import torch

from biojepa.models.decoder import EffectHead, GaussianDecoder, gaussian_nll


def test_decoder_outputs_positive_variance():
    dec = GaussianDecoder(latent_dim=4, n_genes=7, hidden_dim=8)
    mean, var = dec(torch.randn(3, 4), torch.zeros(3))
    assert mean.shape == var.shape == (3, 7)
    assert (var > 0).all()


def test_nll_ignores_unmeasured_genes():
    target = torch.zeros(2, 3)
    mean = torch.zeros(2, 3)
    mean[:, 2] = 50.0
    var = torch.ones(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0]] * 2)
    assert torch.isclose(gaussian_nll(mean, target, var, mask), torch.tensor(0.0))
    assert gaussian_nll(mean, target, var, torch.ones(2, 3)) > 100


def test_effect_head_starts_at_zero():
    head = EffectHead(action_dim=4, latent_dim=3, n_genes=5, hidden_dim=8)
    assert torch.equal(head(torch.randn(2, 4), torch.randn(2, 3)), torch.zeros(2, 5))
