"""The method registry: every predictor of the benchmark, baselines and the world model alike.

A :class:`Method` is fitted on training data only and then predicts pseudobulk Δ for conditions it
may never have seen. The benchmark calls, per split seed::

    method = get_method(name)
    method.fit(train, val, priors)            # train: training + all control cells; val: validation cells
    deltas = method.predict_deltas(conditions, controls)   # (n_conditions, n_genes)

``train``, ``val`` and ``controls`` are prepared AnnData (log-normalised ``X``, see
:mod:`biojepa.data.preprocess`) over the same genes; ``val`` may be None. A prediction is the Δ of the
condition's pseudobulk against the control mean of the same context, in log-normalised space.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import anndata as ad
import numpy as np

from biojepa.data.schema import Condition
from biojepa.priors.base import GenePriors

# Modules whose import registers methods: the baselines always, the world model when present.
_PROVIDERS = ("biojepa.eval.baselines", "biojepa.models.method")


class Method(ABC):
    """A perturbation-response predictor scored by the benchmark.

    Class attributes: ``name`` (set by :func:`register_method`), ``uses_perturbation`` (False for
    predictors that ignore which intervention is asked, e.g. the training mean), ``is_baseline``,
    ``needs_priors`` (True when ``fit`` requires gene priors) and ``seeded`` (True when the constructor
    takes a ``seed`` for the method's own randomness, e.g. weight initialisation).
    """

    name: ClassVar[str] = ""
    uses_perturbation: ClassVar[bool] = True
    is_baseline: ClassVar[bool] = False
    needs_priors: ClassVar[bool] = False
    seeded: ClassVar[bool] = False

    @abstractmethod
    def fit(self, train: ad.AnnData, val: ad.AnnData | None, priors: GenePriors | None) -> None:
        """Learn from training (+ validation) cells and all control cells; never from test cells."""

    @abstractmethod
    def predict_deltas(self, conditions: list[Condition], controls: ad.AnnData) -> np.ndarray:
        """Predicted Δ ``(len(conditions), n_genes)`` vs the control mean of each condition's context."""

    def fitted_values(self) -> dict[str, Any]:
        """Scalars the last ``fit`` chose on its own (e.g. gates), recorded per seed by the benchmark."""
        return {}


_REGISTRY: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator adding a :class:`Method` subclass to the registry under ``name``."""

    def decorate(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"{cls!r} is not a subclass of Method")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_providers() -> None:
    for module in _PROVIDERS:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def available_methods() -> list[str]:
    """Names of all registered methods (baselines first, then the world model's entries if installed)."""
    _load_providers()
    return list(_REGISTRY)


def method_class(name: str) -> type[Method]:
    """The :class:`Method` subclass registered as ``name``."""
    _load_providers()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; available: {list(_REGISTRY)}") from None


def get_method(name: str, **kwargs: Any) -> Method:
    """A new instance of the method registered as ``name``, built with ``kwargs``."""
    return method_class(name)(**kwargs)
