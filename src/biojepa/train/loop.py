"""The three training stages of BioJEPA-AC, with per-epoch checkpoints and exact resume.

A. masked-view pretraining of the state encoder, no labels. Default (``teacher = "none"``): the masked views
   of a cell predict their mean embedding, with SIGReg (or VICReg between two views) over cells against
   collapse. Alternative (``teacher = "ema"``, V-JEPA / BYOL style): each masked view predicts the embedding
   of the full view by an EMA copy of the encoder (stop-gradient, momentum on a cosine schedule), with the
   VICReg variance and covariance terms (or SIGReg) over cells on the student embeddings. Either way the
   student encoder, frozen, is the target encoder of the later stages; the teacher only serves stage A;
B. Gaussian decoder on frozen latents;
C. action encoder + AdaLN-zero predictor (latent MSE to the frozen target encoder's embedding of measured
   post-perturbation cells), retrieval effect head (a memory of shrunk pseudobulk Δs, leave-one-out) and
   inverse-dynamics head.
Every epoch draws its randomness from ``(seed, stage, epoch)``, so resuming reproduces an unbroken run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from biojepa.data.schema import CONTROL, Condition
from biojepa.errors import CheckpointError
from biojepa.models.actions import ActionBatch, ActionVocabulary
from biojepa.models.decoder import gaussian_nll
from biojepa.models.module import BioJepaModule
from biojepa.models.regularizers import (
    effective_rank,
    sigreg,
    vicreg,
    vicreg_covariance,
    vicreg_variance,
)
from biojepa.models.teacher import EmaTeacher
from biojepa.train.checkpoints import (
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)
from biojepa.train.config import TrainConfig
from biojepa.train.data import CellTable, ControlSampler, pseudobulk_statistics, targeted_gene_mask
from biojepa.train.schedules import ema_momentum, set_lr, warmup_cosine
from biojepa.train.shrinkage import AUTO, choose_shrinkage, shrink_deltas

STAGES = ("pretrain", "decoder", "dynamics")
LAST = "last"
# candidate sharpness values of the effect memory's retrieval (the trained value is tried first)
RETRIEVAL_SCALES = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0)
# factors of the least-squares edge weight tried by :func:`gain_and_edge_weight`, largest first
EDGE_WEIGHT_SHRINKAGE = (1.0, 0.5, 0.25, 0.125, 0.0)
EpochCallback = Callable[[str, int, int, dict], None]


@dataclass
class FitData:
    """Training cells (training conditions + all controls) and optional validation cells (+ controls)."""

    train: CellTable
    val: CellTable | None = None
    genes: list[str] | None = None  # names of the columns; lets the memory-shrinkage choice skip targets


def clipped_scale(
    x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor, alongside: torch.Tensor | None = None
) -> float:
    """Least-squares ``c`` in ``y ≈ c·x`` over the entries where ``keep``, clipped to [0, 1].

    With ``alongside`` the fit is ``y ≈ c·x + s·alongside`` and ``c`` is returned: the weight ``x`` earns
    beyond what a rescaled ``alongside`` already explains.
    """
    x, y = x[keep], y[keep]
    if alongside is not None and float(alongside[keep].square().sum()) > 0:
        design = torch.stack([x, alongside[keep]], dim=1).double()
        scale = float(torch.linalg.lstsq(design, y.double().unsqueeze(1), driver="gelsd").solution[0])
    else:
        scale = float((x * y).sum() / x.square().sum().clamp_min(1e-12))
    return min(max(scale, 0.0), 1.0)


def pearson_rows(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of ``pred`` with the same row of ``truth``."""
    p = pred - pred.mean(1, keepdim=True)
    t = truth - truth.mean(1, keepdim=True)
    return (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1)).clamp_min(1e-12)


