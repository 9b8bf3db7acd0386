import json

import anndata as ad
import numpy as np
import pytest
import torch
from scipy.stats import norm

from biojepa.data.preprocess import prepare
from biojepa.data.schema import Condition
from biojepa.data.splits import make_split
from biojepa.models.calibration import (
    LEVELS,
    censored_location,
    covered_share,
    fit_variance_scale,
    interval_coverage,
    pit_ranges,
)
from biojepa.models.world_model import WorldModel
from biojepa.sim import simulate, simulated_priors, simulator_of


def _censored_draws(mean: np.ndarray, variance: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` draws per row of ``max(0, L)``, ``L ~ N(censored_location(mean, variance), variance)``."""
    location = censored_location(torch.as_tensor(mean), torch.as_tensor(variance)).numpy()
    noise = np.random.default_rng(seed).standard_normal((n, *mean.shape))
    return np.clip(location + noise * np.sqrt(variance), 0, None).reshape(-1, mean.shape[-1])


def test_censored_location_keeps_the_mean():
    mean = torch.tensor([0.05, 0.5, 1.0, 3.0, 50.0], dtype=torch.float64)
    sd = torch.tensor([2.0, 1.0, 3.0, 0.5, 1.0], dtype=torch.float64)
    mu = censored_location(mean, sd.square()).numpy()
    t = mu / sd.numpy()
    censored_mean = sd.numpy() * (t * norm.cdf(t) + norm.pdf(t))
    np.testing.assert_allclose(censored_mean, mean.numpy(), rtol=1e-4)
    assert mu[0] < 0 < mu[3]  # a small mean with a wide spread is mostly zeros
    assert censored_location(torch.tensor([-0.3]), torch.tensor([1.0])).item() == pytest.approx(-12.0)


def test_a_zero_counts_by_the_share_of_its_pit_range():
    samples = torch.tensor([[-1.0], [0.0], [0.0], [1.0], [2.0]])  # F(0) = 0.6
    low, high = pit_ranges(samples.clamp_min(0), torch.tensor([[0.0], [1.5]]))
    assert low.flatten().tolist() == pytest.approx([0.0, 0.8])
    assert high.flatten().tolist() == pytest.approx([0.6, 0.8])
    levels = torch.tensor([0.5, 0.9])
    split = covered_share(low, high, levels)[:, :, 0]
    np.testing.assert_allclose(split[:, 0], [(0.6 - 0.25) / 0.6, (0.6 - 0.05) / 0.6], rtol=1e-6)
    assert split[:, 1].tolist() == [0.0, 1.0]  # PIT 0.8 lies outside [0.25, 0.75], inside [0.05, 0.95]
    assert covered_share(low, high, levels, split_zeros=False)[:, 0, 0].tolist() == [1.0, 1.0]


def test_the_true_zero_inflated_distribution_covers_every_level():
    """Values drawn from the predicted censored distribution (half zeros): coverage ≈ level at every level,
    while counting every zero as covered over-covers."""
    rng = np.random.default_rng(0)
    mean = np.tile(rng.uniform(0.2, 2.0, 30), (200, 1))
    variance = np.tile(rng.uniform(0.5, 4.0, 30), (200, 1))
    observed = _censored_draws(mean[:1], variance[:1], 3000, seed=1)
    assert 0.2 < (observed == 0).mean() < 0.6
    predicted = ad.AnnData(mean.astype(np.float32), layers={"variance": variance.astype(np.float32)})
    truth = ad.AnnData(observed.astype(np.float32))
    coverage = interval_coverage(predicted, truth, LEVELS)
    np.testing.assert_allclose(list(coverage.values()), LEVELS, atol=0.03)
    closed = interval_coverage(predicted, truth, (0.2, 0.5), split_zeros=False)
    assert closed[0.2] > 0.2 + 0.1 and closed[0.5] > 0.5 + 0.1


class _FixedPredictor:
    """Predicts the same censored Gaussian for every cell: a stand-in for a fitted model."""

    def __init__(self, mean: np.ndarray, variance: np.ndarray) -> None:
        self.genes = [f"g{i}" for i in range(len(mean))]
        self.mean, self.variance = mean, variance
        self.seen: list[str] = []

    def predict(self, cells: ad.AnnData, actions: list[Condition]) -> ad.AnnData:
        self.seen += [c.perturbation for c in actions]
        n = cells.n_obs
        return ad.AnnData(
            np.tile(self.mean, (n, 1)).astype(np.float32),
            layers={"variance": np.tile(self.variance, (n, 1)).astype(np.float32)},
        )


def test_fit_recovers_a_known_variance_scale(prepared_cells):
    """Observed cells spread 4× the predicted variance: the fitted scale is about 4 for every gene."""
    rng = np.random.default_rng(3)
    mean, variance = rng.uniform(0.3, 3.0, 20), rng.uniform(0.2, 1.0, 20)
    perturbed = _censored_draws(mean[None], 4 * variance[None], 400, seed=4)
    controls = np.zeros((300, 20))
    labels = ["P1"] * 200 + ["P2"] * 200 + ["control"] * 300
    model = _FixedPredictor(mean, variance)
    scale = fit_variance_scale(model, prepared_cells(np.vstack([perturbed, controls]), labels))
    assert sorted(model.seen) == ["P1", "P2"]
    log2 = np.log2(scale.numpy())
    assert np.median(log2) == pytest.approx(2.0, abs=0.3)
    assert (np.abs(log2 - 2.0) <= 0.75).mean() >= 0.9
    assert fit_variance_scale(model, prepared_cells(controls, ["control"] * 300)) is None


def _config(tiny_config):
    config = tiny_config()
    config.decoder.epochs = 10
    config.decoder.batch_size = 64
    config.decoder.lr = 5e-3
    return config


@pytest.fixture(scope="module")
def screen():
    adata = prepare(simulate("tiny", 0))
    split = make_split(adata, "unseen_perturbation", 0)
    return adata, split, split.cell_masks(adata), simulated_priors(simulator_of(adata))


@pytest.fixture(scope="module")
def fitted(screen, tmp_path_factory, tiny_config):
    adata, _, masks, priors = screen
    out = tmp_path_factory.mktemp("calibrated")
    model = WorldModel(_config(tiny_config), priors=priors)
    return model.fit(adata, masks["train"], masks["val"], out=out), out


def _test_coverage(model: WorldModel, screen, scale: torch.Tensor | None) -> np.ndarray:
    """Coverage at every level on each test condition, with ``scale`` as the model's variance scale."""
    adata, split, masks, _ = screen
    controls = adata[masks["control"]]
    model.variance_scale, kept = scale, model.variance_scale
    rows = []
    for perturbation, context in split.test:
        cells = adata[(adata.obs["perturbation"] == perturbation) & (adata.obs["context"] == context)]
        condition = Condition(perturbation, context, str(cells.obs["perturbation_type"].iloc[0]))
        predicted = model.predict(controls[controls.obs["context"] == context], [condition])
        rows.append(list(interval_coverage(predicted, cells, LEVELS).values()))
    model.variance_scale = kept
    return np.asarray(rows)


def test_calibrated_intervals_cover_held_out_cells_closer_to_nominal(fitted, screen):
    model, _ = fitted
    assert model.variance_scale is not None and model.variance_scale.shape == (len(model.genes),)
    gap = {
        name: np.abs(np.median(_test_coverage(model, screen, scale), axis=0) - LEVELS)
        for name, scale in (("uncalibrated", None), ("calibrated", model.variance_scale))
    }
    assert gap["calibrated"].mean() < 0.08
    assert gap["calibrated"].mean() < gap["uncalibrated"].mean() - 0.02
    assert gap["calibrated"][LEVELS.index(0.5)] < gap["uncalibrated"][LEVELS.index(0.5)]


def test_calibration_survives_save_and_load(fitted, screen):
    model, out = fitted
    assert json.loads((out / "model.json").read_text())["calibrated"] is True
    adata, _, masks, priors = screen
    loaded = WorldModel.load(out, priors=priors)
    assert torch.equal(loaded.variance_scale, model.variance_scale)
    controls = adata[masks["control"]][:20]
    expected, got = model.predict(controls, "G0017"), loaded.predict(controls, "G0017")
    assert got.uns["biojepa"]["calibrated"] is True
    np.testing.assert_allclose(got.layers["variance"], expected.layers["variance"], rtol=1e-5)


def test_calibration_never_reads_test_cells(fitted, screen, tiny_config):
    """Refit with every test cell's expression replaced: the same model and the same variance scale."""
    model, _ = fitted
    adata, _, masks, priors = screen
    altered = adata.copy()
    x = np.asarray(altered.X.toarray() if hasattr(altered.X, "toarray") else altered.X).copy()
    x[masks["test"]] = np.nan
    altered.X = x
    refit = WorldModel(_config(tiny_config), priors=priors).fit(altered, masks["train"], masks["val"])
    assert torch.equal(refit.variance_scale, model.variance_scale)


def test_a_model_without_validation_cells_is_uncalibrated(screen, tmp_path, tiny_config):
    adata, _, masks, priors = screen
    config = _config(tiny_config)
    config.decoder.epochs = 1
    model = WorldModel(config, priors=priors).fit(adata, masks["train"], None, out=tmp_path)
    assert model.variance_scale is None
    assert json.loads((tmp_path / "model.json").read_text())["calibrated"] is False
    loaded = WorldModel.load(tmp_path, priors=priors)
    assert loaded.variance_scale is None
    assert loaded.predict(adata[masks["control"]][:5], "G0017").uns["biojepa"]["calibrated"] is False
