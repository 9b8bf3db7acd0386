import torch

from biojepa.models.regularizers import (
    effective_rank,
    sigreg,
    vicreg,
    vicreg_covariance,
    vicreg_variance,
)


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


def test_vicreg_variance_and_covariance_terms():
    g = torch.Generator().manual_seed(0)
    spread = 2.0 * torch.randn(4096, 8, generator=g)
    assert vicreg_variance(spread).item() == 0.0  # every dimension's std is above the hinge at 1
    assert abs(vicreg_variance(torch.zeros(64, 8)).item() - (1 - 1e-2)) < 1e-6
    assert vicreg_covariance(spread).item() < 0.1
    shared = torch.randn(4096, 1, generator=g).expand(4096, 8)
    # eight copies of one unit-variance direction: 8·7 off-diagonal covariances of 1, divided by 8
    assert abs(vicreg_covariance(shared).item() - 7.0) < 0.5
    a, b = torch.randn(64, 8, generator=g), torch.randn(64, 8, generator=g)
    parts = 25 * torch.nn.functional.mse_loss(a, b) + 12.5 * (vicreg_variance(a) + vicreg_variance(b))
    expected = parts + vicreg_covariance(a) + vicreg_covariance(b)
    torch.testing.assert_close(vicreg(a, b), expected)
