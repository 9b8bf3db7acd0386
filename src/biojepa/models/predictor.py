"""Action-conditioned predictor g_φ(z_pre, a) → ẑ_post = z_pre + Δ with AdaLN-zero conditioning."""

from __future__ import annotations

from torch import Tensor, nn


class AdaLNZeroBlock(nn.Module):
    """MLP block whose LayerNorm shift/scale and residual gate come from the action (zero-initialised)."""

    def __init__(self, dim: int, cond_dim: int, dropout: float, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_ratio * dim, dim)
        )
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 3 * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        shift, scale, gate = self.modulation(cond).chunk(3, dim=-1)
        return h + gate * self.mlp(self.norm(h) * (1 + scale) + shift)


class Predictor(nn.Module):
    """Residual latent dynamics: a stack of AdaLN-zero blocks; the output layer is modulated and zero-init.

    At initialisation the predictor is the identity map (Δ = 0 for every action).
    """

    def __init__(
        self, latent_dim: int, action_dim: int, hidden_dim: int = 256, n_blocks: int = 3, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.input = nn.Linear(latent_dim, hidden_dim)
        self.blocks = nn.ModuleList(AdaLNZeroBlock(hidden_dim, action_dim, dropout) for _ in range(n_blocks))
        self.final_norm = nn.LayerNorm(hidden_dim, elementwise_affine=False)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(action_dim, 2 * hidden_dim))
        self.output = nn.Linear(hidden_dim, latent_dim)
        for layer in (self.final_modulation[1], self.output):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z_pre: Tensor, action: Tensor) -> Tensor:
        """Predict the post-intervention latent of each cell (``action`` is one embedding per cell)."""
        h = self.input(z_pre)
        for block in self.blocks:
            h = block(h, action)
        shift, scale = self.final_modulation(action).chunk(2, dim=-1)
        return z_pre + self.output(self.final_norm(h) * (1 + scale) + shift)
