"""State encoder f_θ: expression profile (with a measured-gene mask and library size) → cell latent.

Two choices (``[model] encoder``): ``"mlp"`` (:class:`StateEncoder`, the default) and ``"program_tokens"``
(:class:`ProgramTokenEncoder`). :func:`build_encoder` makes either from the model config's sizes.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor, nn

from biojepa.errors import DataError

ENCODERS = ("mlp", "program_tokens")


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


class TokenBlock(nn.Module):
    """Pre-norm transformer layer over tokens (self-attention + GELU MLP) that ignores padded keys.

    Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention` with a boolean key
    mask, which runs the fused CPU kernel; dropout acts on the two residual branches only.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.attention_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attention_out = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, valid: Tensor) -> Tensor:
        """``h`` is (cells, tokens, dim); no token attends to one whose ``valid`` (cells, tokens) is False."""
        n, t, dim = h.shape
        q, k, v = (
            self.qkv(self.attention_norm(h))
            .view(n, t, 3, self.n_heads, dim // self.n_heads)
            .permute(2, 0, 3, 1, 4)
        )
        mixed = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
        h = h + self.dropout(self.attention_out(mixed.transpose(1, 2).reshape(n, t, dim)))
        return h + self.dropout(self.mlp(h))


class ProgramTokenEncoder(nn.Module):
    """Program-token transformer: gene programs (modules) become tokens mixed by a small transformer.

    :meth:`set_statistics` fixes the standardisation (as :class:`StateEncoder`) and a gene → program
    assignment: seeded k-means of the standardised, unit-norm gene profiles of the given cells (in their
    leading principal directions), stored as the ``program`` buffer so checkpoints restore it. A program's
    token reads ``channels`` learned per-gene weights × standardised expression, averaged over the
    program's *measured* genes only (channel 0 starts as the plain program mean), plus the fraction of
    its genes measured; a per-program linear map takes these features to ``d_model`` and adds the
    program's learned embedding. A library-size token joins them; ``n_layers`` :class:`TokenBlock` layers
    mix the tokens, which are mean-pooled and projected to ``latent_dim``. A program with no measured gene
    in a cell is masked out of attention and pooling, so unmeasured genes never pose as a value.
    """

    def __init__(
        self,
        n_genes: int,
        latent_dim: int = 128,
        d_model: int = 64,
        n_layers: int = 2,
        dropout: float = 0.1,
        n_programs: int = 64,
        n_heads: int = 4,
        channels: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(n_programs, bool) or not isinstance(n_programs, int) or n_programs < 1:
            raise DataError(f"[model] n_programs = {n_programs!r} must be a positive integer")
        if d_model % n_heads:
            raise DataError(
                f"the program-token width ([model] encoder_hidden = {d_model}) must be a multiple of "
                f"the {n_heads} attention heads"
            )
        self.n_genes, self.n_programs, self.channels, self.seed = n_genes, n_programs, channels, seed
        self.register_buffer("gene_mean", torch.zeros(n_genes))
        self.register_buffer("gene_std", torch.ones(n_genes))
        self.register_buffer("library_stats", torch.tensor([0.0, 1.0]))
        self.register_buffer("program", torch.arange(n_genes) * min(n_programs, n_genes) // n_genes)
        gene_weight = torch.randn(n_genes, channels)
        gene_weight[:, 0] = 1.0
        self.gene_weight = nn.Parameter(gene_weight)
        bound = (channels + 1) ** -0.5
        self.token_weight = nn.Parameter(
            torch.empty(n_programs, channels + 1, d_model).uniform_(-bound, bound)
        )
        self.program_embedding = nn.Parameter(torch.randn(n_programs, d_model) * 0.02)
        self.library = nn.Linear(1, d_model)
        self.blocks = nn.ModuleList(TokenBlock(d_model, n_heads, dropout) for _ in range(n_layers))
        self.output = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, latent_dim))

    @torch.no_grad()
    def set_statistics(
        self, x: Tensor, log_library: Tensor, max_cells: int = 4096, n_components: int = 32
    ) -> None:
        """Fix the standardisation and the gene → program assignment from (training control) cells.

        Up to ``max_cells`` cells (a seeded subsample) and ``n_components`` principal directions of the
        genes' standardised profiles feed the k-means.
        """
        self.gene_mean.copy_(x.mean(0))
        self.gene_std.copy_(x.std(0).clamp_min(1e-2))
        self.library_stats.copy_(torch.stack([log_library.mean(), log_library.std().clamp_min(1e-2)]))
        rng = np.random.default_rng(self.seed)
        rows = rng.choice(len(x), min(len(x), max_cells), replace=False)
        z = ((x[torch.from_numpy(rows)] - self.gene_mean) / self.gene_std).float().numpy()
        profiles = z.T / np.maximum(np.linalg.norm(z, axis=0), 1e-12)[:, None]
        k = min(self.n_programs, self.n_genes)
        if min(profiles.shape) > n_components:
            profiles = PCA(n_components, random_state=self.seed).fit_transform(profiles)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct profiles than programs
            labels = KMeans(k, n_init=3, random_state=self.seed).fit_predict(profiles)
        self.program.copy_(torch.from_numpy(labels))

    def forward(self, x: Tensor, gene_mask: Tensor, log_library: Tensor) -> Tensor:
        """Embed cells: ``x`` and ``gene_mask`` are (cells, genes), ``log_library`` is (cells,)."""
        n, p = len(x), self.n_programs
        measured_gene = gene_mask > 0
        xs = torch.where(measured_gene, (x - self.gene_mean) / self.gene_std, torch.zeros_like(x))
        # measured genes per program, counted exactly (index_add is never cast to a low precision)
        measured = x.new_zeros(n, p).index_add_(1, self.program, measured_gene.to(x.dtype))
        sizes = torch.bincount(self.program, minlength=p).to(x.dtype)
        members = nn.functional.one_hot(self.program, p).to(x.dtype)  # genes × programs
        weighted = xs @ (self.gene_weight.unsqueeze(-1) * members.unsqueeze(1)).flatten(1)
        means = weighted.view(n, self.channels, p).transpose(1, 2) / measured.clamp_min(1).unsqueeze(-1)
        coverage = (measured / sizes.clamp_min(1)).unsqueeze(-1)
        features = torch.cat([means, coverage], dim=-1)  # cells × programs × (channels + 1)
        tokens = torch.einsum("bpc,pcd->bpd", features, self.token_weight) + self.program_embedding
        lib = ((log_library - self.library_stats[0]) / self.library_stats[1]).to(x.dtype)
        tokens = torch.cat([tokens, self.library(lib.unsqueeze(-1)).unsqueeze(1)], dim=1)
        valid = torch.cat([measured > 0, measured.new_ones(n, 1, dtype=torch.bool)], dim=1)
        for block in self.blocks:
            tokens = block(tokens, valid)
        weights = valid.to(tokens.dtype).unsqueeze(-1)
        return self.output((tokens * weights).sum(1) / weights.sum(1))


def check_encoder_kind(kind: str) -> None:
    """Raise :class:`DataError` for an encoder name this version does not know."""
    if kind not in ENCODERS:
        raise DataError(f"[model] encoder = {kind!r} is not supported; use one of {list(ENCODERS)}")


def build_encoder(
    kind: str, n_genes: int, latent_dim: int, hidden: int, blocks: int, dropout: float, n_programs: int
) -> StateEncoder | ProgramTokenEncoder:
    """The ``kind`` encoder; ``hidden`` and ``blocks`` are the MLP width and residual blocks, or the
    program-token width (``d_model``) and transformer layers."""
    check_encoder_kind(kind)
    if kind == "mlp":
        return StateEncoder(n_genes, latent_dim, hidden, blocks, dropout)
    return ProgramTokenEncoder(n_genes, latent_dim, hidden, blocks, dropout, n_programs)
