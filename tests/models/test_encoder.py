import torch

from biojepa.models.encoder import StateEncoder


def test_shapes_and_statistics():
    enc = StateEncoder(n_genes=20, latent_dim=8, hidden_dim=32, n_blocks=1).eval()
    x = torch.rand(5, 20) * 3
    lib = torch.full((5,), 7.0)
    enc.set_statistics(x, lib)
    assert torch.allclose(enc.gene_mean, x.mean(0))
    assert enc(x, torch.ones(5, 20), lib).shape == (5, 8)


def test_masked_genes_are_ignored_not_read_as_zero():
    torch.manual_seed(0)
    enc = StateEncoder(n_genes=10, latent_dim=4, hidden_dim=16, n_blocks=1).eval()
    x = torch.rand(3, 10) + 1.0
    lib = torch.zeros(3)
    mask = torch.ones(3, 10)
    mask[:, 0] = 0
    changed = x.clone()
    changed[:, 0] = 100.0
    # a masked gene's value has no influence ...
    assert torch.allclose(enc(x, mask, lib), enc(changed, mask, lib))
    # ... and "not measured" differs from "measured as zero"
    zeroed = x.clone()
    zeroed[:, 0] = 0.0
    assert not torch.allclose(enc(zeroed, torch.ones(3, 10), lib), enc(x, mask, lib))


def test_library_size_is_an_input():
    torch.manual_seed(0)
    enc = StateEncoder(n_genes=6, latent_dim=4, hidden_dim=8, n_blocks=1).eval()
    x, mask = torch.rand(2, 6), torch.ones(2, 6)
    assert not torch.allclose(enc(x, mask, torch.zeros(2)), enc(x, mask, torch.full((2,), 3.0)))
