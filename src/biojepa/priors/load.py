"""One call for the combined knowledge-based gene prior."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors, combine
from biojepa.priors.go import go_priors
from biojepa.priors.hallmark import hallmark_priors
from biojepa.priors.regulons import regulon_priors
from biojepa.priors.text import text_priors

DEFAULT_KINDS = ("go", "regulons", "hallmark")
_BUILDERS: dict[str, Callable[[Path | None], GenePriors]] = {
    "go": go_priors,
    "regulons": regulon_priors,
    "hallmark": hallmark_priors,
}
KINDS = (*_BUILDERS, "text")


def load_gene_priors(
    kinds: Sequence[str] = DEFAULT_KINDS, *, data_dir: Path | None = None, genes: Sequence[str] | None = None
) -> GenePriors:
    """Combine the prior sources ``kinds`` (see :func:`biojepa.priors.base.combine`).

    ``genes`` restricts the result to those genes (harmonised; genes no source knows are left out);
    the ``text`` source embeds only these genes, so it needs them. Expression priors depend on the
    training cells: build them with :func:`biojepa.priors.expression.expression_priors` and
    ``combine`` them with this result.
    """
    if not kinds:
        raise DataError(f"no prior kinds given; choose from {KINDS}")
    if "expression" in kinds:
        raise DataError(
            "expression priors need the training cells: use expression_priors(train_controls) and combine() "
            "it with load_gene_priors() of the other kinds"
        )
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise DataError(f"unknown prior kinds {unknown}; choose from {KINDS}")
    if "text" in kinds and genes is None:
        raise DataError("the text prior embeds only requested genes: pass genes=[...] to load_gene_priors")
    blocks = [
        text_priors(genes, data_dir=data_dir) if kind == "text" else _BUILDERS[kind](data_dir)
        for kind in dict.fromkeys(kinds)
    ]
    combined = combine(*blocks)
    return combined if genes is None else combined.subset(genes, data_dir=data_dir)
