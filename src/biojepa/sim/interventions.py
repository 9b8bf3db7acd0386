"""Interventions: guides for CRISPRi / CRISPR-KO / CRISPRa, compounds with dose–response.

A condition expands into *variants*: the distinct cell states it produces (one per guide, or per guide
combination for doubles; knockouts also split into edited and unedited cells). Each variant has a
weight (its share of the condition's cells), a transcription multiplier ``mrna`` and a regulatory
activity multiplier ``activity`` per gene.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biojepa.data.schema import GENETIC_TYPES, Condition
from biojepa.errors import DataError
from biojepa.sim.config import InterventionConfig
from biojepa.sim.grn import Network


@dataclass(frozen=True)
class Guides:
    """Per gene and guide: CRISPRi knockdown / KO editing efficiency, and CRISPRa fold activation."""

    efficiency: np.ndarray  # (G, n_guides) in [0, 1]
    fold: np.ndarray  # (G, n_guides) ≥ 1
    ineffective: np.ndarray  # (G,) bool: every guide of the gene barely works


def make_guides(n_genes: int, cfg: InterventionConfig, rng: np.random.Generator) -> Guides:
    """Draw guide efficiencies (Beta) and activation folds (log-normal); a fraction of genes gets duds."""
    shape = (n_genes, cfg.guides_per_gene)
    efficiency = rng.beta(*cfg.crispri_efficiency_beta, size=shape)
    fold = 1.0 + (cfg.crispra_fold_median - 1.0) * rng.lognormal(0.0, cfg.crispra_fold_sd_log, size=shape)
    ineffective = rng.random(n_genes) < cfg.ineffective_fraction
    efficiency[ineffective] = rng.uniform(0.0, 0.1, size=(int(ineffective.sum()), cfg.guides_per_gene))
    fold[ineffective] = rng.uniform(1.0, 1.2, size=(int(ineffective.sum()), cfg.guides_per_gene))
    return Guides(efficiency=efficiency, fold=fold, ineffective=ineffective)


@dataclass(frozen=True)
class Compounds:
    """A compound library: target genes with IC50s, shared Hill slope and maximal inhibition, descriptors."""

    names: tuple[str, ...]
    targets: tuple[np.ndarray, ...]  # gene indices, on-targets first
    ic50_nm: tuple[np.ndarray, ...]
    n_on_target: np.ndarray  # (C,)
    hill: np.ndarray  # (C,)
    emax: np.ndarray  # (C,)
    descriptors: np.ndarray  # (C, D): informative about the target profile, plus noise

    def inhibition(self, index: int, dose_nm: float) -> tuple[np.ndarray, np.ndarray]:
        """Target genes and their fractional activity loss at ``dose_nm`` (Hill dose–response)."""
        ratio = (dose_nm / self.ic50_nm[index]) ** self.hill[index]
        return self.targets[index], self.emax[index] * ratio / (1.0 + ratio)


def make_compounds(network: Network, cfg: InterventionConfig, rng: np.random.Generator) -> Compounds:
    """Compounds aimed at regulators (1–2 on-targets, hubs more often, as drug targets tend to be) with
    weaker off-targets anywhere in the genome."""
    regulators = np.flatnonzero(network.is_regulator)
    out_degree = np.bincount(network.edge_source, minlength=network.n_genes)[regulators] + 1.0
    hub_weight = out_degree / out_degree.sum()
    n = cfg.n_compounds
    targets, ic50s, n_on = [], [], np.zeros(n, dtype=int)
    profile = np.zeros((n, network.n_genes))
    for c in range(n):
        n_on[c] = 1 if rng.random() < 0.7 else 2
        on = rng.choice(regulators, size=min(n_on[c], len(regulators)), replace=False, p=hub_weight)
        off = np.setdiff1d(rng.choice(network.n_genes, size=rng.integers(0, 5), replace=False), on)
        ic50_on = cfg.ic50_median_nm * rng.lognormal(0.0, 0.8, len(on))
        ic50_off = ic50_on.min() * rng.lognormal(np.log(30.0), 0.8, len(off))
        targets.append(np.concatenate([on, off]))
        ic50s.append(np.concatenate([ic50_on, ic50_off]))
        profile[c, targets[-1]] = np.maximum(0.0, 9.0 - np.log10(ic50s[-1]))
    projection = rng.standard_normal((network.n_genes, cfg.descriptor_dim)) / np.sqrt(cfg.descriptor_dim)
    descriptors = profile @ projection + 0.3 * rng.standard_normal((n, cfg.descriptor_dim))
    return Compounds(
        names=tuple(f"CPD{c + 1:03d}" for c in range(n)),
        targets=tuple(targets),
        ic50_nm=tuple(ic50s),
        n_on_target=n_on,
        hill=rng.uniform(0.8, 2.0, n),
        emax=rng.uniform(0.6, 1.0, n),
        descriptors=descriptors,
    )


@dataclass(frozen=True)
class Variants:
    """Cell states produced by a list of conditions (rows), with their shares and multipliers."""

    condition: np.ndarray  # (V,) index into the condition list
    weight: np.ndarray  # (V,) share of the condition's cells; sums to 1 per condition
    guide: tuple[str, ...]  # (V,) guide label(s), "" for control and compounds
    efficiency: np.ndarray  # (V,) mean guide efficiency (NaN when no guide)
    mrna: np.ndarray  # (V, G)
    activity: np.ndarray  # (V, G)


def expand(
    conditions: Sequence[Condition],
    gene_index: dict[str, int],
    guides: Guides,
    compounds: Compounds,
    ko_residual_mrna: float,
) -> Variants:
    """The variants of every condition (control conditions give one unperturbed variant)."""
    compound_index = {name: i for i, name in enumerate(compounds.names)}
    rows: list[tuple[int, float, str, float, dict[int, float], dict[int, float]]] = []
    for c, cond in enumerate(conditions):
        if cond.is_control:
            rows.append((c, 1.0, "", np.nan, {}, {}))
        elif cond.perturbation_type == "compound":
            if cond.perturbation not in compound_index:
                raise DataError(
                    f"unknown compound {cond.perturbation!r}; the library has {compounds.names[:3]}…"
                )
            if not cond.dose > 0:
                raise DataError(
                    f"compound condition {cond.perturbation!r} needs a dose > 0 nM, got {cond.dose}"
                )
            genes, inhibition = compounds.inhibition(compound_index[cond.perturbation], cond.dose)
            activity: dict[int, float] = {}
            for g, inh in zip(genes.tolist(), inhibition, strict=True):
                activity[g] = activity.get(g, 1.0) * (1.0 - inh)
            rows.append((c, 1.0, "", np.nan, {}, activity))
        elif cond.perturbation_type in GENETIC_TYPES:
            rows.extend(_genetic_rows(c, cond, gene_index, guides, ko_residual_mrna))
        else:
            raise DataError(
                f"condition {cond.perturbation!r} has perturbation_type {cond.perturbation_type!r}; "
                "use control, crispri, crispr_ko, crispra or compound"
            )
    n_genes = guides.efficiency.shape[0]
    mrna, activity_matrix = np.ones((len(rows), n_genes)), np.ones((len(rows), n_genes))
    for v, (*_, m, a) in enumerate(rows):
        mrna[v, list(m)] = list(m.values())
        activity_matrix[v, list(a)] = list(a.values())
    return Variants(
        condition=np.array([r[0] for r in rows], dtype=np.int64),
        weight=np.array([r[1] for r in rows]),
        guide=tuple(r[2] for r in rows),
        efficiency=np.array([r[3] for r in rows]),
        mrna=mrna,
        activity=activity_matrix,
    )


def _genetic_rows(
    c: int, cond: Condition, gene_index: dict[str, int], guides: Guides, ko_residual: float
) -> list[tuple[int, float, str, float, dict[int, float], dict[int, float]]]:
    """Per target: one option per guide (KO: edited / unedited); doubles take the product of options."""
    per_target = []
    for name in cond.targets:
        if name not in gene_index:
            raise DataError(
                f"gene {name!r} of condition {cond.perturbation!r} is not in the simulated network"
            )
        g = gene_index[name]
        k = guides.efficiency.shape[1]
        options = []
        for j in range(k):
            eff, label = float(guides.efficiency[g, j]), f"{name}_g{j + 1}"
            if cond.perturbation_type == "crispri":
                options.append((1.0 / k, label, eff, {g: 1.0 - eff}, {}))
            elif cond.perturbation_type == "crispra":
                options.append((1.0 / k, label, eff, {g: float(guides.fold[g, j])}, {}))
            else:
                options.append((eff / k, label, eff, {g: ko_residual}, {g: 0.0}))
                options.append(((1.0 - eff) / k, label, eff, {}, {}))
        per_target.append(options)
    rows = []
    for combo in itertools.product(*per_target):
        mrna: dict[int, float] = {}
        activity: dict[int, float] = {}
        for _, _, _, m, a in combo:
            mrna.update(m)
            activity.update(a)
        weight = float(np.prod([o[0] for o in combo]))
        if weight > 0:
            label = "+".join(o[1] for o in combo)
            rows.append((c, weight, label, float(np.mean([o[2] for o in combo])), mrna, activity))
    return rows
