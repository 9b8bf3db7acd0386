"""The pure-torch world-model module: encoder, action encoder, predictor, decoders and inverse head."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

from biojepa.errors import CheckpointError
from biojepa.models.actions import ActionBatch, ActionEncoder
from biojepa.models.decoder import EffectHead, GaussianDecoder
from biojepa.models.encoder import StateEncoder
from biojepa.models.inverse import InverseDynamics
from biojepa.models.predictor import Predictor


@dataclass
class ModelConfig:
    """Sizes of every part of the world model (saved with each checkpoint)."""

    n_genes: int
    n_targets: int
    n_actions: int
    prior_dim: int = 0
    fingerprint_bits: int = 1024
    latent_dim: int = 128
    encoder_hidden: int = 512
    encoder_blocks: int = 2
    action_dim: int = 128
    predictor_hidden: int = 256
    predictor_blocks: int = 3
    decoder_hidden: int = 256
    effect_hidden: int = 256
    dropout: float = 0.1
    id_dropout: float = 0.5
    blind: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise CheckpointError(
                f"model config has unknown field(s) {sorted(unknown)}; was it written by "
                "a newer biojepa version?"
            )
        return cls(**values)


class BioJepaModule(nn.Module):
    """All trainable parts; :class:`biojepa.models.world_model.WorldModel` wraps it for users."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.encoder = StateEncoder(c.n_genes, c.latent_dim, c.encoder_hidden, c.encoder_blocks, c.dropout)
        self.actions = ActionEncoder(
            c.n_targets, c.prior_dim, c.fingerprint_bits, c.action_dim, c.id_dropout, c.blind
        )
        self.predictor = Predictor(
            c.latent_dim, c.action_dim, c.predictor_hidden, c.predictor_blocks, c.dropout
        )
        self.decoder = GaussianDecoder(c.latent_dim, c.n_genes, c.decoder_hidden, c.dropout)
        self.effect = EffectHead(c.action_dim, c.latent_dim, c.n_genes, c.effect_hidden)
        self.inverse = InverseDynamics(c.latent_dim, c.action_dim, c.n_actions, c.predictor_hidden)

    def standardised_library(self, log_library: Tensor) -> Tensor:
        stats = self.encoder.library_stats
        return (log_library - stats[0]) / stats[1]

    def encode(self, x: Tensor, gene_mask: Tensor, log_library: Tensor) -> Tensor:
        return self.encoder(x, gene_mask, log_library)

    def transition(self, z_pre: Tensor, actions: ActionBatch, which: Tensor) -> tuple[Tensor, Tensor]:
        """``(ẑ_post, action embedding per cell)``: cell ``i`` receives action ``which[i]`` of ``actions``."""
        a = self.actions(actions)[which]
        return self.predictor(z_pre, a), a

    def pseudobulk_delta(
        self, z_pre: Tensor, log_library: Tensor, groups: Tensor, n_groups: int, actions: ActionBatch
    ) -> Tensor:
        """Predicted mean Δ (gene space) of each group of pre-cells under its action.

        ``groups[i]`` names the action (0..n_groups-1) applied to pre-cell ``i``; ``actions`` holds one
        entry per group. Δ = mean decoded post − mean decoded pre + the residual effect head.
        """
        a = self.actions(actions)
        z_post = self.predictor(z_pre, a[groups])
        lib = self.standardised_library(log_library)
        mean_post, _ = self.decoder(z_post, lib)
        mean_pre, _ = self.decoder(z_pre, lib)
        counts = torch.zeros(n_groups).index_add_(0, groups, torch.ones_like(groups, dtype=torch.float32))
        counts = counts.clamp_min(1.0).unsqueeze(-1)
        diff = torch.zeros(n_groups, mean_post.shape[1]).index_add_(0, groups, mean_post - mean_pre) / counts
        z_mean = torch.zeros(n_groups, z_pre.shape[1]).index_add_(0, groups, z_pre) / counts
        has_action = actions.token_mask.any(dim=1, keepdim=True).float()
        return diff + self.effect(a, z_mean) * has_action
