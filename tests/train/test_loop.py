import numpy as np
import pytest
import torch

from biojepa.data.schema import Condition
from biojepa.models.actions import ActionVocabulary
from biojepa.models.module import BioJepaModule, ModelConfig
from biojepa.train.config import TrainConfig
from biojepa.train.data import CellTable
from biojepa.train.loop import FitData, Trainer, pearson_rows


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


def _pretrain(weight: float, regularizer: str = "sigreg") -> list[dict]:
    torch.manual_seed(0)
    config = TrainConfig.from_dict(
        {
            "prior_kinds": [],
            "pretrain": {
                "epochs": 8,
                "batch_size": 128,
                "lr": 3e-3,
                "sigreg_weight": weight,
                "n_slices": 64,
                "regularizer": regularizer,
            },
            "decoder": {"epochs": 0},
            "dynamics": {"epochs": 0},
        }
    )
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
    return Trainer(module, vocab, config, FitData(_table()), ["A", "control"]).run()


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict]]:
    return {"sigreg": _pretrain(0.05), "none": _pretrain(0.0), "vicreg": _pretrain(0.0, "vicreg")}


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


def test_pearson_rows():
    a = torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
    np.testing.assert_allclose(pearson_rows(a, 2 * a + 1).numpy(), [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(pearson_rows(a, -a).numpy(), [-1.0, -1.0], atol=1e-6)
