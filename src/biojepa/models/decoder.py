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


FEATURE_SCALE_INIT = 10.0


class EffectMemory(nn.Module):
    """Residual gene-space head: an action's Δ as an attention-weighted mix of measured training Δs.

    The attention score of a stored response is ``a·cos(features) + c·cos(context latents) + b_j``: the
    cosine similarity of the frozen target features (gene priors / fingerprints) and of the contexts,
    with learned scales ``a, c`` and a learned per-entry bias ``b_j`` that lets consistent responses count
    more. So few free parameters cannot overfit a handful of training targets. Trained leave-one-out (an
    entry never retrieves itself), the situation of an unseen target. ``a`` starts at
    :data:`FEATURE_SCALE_INIT` (a soft nearest-neighbour lookup, cosine temperature 0.1): started at 0,
    the retrieval began as the plain mean of the stored Δs and on few training targets stayed there, so
    the action hardly mattered (the blind ablation discriminated perturbations as well as the model).
    """

    def __init__(self, n_memory: int, n_genes: int, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("values", torch.zeros(n_memory, n_genes))
        self.register_buffer("contexts", torch.zeros(n_memory, latent_dim))
        self.feature_scale = nn.Parameter(torch.tensor(FEATURE_SCALE_INIT))
        self.context_scale = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(n_memory))
        self.log_gain = nn.Parameter(torch.zeros(()))
        # scale of the latent path's Δ for targets the memory does not hold measured (1 = as trained);
        # fitted on the validation conditions after training, which are unseen targets too
        self.register_buffer("latent_gate", torch.ones(()))
        # scale of the latent path's predicted interaction in combinations (0 = the additive expectation
        # of the targets' own predictions); fitted on validation combinations after training
        self.register_buffer("combination_gate", torch.zeros(()))
        # weight of the targets' known regulatory edges (the prior network) in gene space; fitted after
        # training on the stored Δs beside the retrieval (0 = not used)
        self.register_buffer("network_weight", torch.zeros(()))
        # a target no training condition perturbs retrieves less of what it does than the leave-one-out
        # entries the gain is fitted on (whose targets may train in other conditions): its retrieval is
        # scaled by ``novel_gain_ratio`` × gain and its edges by ``novel_network_weight``, both fitted after
        # training with every entry that shares a target left out (1 and 0 as trained)
        self.register_buffer("novel_gain_ratio", torch.ones(()))
        self.register_buffer("novel_network_weight", torch.zeros(()))

    def forward(
        self,
        query: Tensor,
        query_context: Tensor,
        keys: Tensor,
        exclude: Tensor | None = None,
        exact: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(stored Δ mix, used_exact, gain)`` per query.

        ``query``/``keys`` are target features, ``query_context`` latents; ``exclude[i]`` is an entry
        query ``i`` may not use (-1 for none), or ``exclude`` is a boolean mask (queries × entries) of the
        entries each query may not use; ``exact[i]`` is an entry that *is* query ``i`` (its measured
        response is then returned as is and ``used_exact[i]`` is True), -1 for none. ``gain`` scales only
        the similarity-weighted mixes: a measured response needs no rescaling.
        """
        features = nn.functional.normalize(query, dim=-1) @ nn.functional.normalize(keys, dim=-1).T
        contexts = (
            nn.functional.normalize(query_context, dim=-1) @ nn.functional.normalize(self.contexts, dim=-1).T
        )
        scores = self.feature_scale * features + self.context_scale * contexts + self.bias
        weights = torch.softmax(scores, dim=-1)
        excluded = None if exclude is None else _exclusion_mask(exclude, weights.shape[1])
        if excluded is not None:
            weights = weights * (~excluded).float()
            weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
        used_exact = torch.zeros(len(query), dtype=torch.bool)
        if exact is not None:
            used_exact = exact >= 0
            if excluded is not None:
                used_exact &= ~excluded.gather(1, exact.clamp_min(0).unsqueeze(1)).squeeze(1)
            rows = torch.nonzero(used_exact).flatten()
            one_hot = torch.zeros_like(weights)
            one_hot[rows, exact[rows]] = 1.0
            weights = torch.where(used_exact.unsqueeze(-1), one_hot, weights)
        return weights @ self.values, used_exact, self.log_gain.exp().expand(len(query), 1)


def _exclusion_mask(exclude: Tensor, n_entries: int) -> Tensor:
    """A boolean (queries × entries) mask from an entry index per query (-1: none) or from a mask."""
    if exclude.dim() == 2:
        return exclude.bool()
    mask = torch.zeros(len(exclude), n_entries, dtype=torch.bool)
    rows = torch.nonzero(exclude >= 0).flatten()
    mask[rows, exclude[rows]] = True
    return mask
