"""Decoders back to gene space: a Gaussian decoder of cell latents and a residual pseudobulk effect head."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GaussianDecoder(nn.Module):
    """Latent (+ log library size) → per-gene mean and variance of log-normalised expression."""

    def __init__(self, latent_dim: int, n_genes: int, hidden_dim: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(latent_dim + 1, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
        )
        self.mean = nn.Linear(hidden_dim, n_genes)
        self.log_var = nn.Linear(hidden_dim, n_genes)

    def forward(self, z: Tensor, log_library_std: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(mean, variance)``; ``log_library_std`` is the encoder-standardised log library size."""
        h = self.body(torch.cat([z, log_library_std.unsqueeze(-1).to(z.dtype)], dim=-1))
        return self.mean(h), self.log_var(h).clamp(-8.0, 4.0).exp()


def gaussian_nll(mean: Tensor, target: Tensor, variance: Tensor, gene_mask: Tensor) -> Tensor:
    """Mean Gaussian negative log-likelihood over measured genes only."""
    nll = 0.5 * (variance.log() + (target - mean).square() / variance)
    mask = gene_mask.to(nll.dtype)
    return (nll * mask).sum() / mask.sum().clamp_min(1.0)


class EffectHead(nn.Module):
    """Residual head: (action, mean pre-state latent) → gene-space Δ added to the decoded latent effect.

    It keeps per-perturbation signal that a compact latent would smooth away. Zero-initialised, so the
    untrained model's prediction is the decoded latent prediction.
    """

    def __init__(self, action_dim: int, latent_dim: int, n_genes: int, hidden_dim: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(action_dim + latent_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, n_genes)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, action: Tensor, z_pre_mean: Tensor) -> Tensor:
        return self.net(torch.cat([action, z_pre_mean], dim=-1))
