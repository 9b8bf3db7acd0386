"""Per-gene prior features, so targets never perturbed in training still get informative input.

Sources: GO (:func:`go_priors`), DoRothEA regulons (:func:`regulon_priors`), Hallmark sets
(:func:`hallmark_priors`), a text embedding (:func:`text_priors`) and expression-derived gene
embeddings (:func:`expression_priors`). :func:`load_gene_priors` combines the knowledge-based ones.
"""

from biojepa.priors.base import GenePriors, centre_scale, combine
from biojepa.priors.diagnostics import coverage_table, pair_cosines
from biojepa.priors.expression import expression_priors
from biojepa.priors.go import go_priors
from biojepa.priors.hallmark import hallmark_priors
from biojepa.priors.load import DEFAULT_KINDS, KINDS, load_gene_priors
from biojepa.priors.regulons import regulon_priors
from biojepa.priors.sources import PRIOR_SOURCES, fetch_source
from biojepa.priors.text import text_priors

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "PRIOR_SOURCES",
    "GenePriors",
    "centre_scale",
    "combine",
    "coverage_table",
    "expression_priors",
    "fetch_source",
    "go_priors",
    "hallmark_priors",
    "load_gene_priors",
    "pair_cosines",
    "regulon_priors",
    "text_priors",
]
