"""Simple baselines, registered as methods and run beside every model on the same splits.

Each is fitted on the training split only (training conditions plus control cells; ``val`` is
ignored) from the training pseudobulk Δ of :func:`biojepa.eval.pseudobulk.pseudobulk_deltas`:

* ``no_change``: Δ = 0 (the post-state is the control state).
* ``train_mean``: the unweighted mean of the training conditions' Δ in the same context (all training
  conditions where the context has none). Ignores which perturbation is asked.
* ``additive``: Σ over the condition's targets of that single target's training Δ in the same context;
  a target never seen alone in training contributes the train mean instead. A single is thus its own
  Δ if seen, else the train mean; a double is the sum of its two singles (Ahlmann-Eltze 2025).
* ``linear``: Y ≈ G·K·Pᵀ (Ahlmann-Eltze 2025): Y = training Δ (genes × conditions, rows centred),
  G = the top-10 principal components of Y's rows (gene embeddings), P = the rows of G of each
  condition's target gene(s), summed for combinations, K by two-sided ridge (λ = 0.1). A condition
  whose targets are not all measured genes has no embedding and gets the train mean.
* ``ridge_prior``: ridge regression (penalty by leave-one-out on the training conditions) from the
  gene-prior features of the target(s), summed for combinations, to Δ.
* ``knn_prior``: the mean training Δ of the k = 5 training conditions nearest in prior-feature
  cosine distance.
* ``network_prior``: the train mean plus ``w`` × the targets' known signed regulatory edges onto each
  gene (the priors' network: DoRothEA, or the simulator's noisy copy of its network), turned by the
  mode (a knockdown moves regulated genes against the edge signs); ``w`` ≥ 0 by least squares on the
  training conditions. Conditions whose targets have no known edge onto the measured genes get the
  train mean.

Conditions a baseline cannot embed fall back to the train mean; how many did so in the last
``predict_deltas`` call is ``n_fallback`` (also logged as a warning).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod

import anndata as ad
import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.neighbors import NearestNeighbors

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.eval.methods import Method, register_method
from biojepa.eval.pseudobulk import PseudobulkDeltas, pseudobulk_deltas
from biojepa.priors.base import GenePriors
from biojepa.priors.network import MODE_SIGNS


class _TrainingDeltaBaseline(Method):
    """Shared fitting: the training pseudobulk Δ and the per-context train mean."""

    is_baseline = True

    def __init__(self) -> None:
        self._train: PseudobulkDeltas | None = None
        self.n_fallback = 0

    def fit(self, train: ad.AnnData, val: ad.AnnData | None, priors: GenePriors | None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            deltas = pseudobulk_deltas(train, de=False)
        if not deltas.conditions:
            raise DataError(
                f"{self.name}: the training data holds no perturbed condition with at least 2 cells; "
                "a baseline needs training perturbations"
            )
        self._train = deltas
        self._fit_model(deltas, priors)

    def _fit_model(self, deltas: PseudobulkDeltas, priors: GenePriors | None) -> None:
        """Fit the baseline's own parameters (nothing beyond the train mean by default)."""

    @property
    def train(self) -> PseudobulkDeltas:
        if self._train is None:
            raise DataError(f"{self.name}: call fit() before predict_deltas()")
        return self._train

    def train_mean(self, context: str) -> np.ndarray:
        """Mean training Δ over the conditions of ``context`` (all conditions if it has none)."""
        in_context = np.array([c.context == context for c in self.train.conditions])
        rows = self.train.deltas[in_context] if in_context.any() else self.train.deltas
        return rows.mean(axis=0)

    def _train_means(self, conditions: list[Condition]) -> np.ndarray:
        """The train mean of each condition's context, ``(len(conditions), n_genes)``."""
        out = np.zeros((len(conditions), len(self.train.genes)))
        for i, condition in enumerate(conditions):
            out[i] = self.train_mean(condition.context)
        return out

    def _check_controls(self, controls: ad.AnnData) -> None:
        genes = np.asarray(controls.var_names.astype(str))
        if not np.array_equal(genes, self.train.genes):
            raise DataError(
                f"{self.name}: the control cells have {len(genes)} genes that differ from the "
                f"{len(self.train.genes)} training genes; use the same gene list for fit and predict"
            )

    def _report_fallback(self, n: int, total: int, what: str) -> None:
        self.n_fallback = n
        if n:
            warnings.warn(f"{self.name}: {n} of {total} {what}; used the train mean for them", stacklevel=3)


