"""Signed gene regulatory networks: a built-in generator with biological shape, or DoRothEA topology.

An edge ``j → i`` carries a sign (activation / repression), a Hill coefficient and a half-saturation
constant. Edges into the same gene are grouped into *terms*: a single-edge term is an independent
input, a two-edge term is a cooperative (AND-like) input whose Hill factors multiply. The promoter
integrates its terms, ``u = Σ_terms weight · Π_edges hill(x_source)``, through its own saturating
response: production is ``basal + vmax · u^q / (u^q + U^q)``, so inputs that converge on a gene
combine non-additively (the source of synergy and buffering between perturbations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from biojepa.errors import DataError
from biojepa.sim.config import NetworkConfig

DOROTHEA_FILE = Path("tf_regulons_dorothea") / "dorothea_hs.tsv.gz"


@dataclass(frozen=True)
class Network:
    """A signed regulatory network with its kinetic parameters (arrays indexed by gene / edge / term)."""

    genes: tuple[str, ...]
    is_regulator: np.ndarray  # (G,) bool
    program: np.ndarray  # (G,) int, -1 for genes outside every co-regulated program
    edge_source: np.ndarray  # (E,) int
    edge_target: np.ndarray  # (E,) int
    edge_sign: np.ndarray  # (E,) +1 activation / -1 repression
    edge_hill: np.ndarray  # (E,) Hill coefficient
    edge_k: np.ndarray  # (E,) half-saturation constant (in units of the source's level)
    edge_term: np.ndarray  # (E,) index of the term the edge belongs to
    term_target: np.ndarray  # (T,) gene the term feeds
    term_weight: np.ndarray  # (T,) maximal production the term adds
    basal: np.ndarray  # (G,) production without any input
    promoter_vmax: np.ndarray  # (G,) maximal regulated production
    promoter_hill: np.ndarray  # (G,) cooperativity q of the promoter response
    promoter_half: np.ndarray  # (G,) input U giving half-maximal regulated production
    degradation: np.ndarray  # (G,) relative first-order decay rate (median 1)

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def is_passenger(self) -> np.ndarray:
        """Genes that neither regulate nor are regulated."""
        touched = np.zeros(self.n_genes, dtype=bool)
        touched[self.edge_source] = True
        touched[self.edge_target] = True
        return ~touched

    def adjacency(self) -> sp.csr_matrix:
        """Signed weights, regulator rows × target columns (``weight · sign`` of the edge's term)."""
        values = self.term_weight[self.edge_term] * self.edge_sign
        return sp.csr_matrix(
            (values, (self.edge_source, self.edge_target)), shape=(self.n_genes, self.n_genes)
        )

    def edges_frame(self) -> pd.DataFrame:
        """One row per edge: regulator, target, sign, Hill coefficient, K, term and its weight."""
        genes = np.asarray(self.genes)
        return pd.DataFrame(
            {
                "regulator": genes[self.edge_source],
                "target": genes[self.edge_target],
                "sign": self.edge_sign.astype(int),
                "hill": self.edge_hill,
                "k": self.edge_k,
                "term": self.edge_term,
                "weight": self.term_weight[self.edge_term],
                "cooperative": np.bincount(self.edge_term, minlength=len(self.term_target))[self.edge_term]
                > 1,
            }
        )


def generate_network(cfg: NetworkConfig, rng: np.random.Generator) -> Network:
    """Synthetic network: TF hierarchy with heavy-tailed out-degree, programs, FFLs, feedback, passengers.

    A fraction of regulators are paralogs: their targets are most of another regulator's, same signs,
    so the pair is redundant (the classic source of synergistic double knockdowns).
    """
    n = cfg.n_genes
    n_reg = max(2, round(n * cfg.regulator_fraction))
    n_pass = round(n * cfg.passenger_fraction)
    if n - n_reg - n_pass < 2:
        raise DataError(
            f"network of {n} genes leaves no room for regulated genes with regulator_fraction "
            f"{cfg.regulator_fraction} and passenger_fraction {cfg.passenger_fraction}; lower them"
        )
    roles = rng.permutation(n)
    regulators, targets = roles[:n_reg], roles[n_reg + n_pass :]
    layer = np.full(n, 99)
    layer[regulators] = rng.choice(3, size=n_reg, p=[0.25, 0.35, 0.4])
    layer[regulators[0]] = 0
    program = np.full(n, -1)
    program[targets] = rng.integers(cfg.n_programs, size=len(targets))
    program[regulators] = rng.integers(cfg.n_programs, size=n_reg)

    tail = rng.pareto(cfg.outdegree_tail, n_reg) + 1.0
    degree = np.maximum(1, np.round(cfg.mean_outdegree * tail / tail.mean())).astype(int)
    edges: dict[tuple[int, int], float] = {}
    for r, d in zip(regulators, degree, strict=True):
        pool = np.concatenate([targets, regulators[layer[regulators] > layer[r]]])
        home = pool[program[pool] == program[r]]
        n_home = min(len(home), rng.binomial(d, 0.7))
        chosen = set(rng.choice(home, size=n_home, replace=False).tolist())
        rest = np.setdiff1d(pool, list(chosen))
        chosen |= set(rng.choice(rest, size=min(len(rest), d - n_home), replace=False).tolist())
        for t in chosen:
            edges[(int(r), t)] = 1.0 if rng.random() < cfg.activation_fraction else -1.0
    children: dict[int, list[int]] = {}
    for src, dst in edges:
        children.setdefault(src, []).append(dst)
    for a, b in [e for e in edges if layer[e[1]] < 99]:
        for t in children.get(b, []):
            if t != a and (a, t) not in edges and rng.random() < cfg.feedforward_probability:
                edges[(a, t)] = 1.0 if rng.random() < cfg.activation_fraction else -1.0
    for r in rng.choice(regulators, size=round(cfg.paralog_fraction * n_reg), replace=False):
        peers = regulators[(layer[regulators] == layer[r]) & (regulators != r)]
        if len(peers):
            partner = int(rng.choice(peers))
            for src, t in [e for e in edges if e[0] == r]:
                del edges[(src, t)]
            for (src, t), sign in list(edges.items()):
                if src == partner and t != r and rng.random() < 0.9:
                    edges[(int(r), t)] = sign
    upper = regulators[layer[regulators] > 0]
    for _ in range(round(cfg.feedback_fraction * len(edges)) if len(upper) else 0):
        src = int(rng.choice(upper))
        candidates = regulators[layer[regulators] <= layer[src]]
        edges[(src, int(rng.choice(candidates)))] = -1.0 if rng.random() < 0.8 else 1.0
    and_terms = _stress_circuit(edges, regulators, layer, cfg, rng)
    has_input = np.zeros(n, dtype=bool)
    has_input[[t for _, t in edges]] = True
    for t in targets[~has_input[targets]]:
        same = regulators[program[regulators] == program[t]]
        src = int(rng.choice(same if len(same) else regulators))
        edges[(src, int(t))] = 1.0 if rng.random() < cfg.activation_fraction else -1.0
    genes = tuple(f"G{i + 1:04d}" for i in range(n))
    is_regulator = np.zeros(n, dtype=bool)
    is_regulator[regulators] = True
    return _assemble(genes, is_regulator, program, edges, cfg, rng, and_terms)


def _stress_circuit(
    edges: dict[tuple[int, int], float],
    regulators: np.ndarray,
    layer: np.ndarray,
    cfg: NetworkConfig,
    rng: np.random.Generator,
) -> list[list[tuple[int, int]]]:
    """Wire a generic stress response: a sensor regulator needs *all* essential regulators (one AND
    term) and represses the stress regulator (a hub below the top layer), whose program
    therefore rises after the loss of any essential regulator. Returns the AND term's edges (none
    when there are too few regulators)."""
    n_essential = round(cfg.essential_fraction * len(regulators))
    lower = regulators[layer[regulators] > 0]
    if n_essential < 2 or len(lower) < 2 or len(regulators) < n_essential + 2:
        return []
    out_degree = np.bincount([src for src, _ in edges], minlength=len(layer))
    hubs = lower[out_degree[lower] >= np.median(out_degree[lower])]
    stress = int(rng.choice(hubs))
    sensor = int(rng.choice(lower[lower != stress]))
    for edge in [e for e in edges if e[1] in (sensor, stress) or e[0] == sensor]:
        del edges[edge]
    candidates = regulators[(regulators != sensor) & (regulators != stress)]
    essential = rng.choice(candidates, size=n_essential, replace=False)
    group = [(int(e), sensor) for e in essential]
    for edge in [e for e in edges if e[0] == stress and (e[1] in set(essential.tolist()) or e[1] == sensor)]:
        del edges[edge]
    for edge in group:
        edges[edge] = 1.0
    edges[(sensor, stress)] = -1.0
    return [group]


def dorothea_network(cfg: NetworkConfig, rng: np.random.Generator, data_dir: Path) -> Network:
    """Network on real symbols: TF → target edges and signs (mode of regulation) from DoRothEA."""
    path = Path(data_dir) / DOROTHEA_FILE
    if not path.is_file():
        raise DataError(
            f"DoRothEA regulons not found at {path}; set BIOJEPA_DATA_DIR to the folder holding "
            f"{DOROTHEA_FILE} or use network.source = 'builtin'"
        )
    table = pd.read_csv(path, sep="\t")
    strong = table[table["confidence"].isin(list(cfg.dorothea_confidence))]
    if strong.empty:
        raise DataError(f"no DoRothEA edge has confidence in {cfg.dorothea_confidence!r}; use letters A-E")
    n_reg = max(2, round(cfg.n_genes * cfg.regulator_fraction))
    n_pass = round(cfg.n_genes * cfg.passenger_fraction)
    tfs = strong["tf"].value_counts().index[:n_reg].tolist()
    sub = strong[strong["tf"].isin(tfs)]
    ranked_targets = [g for g in sub["target"].value_counts().index if g not in set(tfs)]
    network_genes = tfs + ranked_targets[: max(0, cfg.n_genes - n_pass - len(tfs))]
    others = np.setdiff1d(pd.unique(table[["tf", "target"]].values.ravel()), network_genes)
    passengers = rng.choice(others, size=min(len(others), cfg.n_genes - len(network_genes)), replace=False)
    genes = tuple(sorted(network_genes)) + tuple(sorted(passengers.tolist()))
    index = {g: i for i, g in enumerate(genes)}
    kept = sub[sub["target"].isin(set(network_genes))]
    edges = {
        (index[tf], index[target]): float(np.sign(mor) or 1.0)
        for tf, target, mor in kept[["tf", "target", "mor"]].itertuples(index=False)
    }
    is_regulator = np.isin(np.asarray(genes), tfs)
    program = np.full(len(genes), -1)
    tf_rank = {index[tf]: k for k, tf in enumerate(tfs)}
    for src, dst in sorted(edges, key=lambda e: -tf_rank[e[0]]):
        program[dst] = tf_rank[src] % max(cfg.n_programs, 1)
    return _assemble(genes, is_regulator, program, edges, cfg, rng)


def _assemble(
    genes: tuple[str, ...],
    is_regulator: np.ndarray,
    program: np.ndarray,
    edges: dict[tuple[int, int], float],
    cfg: NetworkConfig,
    rng: np.random.Generator,
    and_terms: Sequence[Sequence[tuple[int, int]]] = (),
) -> Network:
    """Kinetic parameters for a topology: Hill coefficients, cooperative terms (random pairs plus the
    given ``and_terms``), weights, basal rates."""
    n = len(genes)
    pairs = sorted(edges)
    source = np.array([s for s, _ in pairs], dtype=np.int64)
    target = np.array([t for _, t in pairs], dtype=np.int64)
    sign = np.array([edges[p] for p in pairs])
    term = np.arange(len(pairs))
    for gene in np.unique(target):
        incoming = np.flatnonzero(target == gene)
        if len(incoming) >= 2 and rng.random() < cfg.cooperative_fraction:
            a, b = rng.choice(incoming, size=2, replace=False)
            term[b] = term[a]
    position = {p: i for i, p in enumerate(pairs)}
    for group in and_terms:
        term[[position[e] for e in group]] = position[group[0]]
    _, term = np.unique(term, return_inverse=True)
    n_terms = int(term.max()) + 1 if len(term) else 0
    term_target = np.zeros(n_terms, dtype=np.int64)
    term_target[term] = target
    term_weight = rng.lognormal(0.0, 0.75, n_terms)
    inflow = np.bincount(term_target, weights=term_weight, minlength=n)
    typical = float(np.median(inflow[inflow > 0])) if np.any(inflow > 0) else 1.0
    basal = np.where(
        inflow > 0,
        inflow * rng.uniform(0.05, 0.3, n),
        typical * 0.5 * rng.lognormal(0.0, 1.0, n),
    )
    return Network(
        genes=genes,
        is_regulator=is_regulator,
        program=program,
        edge_source=source,
        edge_target=target,
        edge_sign=sign,
        edge_hill=rng.choice(np.asarray(cfg.hill_coefficients, dtype=float), size=len(pairs)),
        edge_k=np.ones(len(pairs)),
        edge_term=term,
        term_target=term_target,
        term_weight=term_weight,
        basal=basal,
        promoter_vmax=2.0 * inflow,
        promoter_hill=rng.choice(np.asarray(cfg.promoter_hill, dtype=float), size=n),
        promoter_half=np.maximum(0.5 * inflow, 1e-12),
        degradation=rng.lognormal(0.0, 0.5, n),
    )