def retrieval_direction_loss(retrieved: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """Σ over rows of ‖rest‖² · (1 − cos(retrieved, rest)), rows that retrieved nothing left out: the
    direction of what the memory must retrieve, weighted by its squared size so that noise-level
    responses count little."""
    size = rest.square().sum(dim=1) * (retrieved.abs().sum(dim=1) > 0)
    return (size * (1 - F.cosine_similarity(retrieved, rest, dim=1))).sum()


@dataclass(frozen=True)
class RetrievalFit:
    """What :func:`fit_retrieval` set: the retrieval's sharpness and gain and the edges' weight, for targets
    perturbed in training and for novel ones."""

    retrieval_scale: float
    retrieval_gain: float
    network_weight: float
    novel_retrieval_gain: float
    novel_network_weight: float


@torch.no_grad()
def fit_retrieval(module: BioJepaModule, deltas: torch.Tensor, scored: torch.Tensor) -> RetrievalFit:
    """Set the effect memory's retrieval sharpness (``feature_scale``), gains and edge weights leave-one-out
    on the stored conditions, whose measured Δs are ``deltas``, over their ``scored`` genes.

    The sharpness minimises the training loss's direction term (:func:`retrieval_direction_loss` of each
    entry's retrieval from the other entries) over :data:`RETRIEVAL_SCALES` and the trained value, which
    ties keep: gradient steps move this one scale little from where it starts. The gain of those
    retrievals and the weight of the targets' known regulatory edges (:meth:`BioJepaModule.network_part`)
    on what they leave follow (:func:`gain_and_edge_weight`), so the edges count only what they add to the
    retrieval. The same fit with every entry that shares a target left out, the situation of a
    target no training condition perturbs, gives the novel targets' gain and edge weight (not for the
    blind ablation, which does not know its targets). With fewer than two entries all stay as trained.
    """
    effect = module.effect
    actions = module.memory_actions
    if actions is None:
        raise RuntimeError("the effect memory is empty; call set_memory() first")

    def fitted() -> RetrievalFit:
        gain = effect.log_gain.exp().item()
        return RetrievalFit(
            effect.feature_scale.item(),
            gain,
            effect.network_weight.item(),
            gain * effect.novel_gain_ratio.item(),
            effect.novel_network_weight.item(),
        )

    if len(deltas) < 2:  # nothing to retrieve from once an entry's own Δ is left out
        return fitted()

    def leave_out(exclude: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        retrieved, measured, _, is_measured = module.memory_components(actions, effect.contexts, exclude)
        network = module.network_part(actions, is_measured, weighted=False)
        return retrieved * scored, (deltas - measured) * scored, network * scored

    itself = torch.arange(len(deltas))
    candidates = (effect.feature_scale.item(), *RETRIEVAL_SCALES)
    losses = []
    for scale in candidates:
        effect.feature_scale.fill_(scale)
        retrieved, rest, _ = leave_out(itself)
        losses.append(float(retrieval_direction_loss(retrieved, rest)))
    effect.feature_scale.fill_(candidates[int(np.argmin(losses))])
    gain, weight = gain_and_edge_weight(*leave_out(itself))
    if gain is not None:
        effect.log_gain.fill_(float(np.log(max(gain, 1e-3))))
    effect.network_weight.fill_(weight)
    if not module.config.blind:
        novel_gain, novel_weight = gain_and_edge_weight(*leave_out(module.entries_sharing_targets(actions)))
        if novel_gain is not None:
            effect.novel_gain_ratio.fill_(novel_gain / effect.log_gain.exp().item())
        effect.novel_network_weight.fill_(novel_weight)
    return fitted()


def gain_and_edge_weight(
    retrieved: torch.Tensor, rest: torch.Tensor, edges: torch.Tensor
) -> tuple[float | None, float]:
    """The retrieval's gain and the edges' weight for predicting ``rest`` (entries × genes) as
    ``gain·retrieved + weight·edges``.

    The gain is the least-squares scale of the retrieval alone (None where it retrieved nothing). The weight
    is the least-squares weight of the edges on what the scaled retrieval leaves, shrunk by the factor in
    :data:`EDGE_WEIGHT_SHRINKAGE` whose predictions correlate best with ``rest``, averaged over the entries
    that have any edge (ties keep the larger weight). The shrinkage guards against a few strongly moved
    entries setting the weight for all: least squares lets an entry count by the square of its effect,
    while every perturbation counts once in the scores.
    """
    power = float(retrieved.square().sum())
    gain = float((retrieved * rest).sum()) / power if power > 0 else None
    base = retrieved * max(gain or 0.0, 1e-3)
    has_edges = edges.abs().sum(1) > 0
    if not bool(has_edges.any()):
        return gain, 0.0
    fitted = float((edges * (rest - base)).sum()) / float(edges.square().sum())
    if fitted <= 0:
        return gain, 0.0
    candidates = [fitted * factor for factor in EDGE_WEIGHT_SHRINKAGE]
    scores = [
        float(pearson_rows(base[has_edges] + weight * edges[has_edges], rest[has_edges]).mean())
        for weight in candidates
    ]
    return gain, candidates[int(np.argmax(scores))]


class Trainer:
    """Runs stages A–C on a :class:`BioJepaModule`; ``checkpoint_dir`` enables checkpoints and resume."""

    def __init__(
        self,
        module: BioJepaModule,
        vocab: ActionVocabulary,
        config: TrainConfig,
        data: FitData,
        action_labels: list[str],
        checkpoint_dir: Path | None = None,
        checkpoint_meta: dict | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> None:
        self.module = module
        self.vocab = vocab
        self.config = config
        self.data = data
        self.action_labels = action_labels
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_meta = checkpoint_meta or {}
        self.on_epoch = on_epoch
        config.pretrain.validate()
        self.teacher = EmaTeacher(module.encoder) if config.pretrain.teacher == "ema" else None
        self.history: list[dict] = []
        self.sampler = ControlSampler(data.train.context, data.train.batch, data.train.is_control)
        self._latents: dict[str, torch.Tensor] = {}
        self._best: dict[str, torch.Tensor] | None = None
        self._best_score = -np.inf
        self._stale = 0

    # ------------------------------------------------------------------ orchestration
    def epochs(self, stage: str) -> int:
        return getattr(self.config, stage).epochs

    def run(self, resume: bool = False) -> list[dict]:
        """Train all stages (continuing from the last checkpoint when ``resume``); return the epoch log."""
        start = (0, 0)
        optimizer_state = None
        if resume:
            start, optimizer_state = self._restore()
        elif self.checkpoint_dir is not None and (self.checkpoint_dir / f"{LAST}.json").exists():
            raise CheckpointError(
                f"{self.checkpoint_dir} already holds a training checkpoint; pass --resume to continue it "
                "or choose an empty output directory"
            )
        if start == (0, 0):
            controls = self.data.train.is_control
            self.module.encoder.set_statistics(
                self.data.train.x[controls], self.data.train.log_library[controls]
            )
        for s in range(start[0], len(STAGES)):
            stage = STAGES[s]
            optimizer = self._optimizer(stage)
            if optimizer_state is not None and s == start[0]:
                optimizer_from_tensors(optimizer, *optimizer_state, prefix="optimizer")
            optimizer_state = None
            first = start[1] if s == start[0] else 0
            for epoch in range(first, self.epochs(stage)):
                self._seed(s, epoch)
                record = getattr(self, f"_{stage}_epoch")(optimizer, epoch)
                record.update(stage=stage, epoch=epoch)
                self.history.append(record)
                stop = stage == "dynamics" and self._track_best(record)
                self._checkpoint(s, self.epochs(stage) if stop else epoch + 1, optimizer)
                if self.on_epoch is not None:
                    self.on_epoch(stage, epoch, self.epochs(stage), record)
                if stop:
                    break
            self._freeze_after(stage)
        self._dynamics_setup()
        if self._best is not None:
            self.module.load_state_dict(self._best)
        self.module.eval()
        self._fit_retrieval()
        self._fit_gates()
        return self.history

    def _seed(self, stage_index: int, epoch: int) -> None:
        seed = (self.config.seed * 1_000_003 + stage_index * 10_007 + epoch) % (2**31)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def _optimizer(self, stage: str) -> torch.optim.Optimizer:
        m = self.module
        parts = {
            "pretrain": [m.encoder],
            "decoder": [m.decoder],
            "dynamics": [m.actions, m.predictor, m.effect, m.inverse],
        }[stage]
        cfg = getattr(self.config, stage)
        groups = [{"params": [p for part in parts for p in part.parameters() if part is not m.effect]}]
        if stage == "dynamics":
            # the retrieval weights are logits: they need steps of order 1, not of order lr
            groups.append({"params": list(m.effect.parameters()), "lr_scale": cfg.memory_lr_scale})
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def _freeze_after(self, stage: str) -> None:
        if stage == "pretrain":
            self.module.encoder.requires_grad_(False)
            self._latents.clear()
        if stage == "decoder":
            self.module.decoder.requires_grad_(False)

    def latents(self, name: str) -> torch.Tensor:
        """Frozen-encoder latents of the train/val cells (computed once after pretraining)."""
        if name not in self._latents:
            table = self.data.train if name == "train" else self.data.val
            self.module.encoder.eval()
            with torch.no_grad():
                self._latents[name] = torch.cat(
                    [
                        self.module.encode(
                            table.x[i : i + 4096],
                            table.gene_mask[i : i + 4096],
                            table.log_library[i : i + 4096],
                        )
                        for i in range(0, len(table.x), 4096)
                    ]
                )
        return self._latents[name]

    # ------------------------------------------------------------------ stage A
    def _pretrain_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> dict:
        cfg = self.config.pretrain
        table = self.data.train
        encoder = self.module.encoder.train()
        n = len(table.x)
        order = self.rng.permutation(n)
        steps = max(1, n // cfg.batch_size)
        total = steps * cfg.epochs
        if self.teacher is not None and epoch == 0:
            self.teacher.update(encoder, 0.0)  # start as a copy, standardisation statistics included
        sums = {"loss": 0.0, "prediction": 0.0, "regularizer": 0.0}
        momentum = None
        for step in range(steps):
            set_lr(optimizer, cfg.lr, warmup_cosine(epoch * steps + step, total))
            idx = torch.from_numpy(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
            x, mask, lib = table.x[idx], table.gene_mask[idx], table.log_library[idx]
            views = [
                encoder(x, mask * (torch.rand(mask.shape) >= cfg.mask_fraction), lib)
                for _ in range(cfg.n_views)
            ]
            target = None if self.teacher is None else self.teacher(x, mask, lib)
            loss, pred, reg = self._ssl_loss(views, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
            optimizer.step()
            if self.teacher is not None:
                momentum = ema_momentum(epoch * steps + step, total, cfg.ema_momentum, cfg.ema_momentum_end)
                self.teacher.update(encoder, momentum)
            sums["loss"] += loss.item()
            sums["prediction"] += pred.item()
            sums["regularizer"] += reg.item()
        record = {k: v / steps for k, v in sums.items()}
        encoder.eval()
        with torch.no_grad():
            probe = torch.from_numpy(self.rng.choice(n, size=min(n, 1024), replace=False))
            inputs = table.x[probe], table.gene_mask[probe], table.log_library[probe]
            z = encoder(*inputs)
            z_teacher = None if self.teacher is None else self.teacher(*inputs)
        record["effective_rank"] = effective_rank(z)
        record["latent_std"] = float(z.std(0).mean())
        if z_teacher is not None:
            record["ema_momentum"] = momentum
            record["teacher_effective_rank"] = effective_rank(z_teacher)
            record["teacher_latent_std"] = float(z_teacher.std(0).mean())
        return record

    def _ssl_loss(
        self, views: list[torch.Tensor], target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masked-view prediction + anti-collapse term over cells; returns (loss, prediction, regulariser).

        Without ``target`` each view predicts the mean view embedding (SIGReg), or the two views are tied by
        VICReg. With ``target`` (the EMA teacher's embedding of the full view, no gradient) each view
        predicts it: VICReg invariance to the target plus variance and covariance of the views (25 / 25 / 1,
        the logged regulariser is the weighted variance + covariance part), or the squared error with SIGReg.
        """
        cfg = self.config.pretrain
        if cfg.regularizer == "vicreg":
            if target is None:
                loss = vicreg(views[0], views[1])
                return loss, F.mse_loss(views[0], views[1]), loss
            target = target.detach()
            pred = torch.stack([F.mse_loss(v, target) for v in views]).mean()
            reg = torch.stack([25.0 * vicreg_variance(v) + vicreg_covariance(v) for v in views]).mean()
            return 25.0 * pred + reg, pred, reg
        centre = torch.stack(views).mean(0) if target is None else target.detach()
        pred = torch.stack([(v - centre).square().sum(1).mean() for v in views]).mean()
        reg = torch.stack([sigreg(v, cfg.n_slices) for v in views]).mean()
        lam = cfg.sigreg_weight
        return (1 - lam) * pred + lam * reg, pred, reg

    # ------------------------------------------------------------------ stage B
    def _decoder_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> dict:
        cfg = self.config.decoder
        table = self.data.train
        z_all = self.latents("train")
        lib_all = self.module.standardised_library(table.log_library)
        decoder = self.module.decoder.train()
        n = len(table.x)
        order = self.rng.permutation(n)
        steps = max(1, n // cfg.batch_size)
        total_loss = 0.0
        for step in range(steps):
            set_lr(optimizer, cfg.lr, warmup_cosine(epoch * steps + step, steps * cfg.epochs))
            idx = torch.from_numpy(order[step * cfg.batch_size : (step + 1) * cfg.batch_size])
            mean, var = decoder(z_all[idx], lib_all[idx])
            loss = gaussian_nll(mean, table.x[idx], var, table.gene_mask[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
        decoder.eval()
        return {"nll": total_loss / steps}

    # ------------------------------------------------------------------ stage C
    def _dynamics_setup(self) -> None:
        if hasattr(self, "_actions"):
            return
        table = self.data.train
        control = Condition(CONTROL, "", "control")
        self._actions: ActionBatch = self.vocab.encode([*table.conditions, control])
        self._control_action = len(table.conditions)
        label_index = {label: i for i, label in enumerate(self.action_labels)}
        self._labels = torch.tensor(
            [label_index[c.perturbation] for c in table.conditions] + [label_index[CONTROL]]
        )
        self._deltas, variances = pseudobulk_statistics(table)
        rule, scores = self.config.dynamics.memory_shrinkage, {}
        if rule == AUTO:
            genes = self.data.genes or [f"column{j}" for j in range(table.x.shape[1])]
            rule, scores = choose_shrinkage(table, genes, seed=self.config.seed)
        self.shrinkage = {"memory_shrinkage": rule, "shrinkage_scores": scores}
        z_all = self.latents("train")
        context_latent = {
            c: z_all[np.flatnonzero(table.is_control & (table.context == c))].mean(0)
            for c in np.unique(table.context[table.is_control])
        }
        # the memory holds denoised Δs (what a measured target is predicted to do); losses use the raw ones
        self.module.set_memory(
            self._actions.index(torch.arange(len(table.conditions))),
            shrink_deltas(self._deltas, variances, rule),
            torch.stack([context_latent[c.context] for c in table.conditions]),
        )
        self._post_cells = np.flatnonzero(~table.is_control)
        self._control_cells = np.flatnonzero(table.is_control)
        if self.data.val is not None and self.data.val.conditions:
            val = self.data.val
            self._val_actions = self.vocab.encode(val.conditions, strict=False)
            self._val_deltas, _ = pseudobulk_statistics(val)

    def _dynamics_epoch(self, optimizer: torch.optim.Optimizer, epoch: int) -> dict:
        self._dynamics_setup()
        cfg = self.config.dynamics
        m = self.module
        m.encoder.eval()
        m.decoder.eval()
        for part in (m.actions, m.predictor, m.effect, m.inverse):
            part.train()
        z_all = self.latents("train")
        sums = {"loss": 0.0, "latent": 0.0, "gene": 0.0, "inverse": 0.0}
        for step in range(cfg.steps_per_epoch):
            set_lr(
                optimizer,
                cfg.lr,
                warmup_cosine(epoch * cfg.steps_per_epoch + step, cfg.steps_per_epoch * cfg.epochs),
            )
            latent, inverse = self._cell_losses(z_all)
            gene = self._gene_loss(z_all)
            loss = cfg.latent_weight * latent + cfg.gene_weight * gene + cfg.inverse_weight * inverse
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in zip(sums, (loss, latent, gene, inverse), strict=True):
                sums[key] += value.item()
        record = {k: v / cfg.steps_per_epoch for k, v in sums.items()}
        if hasattr(self, "_val_actions"):
            record["val_pearson_delta"] = self._validate()
        return record

    def _cell_losses(self, z_all: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config.dynamics
        table = self.data.train
        n_control = round(cfg.cell_batch * cfg.control_fraction)
        post = np.concatenate(
            [
                self.rng.choice(self._post_cells, cfg.cell_batch - n_control),
                self.rng.choice(self._control_cells, n_control),
            ]
        )
        pre = self.sampler.sample_matching(table.context[post], table.batch[post], self.rng)
        action_idx = torch.from_numpy(
            np.where(table.condition_index[post] >= 0, table.condition_index[post], self._control_action)
        )
        z_pre, z_post = z_all[pre], z_all[post]
        z_hat, a = self.module.transition(z_pre, self._actions, action_idx)
        latent = F.mse_loss(z_hat, z_post)
        logits, embedding = self.module.inverse(z_pre, z_post)
        inverse = F.cross_entropy(logits, self._labels[action_idx])
        inverse = inverse + (1 - F.cosine_similarity(embedding, a.detach(), dim=-1)).mean()
        return latent, inverse

    def _gene_loss(self, z_all: torch.Tensor) -> torch.Tensor:
        cfg = self.config.dynamics
        table = self.data.train
        n_cond = len(table.conditions)
        if n_cond == 0:
            return torch.zeros(())
        chosen = self.rng.choice(n_cond, size=min(n_cond, cfg.conditions_per_step), replace=False)
        k = cfg.controls_per_condition
        pre = np.concatenate([self.sampler.sample(table.conditions[c].context, k, self.rng) for c in chosen])
        groups = torch.arange(len(chosen)).repeat_interleave(k)
        idx = torch.from_numpy(chosen)
        actions = self._actions.index(idx)
        diff, z_mean = self.module.decoded_delta(
            z_all[pre], table.log_library[pre], groups, len(chosen), actions
        )
        retrieved, measured, gain, network, single_latent, interaction = self.module.memory_parts(
            z_all[pre], table.log_library[pre], groups, len(chosen), actions, diff, z_mean, exclude=idx
        )
        target = self._deltas[idx]
        # The memory learns leave-one-out retrieval on its own: the direction of what it must retrieve
        # (weighted by its squared size, so noise-level responses count little) and, separately, its scale.
        # The latent path learns what the memory leaves over; for a combination of measured singles that
        # is the interaction (the latent path's own predictions of those singles are swapped for them).
        rest = target - measured
        direction_loss = retrieval_direction_loss(retrieved, rest)
        scale_loss = F.mse_loss(gain * retrieved.detach(), rest, reduction="sum")
        memory = (gain * retrieved + measured + network).detach()
        latent_loss = F.mse_loss(memory + single_latent + interaction, target, reduction="sum")
        return (direction_loss + scale_loss + latent_loss) / len(chosen)

    @torch.no_grad()
    def _validate(self) -> float:
        self.module.eval()
        parts, target = self._val_parts()
        return float(pearson_rows(self.module.combine(parts), target).mean())

    def _fit_retrieval(self) -> None:
        """Refit the memory's retrieval sharpness, gains and edge weights (:func:`fit_retrieval`)."""
        table = self.data.train
        scored = targeted_gene_mask(table.conditions, self.data.genes, self._deltas.shape[1])
        fit = fit_retrieval(self.module, self._deltas, scored)
        if self.history:
            self.history[-1].update(asdict(fit))

    @torch.no_grad()
    def _fit_gates(self) -> None:
        """Scales of the latent path, fitted on the validation conditions by least squares over their scored
        genes (targeted genes left out) and clipped to [0, 1].

        ``latent_gate`` scales the latent Δ of targets not measured in training (fitted on the validation
        singles of such targets, unseen like the test ones, beside a free rescaling of their retrieved Δ, so
        that the gate counts only what the latent path adds to the retrieval's direction; 1 without any);
        then ``combination_gate`` the predicted interaction of combinations (fitted on the validation
        combinations; 0, the additive expectation, without any).
        """
        latent_gate, combination_gate = 1.0, 0.0
        if hasattr(self, "_val_actions"):
            (retrieved, measured, gain, network, single_latent, interaction), target = self._val_parts()
            scored = targeted_gene_mask(self.data.val.conditions, self.data.genes, target.shape[1])
            rest = target - measured
            memory = gain * retrieved + network
            single = self._val_actions.token_mask.sum(1) == 1
            unmeasured = single & (single_latent.abs().sum(1) > 0)  # measured targets have no latent part
            if bool(unmeasured.any()):
                latent_gate = clipped_scale(
                    single_latent[unmeasured], rest[unmeasured], scored[unmeasured], memory[unmeasured]
                )
            if bool((~single).any()):
                rest = rest - memory - latent_gate * single_latent
                combination_gate = clipped_scale(interaction[~single], rest[~single], scored[~single])
        self.module.effect.latent_gate.fill_(latent_gate)
        self.module.effect.combination_gate.fill_(combination_gate)
        if self.history:
            self.history[-1].update(
                latent_gate=latent_gate, combination_gate=combination_gate, **self.shrinkage
            )

    def _val_parts(self) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Memory parts (:meth:`BioJepaModule.memory_parts`) of the validation conditions and their Δs."""
        val = self.data.val
        assert val is not None
        z_val = self.latents("val")
        sampler = ControlSampler(val.context, val.batch, val.is_control)
        rng = np.random.default_rng(0)
        pre = [sampler.sample(c.context, 256, rng) for c in val.conditions]
        groups = torch.arange(len(pre)).repeat_interleave(256)
        pre_idx = np.concatenate(pre)
        z_pre, lib = z_val[pre_idx], val.log_library[pre_idx]
        diff, z_mean = self.module.decoded_delta(z_pre, lib, groups, len(pre), self._val_actions)
        parts = self.module.memory_parts(z_pre, lib, groups, len(pre), self._val_actions, diff, z_mean)
        return parts, self._val_deltas

    def _track_best(self, record: dict) -> bool:
        """Keep the best validation state; return True when patience is exhausted (early stop)."""
        score = record.get("val_pearson_delta")
        if score is None:
            return False
        if score > self._best_score:
            self._best_score, self._stale = score, 0
            self._best = {k: v.clone() for k, v in self.module.state_dict().items()}
        else:
            self._stale += 1
        record["best_val_pearson_delta"] = self._best_score
        return self._stale >= self.config.dynamics.patience

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, stage_index: int, next_epoch: int, optimizer: torch.optim.Optimizer) -> None:
        if self.checkpoint_dir is None:
            return
        tensors = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        if self._best is not None:
            tensors.update({f"best.{k}": v for k, v in self._best.items()})
        if self.teacher is not None and stage_index == 0:
            # the teacher only matters until pretraining ends
            tensors.update({f"teacher.{k}": v for k, v in self.teacher.encoder.state_dict().items()})
        opt_tensors, opt_meta = optimizer_to_tensors(optimizer, "optimizer")
        tensors.update(opt_tensors)
        meta = {
            **self.checkpoint_meta,
            "position": [stage_index, next_epoch],
            "history": self.history,
            "optimizer": opt_meta,
            "best_score": None if self._best is None else self._best_score,
            "stale": self._stale,
        }
        save_checkpoint(self.checkpoint_dir, LAST, tensors, meta)

    def _restore(self) -> tuple[tuple[int, int], tuple[dict, dict] | None]:
        if self.checkpoint_dir is None:
            raise CheckpointError("resume needs a checkpoint directory")
        tensors, meta = load_checkpoint(self.checkpoint_dir, LAST)
        for key in ("config", "model_config"):
            if key in self.checkpoint_meta and meta.get(key) != self.checkpoint_meta[key]:
                raise CheckpointError(
                    f"the checkpoint in {self.checkpoint_dir} was written with a different {key}; resume "
                    "with the same data, split and config, or start a new output directory"
                )
        state = {k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")}
        try:
            self.module.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint weights do not fit the model: {err}") from err
        best = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")}
        self._best = best or None
        self._best_score = -np.inf if meta["best_score"] is None else meta["best_score"]
        self._stale = meta["stale"]
        self.history = list(meta["history"])
        stage_index, epoch = meta["position"]
        self._restore_teacher(tensors, stage_index)
        for s in range(stage_index):
            self._freeze_after(STAGES[s])
        if stage_index < len(STAGES) and epoch >= self.epochs(STAGES[stage_index]):
            self._freeze_after(STAGES[stage_index])
            return (stage_index + 1, 0), None
        return (stage_index, epoch), (tensors, meta["optimizer"])

    def _restore_teacher(self, tensors: dict[str, torch.Tensor], stage_index: int) -> None:
        """Load the EMA teacher saved with a checkpoint taken during pretraining."""
        if self.teacher is None or stage_index > 0:
            return
        state = {k[len("teacher.") :]: v for k, v in tensors.items() if k.startswith("teacher.")}
        if not state:
            raise CheckpointError(
                f"the checkpoint in {self.checkpoint_dir} holds no EMA teacher weights; it was written with "
                'pretrain.teacher = "none": resume with that config or start a new output directory'
            )
        try:
            self.teacher.encoder.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint teacher weights do not fit the model: {err}") from err
