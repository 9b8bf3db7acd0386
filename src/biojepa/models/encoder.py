"""State encoder f_θ: expression profile (with a measured-gene mask and library size) → cell latent."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )

    def forward(self, h: Tensor) -> Tensor:
        return h + self.net(h)


class StateEncoder(nn.Module):
    """Residual MLP from log-normalised expression to a ``latent_dim`` cell embedding.

    Genes are standardised with training-control statistics. Unmeasured genes (``gene_mask == 0``) enter
    as 0 *and* as a 0 in the mask channel, which is concatenated to the input, so the network can tell
    "not measured" from "measured at the mean". The standardised log library size is a further input.
    """

    def __init__(
        self,
        n_genes: int,
        latent_dim: int = 128,
        hidden_dim: int = 512,
        n_blocks: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_genes = n_genes
        self.register_buffer("gene_mean", torch.zeros(n_genes))
        self.register_buffer("gene_std", torch.ones(n_genes))
        self.register_buffer("library_stats", torch.tensor([0.0, 1.0]))
        self.input = nn.Linear(2 * n_genes + 1, hidden_dim)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden_dim, dropout) for _ in range(n_blocks)))
        self.output = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, latent_dim))

    @torch.no_grad()
    def set_statistics(self, x: Tensor, log_library: Tensor) -> None:
        """Fix the per-gene and library-size standardisation from (training control) cells."""
        self.gene_mean.copy_(x.mean(0))
        self.gene_std.copy_(x.std(0).clamp_min(1e-2))
        self.library_stats.copy_(torch.stack([log_library.mean(), log_library.std().clamp_min(1e-2)]))

    def forward(self, x: Tensor, gene_mask: Tensor, log_library: Tensor) -> Tensor:
        """Embed cells: ``x`` and ``gene_mask`` are (cells, genes), ``log_library`` is (cells,)."""
        mask = gene_mask.to(x.dtype)
        xs = (x - self.gene_mean) / self.gene_std * mask
        lib = ((log_library - self.library_stats[0]) / self.library_stats[1]).unsqueeze(-1)
        h = self.input(torch.cat([xs, mask, lib.to(x.dtype)], dim=-1))
        return self.output(self.blocks(h))
