"""Benchmark entries: ``biojepa`` (the world model) and ``biojepa_blind`` (its perturbation-blind ablation).

The ablation trains the same way, but every intervention is replaced by one constant action token, so
it can only learn an average response: it must score clearly worse on discrimination.
"""

from __future__ import annotations

import copy
from typing import Any

import anndata as ad
import numpy as np

from biojepa.data.schema import Condition
from biojepa.eval.methods import Method, register_method
from biojepa.models.world_model import WorldModel
from biojepa.train.config import TrainConfig, default_config

# what the training run fits after its epochs, read from the last record of the epoch log
FITTED_KEYS = (
    "memory_shrinkage",
    "retrieval_scale",
    "retrieval_gain",
    "network_weight",
    "novel_retrieval_gain",
    "novel_network_weight",
    "latent_gate",
    "combination_gate",
)


class _WorldModelMethod(Method):
    needs_priors = True
    seeded = True
    blind = False

    def __init__(self, config: TrainConfig | None = None, seed: int = 0) -> None:
        self.config = copy.deepcopy(config or default_config())
        self.config.seed = seed
        self.config.model = {**self.config.model, "blind": self.blind}
        self.model: WorldModel | None = None
        self.n_fallback = 0

    def fit(self, train: ad.AnnData, val: ad.AnnData | None, priors: Any | None) -> None:
        data = train if val is None else ad.concat([train, val], join="inner", merge="same", uns_merge="same")
        n_train = train.n_obs
        is_val = np.arange(data.n_obs) >= n_train
        control = (data.obs["perturbation"].astype(str) == "control").to_numpy()
        self.model = WorldModel(self.config, priors=priors)
        self.model.fit(data, train_mask=~is_val & ~control, val_mask=is_val if val is not None else None)

    def fitted_values(self) -> dict[str, Any]:
        if self.model is None or not self.model.history:
            return {}
        last = self.model.history[-1]
        return {key: last[key] for key in FITTED_KEYS if key in last}

    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name}: call fit() before predict_deltas()")
        vocab = self.model.vocab
        assert vocab is not None
        self.n_fallback = sum(any(vocab.covered(t) is None for t in c.targets) for c in conditions)
        return self.model.predict_deltas(conditions, controls, strict=False)


@register_method("biojepa")
class BioJepa(_WorldModelMethod):
    """The action-conditioned world model (default config)."""


@register_method("biojepa_blind")
class BioJepaBlind(_WorldModelMethod):
    """Perturbation-blind ablation: a constant action token for every intervention."""

    uses_perturbation = False
    blind = True