@register_method("no_change")
class NoChange(_TrainingDeltaBaseline):
    """Δ = 0: the perturbation does nothing."""

    uses_perturbation = False

    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        self._check_controls(controls)
        return np.zeros((len(conditions), len(self.train.genes)))


@register_method("train_mean")
class TrainMean(_TrainingDeltaBaseline):
    """The mean training Δ of the context, whatever the perturbation."""

    uses_perturbation = False

    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        self._check_controls(controls)
        return self._train_means(conditions)


@register_method("additive")
class Additive(_TrainingDeltaBaseline):
    """Sum of the targets' single-perturbation training Δ; unseen singles count as the train mean."""

    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        self._check_controls(controls)
        singles = {
            (c.targets[0], c.context): row
            for c, row in zip(self.train.conditions, self.train.deltas, strict=True)
            if len(c.targets) == 1
        }
        out = np.zeros((len(conditions), len(self.train.genes)))
        unseen = 0
        for i, condition in enumerate(conditions):
            for target in condition.targets:
                single = singles.get((target, condition.context))
                unseen += single is None
                out[i] += self.train_mean(condition.context) if single is None else single
        self._report_fallback(
            unseen, sum(len(c.targets) for c in conditions), "target(s) never seen alone in training"
        )
        return out


@register_method("linear")
class Linear(_TrainingDeltaBaseline):
    """Y ≈ G·K·Pᵀ with PCA gene embeddings of the training Δ and two-sided ridge."""

    def __init__(self, n_components: int = 10, ridge: float = 0.1) -> None:
        super().__init__()
        self.n_components = n_components
        self.ridge = ridge

    def _embedding(self, targets: tuple[str, ...]) -> np.ndarray | None:
        rows = [self._gene_row.get(t) for t in targets]
        if not rows or any(r is None for r in rows):
            return None
        return self._gene_embedding[rows].sum(axis=0)

    def _fit_model(self, deltas: PseudobulkDeltas, priors: GenePriors | None) -> None:
        y = deltas.deltas.T  # genes × conditions
        d = min(self.n_components, y.shape[1], y.shape[0])
        # the exact solver: PCA's default switches to an unseeded randomised SVD on larger panels
        self._gene_embedding = PCA(n_components=d, svd_solver="full").fit_transform(y)
        self._gene_row = {g: i for i, g in enumerate(deltas.genes)}
        embedded = [(j, self._embedding(c.targets)) for j, c in enumerate(deltas.conditions)]
        embedded = [(j, p) for j, p in embedded if p is not None]
        self._coef = None
        if not embedded:
            return
        columns = np.array([j for j, _ in embedded])
        p = np.stack([v for _, v in embedded], axis=1)  # d × conditions
        g = self._gene_embedding
        self._center = y[:, columns].mean(axis=1)
        y_c = y[:, columns] - self._center[:, None]
        eye = np.eye(d)
        left = np.linalg.solve(g.T @ g + self.ridge * eye, g.T @ y_c @ p.T)
        self._coef = np.linalg.solve(p @ p.T + self.ridge * eye, left.T).T

    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        self._check_controls(controls)
        out = np.zeros((len(conditions), len(self.train.genes)))
        missing = 0
        for i, condition in enumerate(conditions):
            p = self._embedding(condition.targets) if self._coef is not None else None
            if p is None:
                missing += 1
                out[i] = self.train_mean(condition.context)
            else:
                out[i] = self._gene_embedding @ self._coef @ p + self._center
        self._report_fallback(
            missing, len(conditions), "condition(s) with target(s) not among the measured genes"
        )
        return out


