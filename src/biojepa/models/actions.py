"""Action encoder: an intervention is a set of tokens (targets × mode × dose × time), pooled to one vector.

A token sums a learned embedding of a target seen in training, projected frozen prior features of the
target (gene priors, or a Morgan fingerprint for a compound with known SMILES) so that unseen targets get
informative input, a mode embedding and Fourier features of log dose and log time. A token also carries
its target's known signed regulatory edges onto the model's genes (the prior network), which the effect
head reads off in gene space.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from biojepa.data.schema import PERTURBATION_TYPES, Condition
from biojepa.errors import DataError
from biojepa.priors.network import MODE_SIGNS

N_FOURIER = 4
DOSE_TIME_FEATURES = 3 + 4 * N_FOURIER

PriorLookup = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]
_MODE_SIGN = torch.tensor([MODE_SIGNS[mode] for mode in PERTURBATION_TYPES])


def morgan_fingerprint(smiles: str, n_bits: int = 1024, radius: int = 2) -> np.ndarray:
    """Morgan (ECFP-like) bit fingerprint of a molecule; raises :class:`DataError` on unparsable SMILES."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise DataError(f"RDKit cannot parse the SMILES {smiles!r}; check the compound's structure string")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    return generator.GetFingerprintAsNumPy(mol).astype(np.float32)


def dose_time_features(dose: float, time: float) -> np.ndarray:
    """``[log1p dose, log1p time, time known, sin/cos Fourier features of both]`` for one token."""
    known = not math.isnan(time)
    values = np.array([math.log1p(max(dose, 0.0)), math.log1p(max(time, 0.0)) if known else 0.0])
    freqs = 2.0 ** np.arange(N_FOURIER) / 4.0
    angles = np.outer(values, freqs).ravel()
    return np.concatenate([values, [float(known)], np.sin(angles), np.cos(angles)]).astype(np.float32)


@dataclass
class ActionBatch:
    """Padded tensors for a batch of interventions (B actions × T tokens)."""

    target_ids: Tensor
    priors: Tensor
    has_prior: Tensor
    fingerprints: Tensor
    has_fingerprint: Tensor
    modes: Tensor
    dose_time: Tensor
    token_mask: Tensor
    network: Tensor  # B × T × genes: the target's known signed edges onto the model's genes (width 0: none)

    def network_response(self) -> Tensor:
        """Each token's expected direction of change in gene space (B × T × genes): its target's known edge
        signs, turned by the mode (loss of function moves regulated genes against the signs)."""
        sign = _MODE_SIGN[self.modes] * self.token_mask.float()
        return self.network * sign.unsqueeze(-1)

    def target_features(self) -> Tensor:
        """Frozen features of each token (B × T × F): its prior vector and its fingerprint."""
        priors = self.priors * self.has_prior.unsqueeze(-1)
        fingerprints = self.fingerprints * self.has_fingerprint.unsqueeze(-1)
        return torch.cat([priors, fingerprints], dim=-1)

    def single_target_ids(self) -> Tensor:
        """Target id of each one-token intervention, -1 for combinations, control and unseen targets."""
        single = self.token_mask.sum(1) == 1
        return torch.where(single & (self.target_ids[:, 0] > 0), self.target_ids[:, 0], -1)

    def token(self, j: int) -> ActionBatch:
        """The one-token interventions made of token ``j`` of each action (absent tokens stay masked)."""
        return ActionBatch(**{k: v[:, j : j + 1] for k, v in self.__dict__.items()})

    def index(self, idx: Tensor) -> ActionBatch:
        """Select (and repeat) actions by index."""
        return ActionBatch(**{k: v[idx] for k, v in self.__dict__.items()})


