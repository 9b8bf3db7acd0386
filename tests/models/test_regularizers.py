import torch

from biojepa.models.regularizers import effective_rank, sigreg, vicreg


def test_sigreg_near_one_for_gaussian_and_large_when_collapsed():
    g = torch.Generator().manual_seed(0)
    gaussian = torch.randn(512, 32, generator=g)
    collapsed = torch.zeros(512, 32) + 0.01 * torch.randn(512, 32, generator=g)
    low_rank = torch.randn(512, 1, generator=g) @ torch.randn(1, 32, generator=g) / 32**0.5
    value = sigreg(gaussian, generator=torch.Generator().manual_seed(1)).item()
    assert 0.3 < value < 3.0
    assert sigreg(collapsed, generator=torch.Generator().manual_seed(1)).item() > 50 * value
    assert sigreg(low_rank, generator=torch.Generator().manual_seed(1)).item() > 10 * value


def test_sigreg_has_gradients_and_rejects_bad_shapes():
    z = torch.randn(64, 8, requires_grad=True)
    sigreg(z, n_slices=16).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    try:
        sigreg(torch.randn(1, 8))
    except ValueError as err:
        assert "at least 2 cells" in str(err)
    else:
        raise AssertionError("one-cell input must be rejected")


def test_effective_rank_counts_directions():
    g = torch.Generator().manual_seed(0)
    assert effective_rank(torch.randn(1000, 16, generator=g)) > 14
    line = torch.randn(1000, 1, generator=g) * torch.ones(1, 16)
    assert effective_rank(line) < 1.1
    assert effective_rank(torch.ones(10, 4)) == 0.0


def test_vicreg_penalises_collapse_over_cells():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(256, 16, generator=g)
    collapsed = torch.zeros(256, 16)
    assert vicreg(collapsed, collapsed) > vicreg(spread, spread) + 20
