"""The pure-torch world-model module: encoder, action encoder, predictor, decoders and inverse head."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

from biojepa.errors import CheckpointError
from biojepa.models.actions import ActionBatch, ActionEncoder
from biojepa.models.decoder import EffectMemory, GaussianDecoder
from biojepa.models.encoder import build_encoder
from biojepa.models.inverse import InverseDynamics
from biojepa.models.predictor import Predictor


@dataclass
class ModelConfig:
    """Sizes of every part of the world model (saved with each checkpoint)."""

    n_genes: int
    n_targets: int
    n_actions: int
    n_memory: int = 1
    prior_dim: int = 0
    fingerprint_bits: int = 1024
    latent_dim: int = 128
    encoder: str = "mlp"  # or "program_tokens": encoder_hidden / _blocks are then its width / layers
    n_programs: int = 64
    encoder_hidden: int = 512
    encoder_blocks: int = 2
    action_dim: int = 128
    predictor_hidden: int = 256
    predictor_blocks: int = 3
    decoder_hidden: int = 256
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
        self.encoder = build_encoder(
            c.encoder, c.n_genes, c.latent_dim, c.encoder_hidden, c.encoder_blocks, c.dropout, c.n_programs
        )
        self.actions = ActionEncoder(
            c.n_targets, c.prior_dim, c.fingerprint_bits, c.action_dim, c.id_dropout, c.blind
        )
        self.predictor = Predictor(
            c.latent_dim, c.action_dim, c.predictor_hidden, c.predictor_blocks, c.dropout
        )
        self.decoder = GaussianDecoder(c.latent_dim, c.n_genes, c.decoder_hidden, c.dropout)
        self.effect = EffectMemory(c.n_memory, c.n_genes, c.latent_dim)
        self.memory_actions: ActionBatch | None = None
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

    @torch.no_grad()
    def set_memory(self, actions: ActionBatch, deltas: Tensor, context_latents: Tensor) -> None:
        """Store the training conditions' actions, measured Δs and context latents for the effect head."""
        self.memory_actions = actions
        self.effect.values.copy_(deltas)
        self.effect.contexts.copy_(context_latents)

    def memory_components(
        self, actions: ActionBatch, z_context: Tensor, exclude: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(retrieved, measured, gain, is_measured)`` per action; all zero for the control action.

        Retrieval is per target and summed over the targets of a combination: a target measured alone in
        training contributes its own measured Δ to ``measured`` (so a seen pair starts from the additive
        expectation), any other target a similarity-weighted mix of training Δs to ``retrieved``, which
        ``gain`` rescales; ``is_measured`` (B × T) marks the tokens served by a measurement. ``exclude``
        (one entry per action, or a B × entries mask) is never used by that action's targets: training
        passes each condition's own entry (leave-one-out, the situation of an unseen target). The blind
        ablation retrieves with no target features and no identities: one learned weighting for every
        action. A target no training condition perturbs has its retrieval scaled by ``novel_gain_ratio``.
        """
        if self.memory_actions is None:
            raise RuntimeError("the effect memory is empty; call set_memory() (done by training and loading)")
        b, t = actions.token_mask.shape
        query = actions.target_features().reshape(b * t, -1)
        keys = self.memory_actions.target_features().sum(1)
        exact = self.exact_entries(actions, z_context).reshape(-1)
        if self.config.blind:
            query, exact = torch.zeros_like(query), None
        if exclude is None:
            exclude = torch.full((b,), -1, dtype=torch.long)
        repeat = exclude.repeat_interleave(t, dim=0)
        mix, used_exact, gain = self.effect(query, z_context.repeat_interleave(t, dim=0), keys, repeat, exact)
        mask = actions.token_mask.reshape(b, t, 1).float()
        mix = mix.reshape(b, t, -1) * mask
        from_measured = used_exact.reshape(b, t, 1).float()
        has_action = mask.amax(dim=1)
        novel = self.novel_tokens(actions).unsqueeze(-1)
        mix = torch.where(novel, mix * self.effect.novel_gain_ratio, mix)
        retrieved = (mix * (1 - from_measured)).sum(1) * has_action
        measured = (mix * from_measured).sum(1) * has_action
        return retrieved, measured, gain.reshape(b, t)[:, :1] * has_action, used_exact.reshape(b, t)

    def novel_tokens(self, actions: ActionBatch) -> Tensor:
        """Tokens (B × T) whose target no training condition perturbs (not the blind ablation's, which
        does not know its targets)."""
        novel = actions.token_mask & (actions.target_ids == 0)
        return torch.zeros_like(novel) if self.config.blind else novel

    def entries_sharing_targets(self, actions: ActionBatch) -> Tensor:
        """Boolean mask (B × entries): the memory entries that perturb any target of each action."""
        assert self.memory_actions is not None
        stored = self.memory_actions
        ids = torch.where(actions.token_mask & (actions.target_ids > 0), actions.target_ids, -1)
        stored_ids = torch.where(stored.token_mask & (stored.target_ids > 0), stored.target_ids, -2)
        same = ids.view(ids.shape[0], 1, -1, 1) == stored_ids.view(1, stored_ids.shape[0], 1, -1)
        return same.flatten(2).any(-1)

    def exact_entries(self, actions: ActionBatch, z_context: Tensor) -> Tensor:
        """Memory entry holding each token's target measured alone in training (B × T), -1 where none.

        A target measured in several contexts uses the entry whose context latent is closest (cosine) to
        the action's context latent ``z_context`` (B × latent): its own context when that was measured.
        """
        assert self.memory_actions is not None
        single = self.memory_actions.single_target_ids()
        same_target = actions.target_ids.unsqueeze(-1) == single.view(1, 1, -1)
        same_target &= (actions.target_ids > 0).unsqueeze(-1) & actions.token_mask.unsqueeze(-1)
        closeness = (
            nn.functional.normalize(z_context, dim=-1)
            @ nn.functional.normalize(self.effect.contexts, dim=-1).T
        )
        scores = torch.where(
            same_target, closeness.unsqueeze(1), torch.full_like(closeness.unsqueeze(1), -2.0)
        )
        best = scores.argmax(-1)
        return torch.where(same_target.any(-1), best, -1)

    def decoded_delta(
        self,
        z_pre: Tensor,
        log_library: Tensor,
        groups: Tensor,
        n_groups: int,
        actions: ActionBatch,
        pre_mean: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Latent path: ``(mean decoded post − mean decoded pre, mean pre latent)`` per group of pre-cells.

        ``groups[i]`` names the action (0..n_groups-1) applied to pre-cell ``i``; ``actions`` holds one
        entry per group. ``pre_mean`` (the groups' mean decoded pre-state, from :meth:`decoded_pre_mean`)
        saves decoding the same pre-cells again.
        """
        a = self.actions(actions)
        z_post = self.predictor(z_pre, a[groups])
        lib = self.standardised_library(log_library)
        mean_post, _ = self.decoder(z_post, lib)
        if pre_mean is None:
            pre_mean = self.decoded_pre_mean(z_pre, log_library, groups, n_groups)
        diff = _group_mean(mean_post, groups, n_groups) - pre_mean
        return diff, _group_mean(z_pre, groups, n_groups)

    def decoded_pre_mean(self, z_pre: Tensor, log_library: Tensor, groups: Tensor, n_groups: int) -> Tensor:
        """Mean decoded expression of each group of pre-cells."""
        mean_pre, _ = self.decoder(z_pre, self.standardised_library(log_library))
        return _group_mean(mean_pre, groups, n_groups)

    def pseudobulk_delta(
        self, z_pre: Tensor, log_library: Tensor, groups: Tensor, n_groups: int, actions: ActionBatch
    ) -> Tensor:
        """Predicted mean Δ (gene space) of each group of pre-cells: decoded latent Δ + memory residual."""
        diff, z_mean = self.decoded_delta(z_pre, log_library, groups, n_groups, actions)
        return self.combine(self.memory_parts(z_pre, log_library, groups, n_groups, actions, diff, z_mean))

    def combine(self, parts: tuple[Tensor, ...]) -> Tensor:
        """Predicted Δ from :meth:`memory_parts`.

        Each target contributes its own prediction: its measured Δ where the memory holds it measured alone
        (the latent path's prediction of it is then dropped), else the retrieved Δ of similar training
        targets (× ``gain``), plus its known regulatory edges read off in gene space (× the fitted
        ``network_weight``, 0 as trained; a target no training condition perturbs has its own fitted
        retrieval scale and edge weight, see :class:`EffectMemory`), plus the latent path's decoded Δ of
        the target alone, scaled by the fitted ``latent_gate`` (1 as trained; fitted on the validation
        targets, which the latent path has not seen either). A combination adds the latent path's predicted
        interaction (its Δ beyond the sum of its targets' latent Δs) scaled by the fitted
        ``combination_gate`` (0, the additive expectation, until validation combinations show that the
        interaction helps).
        """
        retrieved, measured, gain, network, single_latent, interaction = parts
        effect = self.effect
        return (
            gain * retrieved
            + measured
            + network
            + effect.latent_gate * single_latent
            + effect.combination_gate * interaction
        )

    def network_part(self, actions: ActionBatch, is_measured: Tensor, weighted: bool = True) -> Tensor:
        """Sum over an action's targets not measured alone in training of their known regulatory edges,
        signed by the mode and weighted by ``network_weight`` (``novel_network_weight`` for a target no
        training condition perturbs), or unweighted (B × genes; zero without a prior network and for the
        blind ablation)."""
        b = actions.token_mask.shape[0]
        if self.config.blind or actions.network.shape[-1] == 0:
            return torch.zeros(b, self.config.n_genes)
        weight = (~is_measured).float()
        if weighted:
            effect = self.effect
            weight = weight * torch.where(
                self.novel_tokens(actions), effect.novel_network_weight, effect.network_weight
            )
        return (actions.network_response() * weight.unsqueeze(-1)).sum(1)

    def memory_parts(
        self,
        z_pre: Tensor,
        log_library: Tensor,
        groups: Tensor,
        n_groups: int,
        actions: ActionBatch,
        diff: Tensor,
        z_mean: Tensor,
        exclude: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(retrieved, measured, gain, network, single latent, interaction)`` of each group (see
        :meth:`combine`).

        ``single latent`` sums the decoded latent Δs of the targets not held measured, each applied alone;
        ``interaction`` is ``diff`` minus the latent Δs of all its targets alone (0 for one target).
        """
        retrieved, measured, gain, is_measured = self.memory_components(actions, z_mean, exclude)
        network = self.network_part(actions, is_measured)
        kept = 1.0 - is_measured.any(1, keepdim=True).float()
        single_latent, interaction = diff * kept, torch.zeros_like(diff)
        combination = actions.token_mask.sum(1) > 1
        if self.config.blind or not bool(combination.any()):
            # one target per action (or the blind ablation, whose action ignores its targets)
            return retrieved, measured, gain, network, single_latent, interaction
        # each target of a combination applied alone, on the pre-cells of the combinations only
        rows = combination.nonzero().squeeze(1)
        cells = combination[groups]
        sub_groups = (torch.cumsum(combination.long(), 0) - 1)[groups[cells]]
        z_sub, lib_sub, sub_actions = z_pre[cells], log_library[cells], actions.index(rows)
        pre_mean = self.decoded_pre_mean(z_sub, lib_sub, sub_groups, len(rows))
        pair_single = torch.zeros(len(rows), diff.shape[1])
        all_tokens = torch.zeros(len(rows), diff.shape[1])
        for j in range(actions.token_mask.shape[1]):
            present = sub_actions.token_mask[:, j : j + 1].float()
            token_diff, _ = self.decoded_delta(
                z_sub, lib_sub, sub_groups, len(rows), sub_actions.token(j), pre_mean
            )
            all_tokens = all_tokens + token_diff * present
            pair_single = pair_single + token_diff * present * (~is_measured[rows, j : j + 1]).float()
        single_latent = single_latent.index_copy(0, rows, pair_single)
        interaction = interaction.index_copy(0, rows, diff[rows] - all_tokens)
        return retrieved, measured, gain, network, single_latent, interaction


def _group_mean(values: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """Mean of the rows of ``values`` in each group (0 for an empty group)."""
    counts = torch.zeros(n_groups).index_add_(0, groups, torch.ones(len(groups)))
    total = torch.zeros(n_groups, values.shape[1]).index_add_(0, groups, values)
    return total / counts.clamp_min(1.0).unsqueeze(-1)