class ActionVocabulary:
    """Maps intervention targets to ids (targets seen in training) and frozen features (priors, SMILES)."""

    def __init__(
        self,
        targets: Sequence[str],
        prior_dim: int,
        fingerprint_bits: int = 1024,
        smiles: dict[str, str] | None = None,
        prior_lookup: PriorLookup | None = None,
        network_lookup: PriorLookup | None = None,
        network_width: int = 0,
    ) -> None:
        self.targets = sorted(set(targets))
        self.index = {t: i + 1 for i, t in enumerate(self.targets)}  # 0 = unseen
        self.prior_dim = prior_dim
        self.fingerprint_bits = fingerprint_bits
        self.smiles = dict(smiles or {})
        self.prior_lookup = prior_lookup
        self.prior_table: dict[str, np.ndarray] = {}
        self._no_prior: set[str] = set()  # names the prior source was asked about and does not know
        # known signed edges of each target onto the model's ``network_width`` genes (only targets with any)
        self.network_lookup = network_lookup
        self.network_width = network_width
        self.network_table: dict[str, np.ndarray] = {}
        self._network_asked: set[str] = set()

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    def add_priors(self, names: Sequence[str]) -> None:
        """Fetch and cache prior features and network edges for ``names`` (genes the prior source does not
        know are skipped)."""
        self._add_network([n for n in dict.fromkeys(names) if n not in self.smiles])
        missing = [
            n
            for n in dict.fromkeys(names)
            if n not in self.prior_table and n not in self.smiles and n not in self._no_prior
        ]
        if not missing or self.prior_lookup is None or self.prior_dim == 0:
            return
        features, known = self.prior_lookup(missing)
        for name, row, ok in zip(missing, np.asarray(features), np.asarray(known), strict=True):
            if ok:
                self.prior_table[name] = np.asarray(row, dtype=np.float32)
            else:
                self._no_prior.add(name)

    def _add_network(self, names: list[str]) -> None:
        asked = [n for n in names if n not in self._network_asked]
        if not asked or self.network_lookup is None or self.network_width == 0:
            return
        rows, known = self.network_lookup(asked)
        for name, row, ok in zip(asked, np.asarray(rows), np.asarray(known), strict=True):
            self._network_asked.add(name)
            if ok:
                self.network_table[name] = np.asarray(row, dtype=np.float32)

    def covered(self, name: str) -> str | None:
        """How an intervention target is represented: seen, prior, smiles or None (unknown)."""
        if name in self.index:
            return "seen"
        if name in self.smiles:
            return "smiles"
        self.add_priors([name])
        return "prior" if name in self.prior_table else None

    def check_known(self, conditions: Sequence[Condition]) -> dict[str, str]:
        """Raise :class:`DataError` for targets neither seen in training nor covered by priors/SMILES."""
        status: dict[str, str] = {}
        names = sorted({t for c in conditions for t in c.targets})
        self.add_priors(names)
        unknown = []
        for name in names:
            how = self.covered(name)
            if how is None:
                unknown.append(name)
            else:
                status[name] = how
        if unknown:
            shown = ", ".join(self.targets[:50]) + (" …" if self.n_targets > 50 else "")
            raise DataError(
                f"unknown perturbation target(s) {unknown}: not seen in training and not covered by the gene "
                f"priors or SMILES. Targets seen in training: {shown}"
            )
        return status

    def encode(self, conditions: Sequence[Condition], strict: bool = True) -> ActionBatch:
        """Tensors for a list of interventions (the condition's context is ignored here).

        With ``strict`` an unknown target raises :class:`DataError`; otherwise it is encoded by its mode,
        dose and time only (a generic response), as validation and benchmark predictions need.
        """
        if strict:
            self.check_known(conditions)
        else:
            self.add_priors(sorted({t for c in conditions for t in c.targets}))
        n_tokens = max(1, max((len(c.targets) for c in conditions), default=1))
        b = len(conditions)
        ids = torch.zeros(b, n_tokens, dtype=torch.long)
        priors = torch.zeros(b, n_tokens, max(self.prior_dim, 1))
        has_prior = torch.zeros(b, n_tokens)
        fps = torch.zeros(b, n_tokens, self.fingerprint_bits)
        has_fp = torch.zeros(b, n_tokens)
        modes = torch.zeros(b, n_tokens, dtype=torch.long)
        dose_time = torch.zeros(b, n_tokens, DOSE_TIME_FEATURES)
        mask = torch.zeros(b, n_tokens, dtype=torch.bool)
        network = torch.zeros(b, n_tokens, self.network_width)
        for i, cond in enumerate(conditions):
            if cond.perturbation_type not in PERTURBATION_TYPES:
                raise DataError(
                    f"unknown perturbation_type {cond.perturbation_type!r}; allowed: {PERTURBATION_TYPES}"
                )
            features = torch.from_numpy(dose_time_features(float(cond.dose), float(cond.time)))
            for j, name in enumerate(cond.targets):
                ids[i, j] = self.index.get(name, 0)
                if name in self.prior_table:
                    priors[i, j] = torch.from_numpy(self.prior_table[name])
                    has_prior[i, j] = 1.0
                if name in self.smiles:
                    fps[i, j] = torch.from_numpy(morgan_fingerprint(self.smiles[name], self.fingerprint_bits))
                    has_fp[i, j] = 1.0
                if name in self.network_table:
                    network[i, j] = torch.from_numpy(self.network_table[name])
                modes[i, j] = PERTURBATION_TYPES.index(cond.perturbation_type)
                dose_time[i, j] = features
                mask[i, j] = True
        return ActionBatch(ids, priors, has_prior, fps, has_fp, modes, dose_time, mask, network)

    def state(self) -> tuple[dict, dict[str, Tensor]]:
        """JSON-able metadata and tensors (prior and network tables) that :meth:`from_state` restores."""
        names = sorted(self.prior_table)
        meta = {
            "targets": self.targets,
            "prior_dim": self.prior_dim,
            "fingerprint_bits": self.fingerprint_bits,
            "smiles": self.smiles,
            "prior_names": names,
            "network_width": self.network_width,
            "network_names": sorted(self.network_table),
        }
        tables = {
            "vocab.prior_table": _stack(self.prior_table, names, self.prior_dim),
            "vocab.network_table": _stack(self.network_table, meta["network_names"], self.network_width),
        }
        return meta, tables

    @classmethod
    def from_state(cls, meta: dict, tensors: dict[str, Tensor]) -> ActionVocabulary:
        vocab = cls(meta["targets"], meta["prior_dim"], meta["fingerprint_bits"], meta["smiles"])
        table = tensors["vocab.prior_table"].numpy()
        vocab.prior_table = {n: table[i] for i, n in enumerate(meta["prior_names"])}
        # models saved before the prior network existed hold no network table
        vocab.network_width = int(meta.get("network_width", 0))
        if vocab.network_width:
            network = tensors["vocab.network_table"].numpy()
            vocab.network_table = {n: network[i] for i, n in enumerate(meta["network_names"])}
        return vocab


