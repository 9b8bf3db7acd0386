import torch

from biojepa.models.decoder import EffectMemory, GaussianDecoder, gaussian_nll


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


def test_effect_memory_starts_as_soft_nearest_neighbour_and_leaves_one_out():
    memory = EffectMemory(n_memory=3, n_genes=2, latent_dim=2)
    memory.values.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]))
    keys = torch.eye(3)
    query, context = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), torch.ones(2, 2)
    mix, used_exact, gain = memory(query, context, keys)
    assert not used_exact.any()
    # similar features retrieve their own stored response from the start
    assert torch.allclose(mix, memory.values[[0, 2]], atol=1e-3)
    assert torch.allclose(gain, torch.ones(2, 1))
    # leave-one-out: without its own entry, query 0 sees two equally dissimilar ones
    mix, _, _ = memory(query, context, keys, exclude=torch.tensor([0, -1]))
    assert torch.allclose(mix[0], torch.tensor([1.0, 1.5]), atol=1e-4)
    with torch.no_grad():
        memory.feature_scale.fill_(0.0)
    mix, _, _ = memory(query, context, keys)
    # with no feature scale the retrieval is the plain mean of the stored responses
    assert torch.allclose(mix, torch.tensor([[1.0, 1.0]] * 2))


def test_effect_memory_returns_an_exact_match_unless_it_is_excluded():
    memory = EffectMemory(n_memory=2, n_genes=1, latent_dim=1)
    memory.values.copy_(torch.tensor([[1.0], [3.0]]))
    query, context, keys = torch.ones(2, 2), torch.ones(2, 1), torch.ones(2, 2)
    exclude, exact = torch.tensor([-1, 1]), torch.tensor([1, 1])
    mix, used_exact, _ = memory(query, context, keys, exclude=exclude, exact=exact)
    assert mix[:, 0].tolist() == [3.0, 1.0]
    assert used_exact.tolist() == [True, False]
