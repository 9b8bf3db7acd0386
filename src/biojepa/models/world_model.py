"""``WorldModel``: the user-facing class over the pure-torch :class:`BioJepaModule` (model/module split)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import torch

from biojepa.data.schema import CONTROL, PERTURBATION_TYPES, UNS_KEY, Condition, join_perturbation
from biojepa.errors import CheckpointError, DataError
from biojepa.models.actions import ActionVocabulary, PriorLookup
from biojepa.models.calibration import fit_variance_scale
from biojepa.models.module import BioJepaModule, ModelConfig
from biojepa.train.checkpoints import load_checkpoint, save_checkpoint
from biojepa.train.config import TrainConfig, default_config
from biojepa.train.data import CellTable, ControlSampler
from biojepa.train.loop import EpochCallback, FitData, Trainer

MODEL_NAME = "model"
# effect-memory buffers added with the prior network (absent from models saved before it)
PRIOR_NETWORK_BUFFERS = ("effect.network_weight", "effect.novel_gain_ratio", "effect.novel_network_weight")
ActionSpec = str | Condition


def parse_actions(spec: str | Sequence[ActionSpec], perturbation_type: str) -> list[Condition]:
    """``"STAT1,JAK2+IRF1"`` or a list of labels / :class:`Condition` → conditions (context left empty)."""
    items = [s for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec)
    if not items:
        raise DataError("no perturbations given; pass e.g. 'STAT1,JAK2+IRF1'")
    out = []
    for item in items:
        if isinstance(item, Condition):
            out.append(item)
        else:
            label = join_perturbation(str(item).split("+"))
            out.append(Condition(label, "", "control" if label == CONTROL else perturbation_type))
    return out


class WorldModel:
    """Action-conditioned JEPA world model of the cell.

    ``fit`` learns from prepared AnnData (log-normalised, canonical obs); ``predict`` returns the predicted
    post-intervention expression of given control cells as AnnData; ``embed`` gives cell latents.
    """

    def __init__(self, config: TrainConfig | None = None, priors: Any | None = None) -> None:
        self.config = config or default_config()
        self.priors = priors
        self.module: BioJepaModule | None = None
        self.vocab: ActionVocabulary | None = None
        self.genes: list[str] = []
        self.action_labels: list[str] = []
        self.default_type = "crispr_ko"
        self.history: list[dict] = []
        self.memory_conditions: list[Condition] = []
        self.variance_scale: torch.Tensor | None = None  # per gene, fitted on validation cells

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        adata: ad.AnnData,
        train_mask: np.ndarray | None = None,
        val_mask: np.ndarray | None = None,
        *,
        out: str | Path | None = None,
        resume: bool = False,
        on_epoch: EpochCallback | None = None,
    ) -> WorldModel:
        """Train on the cells in ``train_mask`` plus every control cell; ``val_mask`` cells pick the epoch.

        Without masks all perturbed cells train and there is no validation. With ``out`` each epoch is
        checkpointed there and ``resume=True`` continues the last checkpoint; the final model is saved too.
        The validation cells also calibrate the predictive variance (:func:`fit_variance_scale`); without
        them the model stays uncalibrated.
        """
        torch.manual_seed(self.config.seed)
        table = CellTable.from_anndata(adata, list(map(str, adata.var_names)))
        n = adata.n_obs
        train_mask = ~table.is_control if train_mask is None else np.asarray(train_mask, dtype=bool)
        if train_mask.shape != (n,) or (val_mask is not None and np.shape(val_mask) != (n,)):
            raise DataError(f"train/val masks must be boolean arrays with one entry per cell ({n})")
        train = table.subset(train_mask | table.is_control)
        if not train.conditions:
            raise DataError("no perturbed training cells: the training mask selects only control cells")
        val = None
        if val_mask is not None and np.asarray(val_mask, dtype=bool).any():
            val = table.subset(np.asarray(val_mask, dtype=bool) | table.is_control)
        self.genes = list(map(str, adata.var_names))
        types = pd.Series([c.perturbation_type for c in train.conditions])
        self.default_type = str(types.mode().iloc[0])
        self.action_labels = sorted({c.perturbation for c in train.conditions} | {CONTROL})
        self.memory_conditions = list(train.conditions)
        self._build(sorted({t for c in train.conditions for t in c.targets}), self._smiles(adata))
        assert self.module is not None and self.vocab is not None
        out_dir = Path(out) if out is not None else None
        trainer = Trainer(
            self.module,
            self.vocab,
            self.config,
            FitData(train, val, self.genes),
            self.action_labels,
            checkpoint_dir=out_dir,
            checkpoint_meta=self._meta(),
            on_epoch=on_epoch,
        )
        self.history = trainer.run(resume=resume)
        self.variance_scale = None
        if val is not None:
            self.variance_scale = fit_variance_scale(
                self, adata[np.asarray(val_mask, dtype=bool) | table.is_control]
            )
        if out_dir is not None:
            self.save(out_dir)
        return self

    def _build(self, targets: list[str], smiles: dict[str, str]) -> None:
        lookup, network_lookup = None, None
        prior_dim = 0
        if self.config.prior_kinds:
            priors = self._gene_priors()
            lookup, prior_dim = priors.lookup, priors.dim
            network_lookup = self._network_lookup(priors)
        self.vocab = ActionVocabulary(
            targets,
            prior_dim,
            smiles=smiles,
            prior_lookup=lookup,
            network_lookup=network_lookup,
            network_width=len(self.genes) if network_lookup is not None else 0,
        )
        self.vocab.add_priors(targets)
        model_config = ModelConfig(
            n_genes=len(self.genes),
            n_targets=self.vocab.n_targets,
            n_actions=len(self.action_labels),
            n_memory=len(self.memory_conditions),
            prior_dim=prior_dim,
            **self.config.model,
        )
        self.module = BioJepaModule(model_config)

    def _gene_priors(self) -> Any:
        if self.priors is None:
            from biojepa.priors import load_gene_priors

            self.priors = load_gene_priors(kinds=tuple(self.config.prior_kinds))
        return self.priors

    def _network_lookup(self, priors: Any) -> PriorLookup | None:
        """Known signed edges of targets onto the model's genes, when the priors carry a network."""
        network = getattr(priors, "network", None)
        if network is None:
            return None
        genes = list(self.genes)
        return lambda names: network.responses(names, genes)

    @staticmethod
    def _smiles(adata: ad.AnnData) -> dict[str, str]:
        if "smiles" not in adata.obs.columns:
            return {}
        pairs = adata.obs.loc[adata.obs["perturbation_type"] == "compound", ["perturbation", "smiles"]]
        return {
            str(p): str(s) for p, s in pairs.drop_duplicates().itertuples(index=False) if isinstance(s, str)
        }

    def _meta(self) -> dict:
        assert self.module is not None and self.vocab is not None
        vocab_meta, _ = self.vocab.state()
        return {
            "config": self.config.to_dict(),
            "model_config": self.module.config.to_dict(),
            "genes": self.genes,
            "action_labels": self.action_labels,
            "default_type": self.default_type,
            "vocab": vocab_meta,
            "memory_conditions": [
                [c.perturbation, c.context, c.perturbation_type, c.dose, None if np.isnan(c.time) else c.time]
                for c in self.memory_conditions
            ],
        }

    def _require_fitted(self) -> BioJepaModule:
        if self.module is None or self.vocab is None:
            raise DataError("the model is not trained yet; call fit() or WorldModel.load(path) first")
        return self.module

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def embed(self, cells: ad.AnnData) -> np.ndarray:
        """Latent state of each cell (cells × latent_dim); genes the model lacks are masked."""
        module = self._require_fitted().eval()
        table = CellTable.from_anndata(cells, self.genes)
        return module.encode(table.x, table.gene_mask, table.log_library).numpy()

    def resolve_actions(self, actions: str | Sequence[ActionSpec]) -> tuple[list[Condition], dict[str, str]]:
        """Parse actions and report how each target is represented (``seen``, ``prior``, ``smiles``)."""
        self._require_fitted()
        assert self.vocab is not None
        if self.vocab.prior_lookup is None and self.vocab.prior_dim > 0:
            self.vocab.prior_lookup = self._gene_priors().lookup
        if self.vocab.network_lookup is None and self.vocab.network_width > 0:
            self.vocab.network_lookup = self._network_lookup(self._gene_priors())
        conditions = parse_actions(actions, self.default_type)
        for cond in conditions:
            if cond.perturbation_type not in PERTURBATION_TYPES:
                raise DataError(
                    f"unknown perturbation_type {cond.perturbation_type!r}; allowed: {PERTURBATION_TYPES}"
                )
        return conditions, self.vocab.check_known(conditions)

    @torch.no_grad()
    def predict(self, cells: ad.AnnData, actions: str | Sequence[ActionSpec]) -> ad.AnnData:
        """Predicted post-intervention expression of every cell under every action.

        ``cells`` are prepared control (pre-state) cells; ``actions`` is ``"STAT1,JAK2+IRF1"`` or a list of
        labels / :class:`Condition`. Returns AnnData with one row per (action, cell): ``X`` = predicted
        log-normalised mean, ``layers["variance"]`` = variance of the Gaussian ``L`` whose censoring
        ``max(0, L)`` with mean ``X`` is the predicted distribution (:mod:`biojepa.models.calibration`),
        calibrated on validation cells when ``uns["biojepa"]["calibrated"]``; obs = the canonical columns plus
        ``pre_cell``; ``uns["biojepa"]["targets"]`` says for each target whether it was seen in training or
        is predicted from priors.
        """
        module = self._require_fitted().eval()
        conditions, status = self.resolve_actions(actions)
        table = CellTable.from_anndata(cells, self.genes)
        z = module.encode(table.x, table.gene_mask, table.log_library)
        lib = module.standardised_library(table.log_library)
        base_mean, base_var = module.decoder(z, lib)
        assert self.vocab is not None
        batch = self.vocab.encode(conditions)
        means, variances, obs = [], [], []
        contexts = pd.Series(table.context)
        for k, cond in enumerate(conditions):
            single = batch.index(torch.tensor([k]))
            if cond.is_control:
                mean, var = base_mean, base_var
            else:
                z_post, _ = module.transition(z, single, torch.zeros(len(z), dtype=torch.long))
                mean, var = module.decoder(z_post, lib)
                for rows in contexts.groupby(contexts).indices.values():
                    diff = (mean[rows] - base_mean[rows]).mean(0, keepdim=True)
                    one_group = torch.zeros(len(rows), dtype=torch.long)
                    z_mean = z[rows].mean(0, keepdim=True)
                    parts = module.memory_parts(
                        z[rows], table.log_library[rows], one_group, 1, single, diff, z_mean
                    )
                    # each cell keeps its own decoded response; the memory shifts the group's mean Δ
                    mean[rows] = mean[rows] + module.combine(parts) - diff
            means.append(mean)
            variances.append(var)
            frame = cells.obs[["context", "batch"]].astype(str).copy()
            frame.insert(0, "pre_cell", cells.obs_names.astype(str))
            frame.insert(0, "time", cond.time)
            frame.insert(0, "dose", cond.dose)
            frame.insert(0, "perturbation_type", cond.perturbation_type)
            frame.insert(0, "perturbation", cond.perturbation)
            obs.append(frame)
        frame = pd.concat(obs, ignore_index=True)
        frame.index = frame.index.astype(str)
        variance = torch.cat(variances)
        if self.variance_scale is not None:
            variance = variance * self.variance_scale
        out = ad.AnnData(
            X=torch.cat(means).numpy(),
            obs=frame,
            var=pd.DataFrame(index=pd.Index(self.genes)),
            layers={"variance": variance.numpy()},
        )
        out.uns[UNS_KEY] = {"log_normalised": True, "predicted": True, "targets": status}
        out.uns[UNS_KEY]["calibrated"] = self.variance_scale is not None
        return out

    @torch.no_grad()
    def predict_deltas(
        self, conditions: Sequence[Condition], controls: ad.AnnData, n_cells: int = 512, strict: bool = True
    ) -> np.ndarray:
        """Predicted pseudobulk Δ (vs the control mean of the same context) of each condition.

        ``controls`` are prepared control cells; up to ``n_cells`` of each condition's context are used.
        ``strict=False`` predicts targets that are neither seen nor covered by priors from their mode alone.
        """
        module = self._require_fitted().eval()
        assert self.vocab is not None
        table = CellTable.from_anndata(controls, self.genes)
        table.condition_index[:] = -1
        sampler = ControlSampler(table.context, table.batch, table.is_control)
        rng = np.random.default_rng(0)
        pre = []
        for cond in conditions:
            pool = sampler.require(cond.context)
            pre.append(pool if len(pool) <= n_cells else rng.choice(pool, n_cells, replace=False))
        groups = torch.cat([torch.full((len(p),), i) for i, p in enumerate(pre)])
        idx = np.concatenate(pre)
        z = module.encode(table.x[idx], table.gene_mask[idx], table.log_library[idx])
        actions = self.vocab.encode(list(conditions), strict=strict)
        delta = module.pseudobulk_delta(z, table.log_library[idx], groups, len(conditions), actions)
        return delta.numpy()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``model.safetensors`` + ``model.json`` (config, genes, vocabulary, history) atomically."""
        module = self._require_fitted()
        assert self.vocab is not None
        _, vocab_tensors = self.vocab.state()
        tensors = {f"module.{k}": v for k, v in module.state_dict().items()} | vocab_tensors
        calibrated = self.variance_scale is not None
        if calibrated:
            tensors["calibration.variance_scale"] = self.variance_scale
        meta = {**self._meta(), "history": self.history, "calibrated": calibrated}
        save_checkpoint(path, MODEL_NAME, tensors, meta)

    @classmethod
    def load(cls, path: str | Path, priors: Any | None = None) -> WorldModel:
        """Load a model written by :meth:`save`; corrupt files raise CheckpointError."""
        tensors, meta = load_checkpoint(path, MODEL_NAME)
        try:
            model = cls(TrainConfig.from_dict(meta["config"]), priors=priors)
            model.genes = list(meta["genes"])
            model.action_labels = list(meta["action_labels"])
            model.default_type = meta["default_type"]
            model.history = list(meta.get("history", []))
            model.vocab = ActionVocabulary.from_state(meta["vocab"], tensors)
            model.module = BioJepaModule(ModelConfig.from_dict(meta["model_config"]))
            state = {k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")}
            # a model saved before the prior network lacks its fitted weights: keep the as-trained values
            for key in PRIOR_NETWORK_BUFFERS:
                state.setdefault(key, model.module.state_dict()[key])
            model.module.load_state_dict(state)
            model.memory_conditions = [
                Condition(p, c, t, float(d), float("nan") if h is None else float(h))
                for p, c, t, d, h in meta["memory_conditions"]
            ]
            model.module.memory_actions = model.vocab.encode(model.memory_conditions, strict=False)
            if meta.get("calibrated", False):
                model.variance_scale = tensors["calibration.variance_scale"]
        except (KeyError, TypeError, RuntimeError, DataError) as err:
            raise CheckpointError(f"{path} does not hold a consistent biojepa model: {err}") from err
        if priors is not None:
            model.vocab.prior_lookup = priors.lookup
            if model.vocab.network_width:
                model.vocab.network_lookup = model._network_lookup(priors)
        model.module.eval()
        return model
