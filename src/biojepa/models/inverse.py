"""Inverse-dynamics head (z_pre, z_post) → action: class logits over training actions and an embedding."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class InverseDynamics(nn.Module):
    """Infer which intervention moved ``z_pre`` to ``z_post`` (ACT-JEPA); used for MoA and plan proposals."""

    def __init__(self, latent_dim: int, action_dim: int, n_actions: int, hidden_dim: int = 256) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2 * latent_dim, hidden_dim), nn.GELU(), nn.LayerNorm(hidden_dim))
        self.logits = nn.Linear(hidden_dim, n_actions)
        self.embedding = nn.Linear(hidden_dim, action_dim)

    def forward(self, z_pre: Tensor, z_post: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(logits over the training action vocabulary, predicted action embedding)``."""
        h = self.body(torch.cat([z_pre, z_post - z_pre], dim=-1))
        return self.logits(h), self.embedding(h)
