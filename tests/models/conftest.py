"""A tiny prepared CRISPR-KO screen and matching toy gene priors for the world-model tests."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biojepa.data.schema import CONTROL, UNS_KEY
from biojepa.priors.base import GenePriors
from biojepa.train.config import TrainConfig, default_config

N_GENES = 40
TARGETS = [f"G{i}" for i in range(8)]


def _effects() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    programs = rng.normal(0.0, 1.2, size=(2, N_GENES)) * (rng.random((2, N_GENES)) < 0.4)
    # Targets 0-3 drive program 0, targets 4-7 program 1: priors that say so carry the effect.
    return {t: programs[i // 4] * (1.0 + 0.1 * i) for i, t in enumerate(TARGETS)}


@pytest.fixture(scope="session")
def screen() -> ad.AnnData:
    """Prepared (log-normalised) screen: 8 targets × 50 cells + 200 controls, one context, two batches."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 3.0, N_GENES)
    effects = _effects()
    blocks, labels = [], []
    for label in [CONTROL, *TARGETS]:
        n = 200 if label == CONTROL else 50
        shift = 0.0 if label == CONTROL else effects[label]
        blocks.append(np.clip(rng.normal(base + shift, 0.4, size=(n, N_GENES)), 0.0, None))
        labels += [label] * n
    obs = pd.DataFrame(
        {
            "perturbation": labels,
            "perturbation_type": ["control" if lab == CONTROL else "crispr_ko" for lab in labels],
            "dose": 0.0,
            "time": np.nan,
            "context": "ctx",
            "batch": [f"b{i % 2}" for i in range(len(labels))],
            "log_library_size": rng.normal(8.0, 0.3, len(labels)),
        }
    )
    obs.index = [f"c{i}" for i in range(len(obs))]
    adata = ad.AnnData(np.vstack(blocks).astype(np.float32), obs=obs)
    adata.var_names = [f"G{i}" for i in range(N_GENES)]
    adata.uns[UNS_KEY] = {"log_normalised": True}
    return adata


@pytest.fixture(scope="session")
def priors() -> GenePriors:
    """Toy priors: a program-membership indicator (plus noise) for each target and one extra gene."""
    rng = np.random.default_rng(1)
    genes = [*TARGETS, "NEWGENE"]
    features = np.stack([np.r_[float(i < 4), float(i >= 4), rng.normal(0, 0.05, 6)] for i in range(9)])
    return GenePriors("toy", genes, features.astype(np.float32))


def small_config() -> TrainConfig:
    """The fast config with small layers and few steps: a world model that fits in seconds."""
    config = default_config("fast")
    config.model.update(
        latent_dim=16, encoder_hidden=32, action_dim=16, predictor_hidden=32, decoder_hidden=32
    )
    config.pretrain.epochs = 1
    config.decoder.epochs = 1
    config.dynamics.epochs = 2
    config.dynamics.steps_per_epoch = 4
    return config


@pytest.fixture(scope="session")
def tiny_config():
    """Factory of :func:`small_config` (a fresh config per call, free to modify)."""
    return small_config