class _PriorBaseline(_TrainingDeltaBaseline):
    """Baselines on the gene-prior features of the condition's target(s), summed for combinations."""

    needs_priors = True

    def _features(self, conditions: list[Condition]) -> tuple[np.ndarray, np.ndarray]:
        """Features per condition and whether every target of it is covered by the priors."""
        targets = sorted({t for c in conditions for t in c.targets})
        features, known = self._priors.lookup(targets) if targets else (np.zeros((0, 0)), np.zeros(0, bool))
        row = {t: i for i, t in enumerate(targets)}
        out = np.zeros((len(conditions), self._priors.dim))
        covered = np.zeros(len(conditions), dtype=bool)
        for i, condition in enumerate(conditions):
            rows = [row[t] for t in condition.targets]
            covered[i] = bool(rows) and bool(known[rows].all())
            if covered[i]:
                out[i] = features[rows].sum(axis=0)
        return out, covered

    def _fit_model(self, deltas: PseudobulkDeltas, priors: GenePriors | None) -> None:
        if priors is None:
            raise DataError(f"{self.name} needs gene priors: pass biojepa.priors.load_gene_priors() to fit()")
        self._priors = priors
        features, covered = self._features(deltas.conditions)
        if covered.sum() < 2:
            raise DataError(
                f"{self.name}: only {int(covered.sum())} training condition(s) have prior features for all "
                "their targets; at least 2 are needed"
            )
        self._fit_features(features[covered], deltas.deltas[covered])

    @abstractmethod
    def _fit_features(self, features: np.ndarray, deltas: np.ndarray) -> None:
        """Fit on the training conditions covered by the priors."""

    @abstractmethod
    def _predict_features(self, features: np.ndarray) -> np.ndarray:
        """Predicted Δ of conditions with these (summed) prior features."""

    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        self._check_controls(controls)
        features, covered = self._features(conditions)
        out = self._train_means(conditions)
        if covered.any():
            out[covered] = self._predict_features(features[covered])
        self._report_fallback(
            int((~covered).sum()), len(conditions), "condition(s) with target(s) lacking prior features"
        )
        return out


@register_method("ridge_prior")
class RidgePrior(_PriorBaseline):
    """Ridge regression from prior features of the target(s) to Δ (GenePert-style)."""

    def __init__(self, alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)) -> None:
        super().__init__()
        self.alphas = alphas

    def _fit_features(self, features: np.ndarray, deltas: np.ndarray) -> None:
        self._model = RidgeCV(alphas=self.alphas).fit(features, deltas)

    def _predict_features(self, features: np.ndarray) -> np.ndarray:
        return self._model.predict(features)


@register_method("knn_prior")
class KnnPrior(_PriorBaseline):
    """Mean Δ of the k training conditions closest in prior-feature cosine distance."""

    def __init__(self, k: int = 5) -> None:
        super().__init__()
        self.k = k

    def _fit_features(self, features: np.ndarray, deltas: np.ndarray) -> None:
        self._neighbours = NearestNeighbors(n_neighbors=min(self.k, len(deltas)), metric="cosine").fit(
            features
        )
        self._deltas = deltas

    def _predict_features(self, features: np.ndarray) -> np.ndarray:
        index = self._neighbours.kneighbors(features, return_distance=False)
        return self._deltas[index].mean(axis=1)


@register_method("network_prior")
class NetworkPrior(_TrainingDeltaBaseline):
    """Train mean plus a fitted multiple of the targets' known regulatory edges, signed by the mode."""

    needs_priors = True

    def _responses(self, conditions: list[Condition]) -> np.ndarray:
        """Σ over each condition's targets of mode sign × known edges onto the training genes."""
        genes = list(self.train.genes)
        targets = sorted({t for c in conditions for t in c.targets})
        edges, _ = self._network.responses(targets, genes)
        row = {t: i for i, t in enumerate(targets)}
        out = np.zeros((len(conditions), len(genes)))
        for i, condition in enumerate(conditions):
            sign = MODE_SIGNS.get(condition.perturbation_type, 0.0)
            for target in condition.targets:
                out[i] += sign * edges[row[target]]
        return out

    def _fit_model(self, deltas: PseudobulkDeltas, priors: GenePriors | None) -> None:
        if priors is None or priors.network is None:
            raise DataError(
                f"{self.name} needs gene priors with a regulatory network (the regulon priors, or a "
                "simulated screen's priors)"
            )
        self._network = priors.network
        responses = self._responses(deltas.conditions)
        rest = deltas.deltas - self._train_means(deltas.conditions)
        power = float((responses**2).sum())
        self.weight = max(float((responses * rest).sum()) / power, 0.0) if power > 0 else 0.0

    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        self._check_controls(controls)
        responses = self._responses(conditions)
        unknown = int((np.abs(responses).sum(axis=1) == 0).sum())
        self._report_fallback(unknown, len(conditions), "condition(s) with no known regulatory edge")
        return self._train_means(conditions) + self.weight * responses