def _stack(table: dict[str, np.ndarray], names: list[str], width: int) -> Tensor:
    rows = np.stack([table[n] for n in names]) if names else np.zeros((0, width))
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


class ActionEncoder(nn.Module):
    """Set encoder over intervention tokens → one action embedding per intervention.

    ``id_dropout`` hides the learned target identity during training so the prior path learns to carry the
    effect (what an unseen target relies on). ``blind=True`` is the perturbation-blind ablation: every
    non-control intervention maps to the same learned vector.
    """

    def __init__(
        self,
        n_targets: int,
        prior_dim: int,
        fingerprint_bits: int,
        dim: int = 128,
        id_dropout: float = 0.5,
        blind: bool = False,
    ) -> None:
        super().__init__()
        self.id_dropout = id_dropout
        self.blind = blind
        self.target_embedding = nn.Embedding(n_targets + 1, dim, padding_idx=0)
        self.prior_projection = nn.Sequential(
            nn.LayerNorm(max(prior_dim, 1)), nn.Linear(max(prior_dim, 1), dim)
        )
        self.fingerprint_projection = nn.Linear(fingerprint_bits, dim)
        self.mode_embedding = nn.Embedding(len(PERTURBATION_TYPES), dim)
        self.dose_time_projection = nn.Linear(DOSE_TIME_FEATURES, dim)
        self.token_mlp = nn.Sequential(nn.GELU(), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.set_mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.blind_token = nn.Parameter(0.02 * torch.randn(dim)) if blind else None

    def forward(self, batch: ActionBatch) -> Tensor:
        """One embedding per intervention."""
        mask = batch.token_mask.unsqueeze(-1).float()
        if self.blind_token is not None:
            return self.set_mlp(self.blind_token * mask.amax(dim=1))
        ids = batch.target_ids
        if self.training and self.id_dropout > 0:
            ids = ids.masked_fill(torch.rand(ids.shape) < self.id_dropout, 0)
        tokens = (
            self.target_embedding(ids)
            + self.mode_embedding(batch.modes)
            + self.dose_time_projection(batch.dose_time)
        )
        if batch.has_prior.any():
            tokens = tokens + self.prior_projection(batch.priors) * batch.has_prior.unsqueeze(-1)
        if batch.has_fingerprint.any():
            fingerprints = self.fingerprint_projection(batch.fingerprints)
            tokens = tokens + fingerprints * batch.has_fingerprint.unsqueeze(-1)
        return self.set_mlp((self.token_mlp(tokens) * mask).sum(dim=1))
