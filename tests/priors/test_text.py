"""Text prior: gene descriptions, the offline MiniLM embedding, and its on-disk cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.priors import text
from biojepa.priors.text import gene_descriptions, text_priors

GENES = ["IFNGR1", "IFNGR2", "JAK1", "JAK2", "MYC", "C19orf26", "SPI1", "BRD4", "NOPE1"]


def test_description_has_name_then_most_specific_terms_first(shared_data_dir: Path) -> None:
    description = gene_descriptions(["IFNGR1", "NOPE1"], shared_data_dir)
    assert list(description) == ["IFNGR1"]
    parts = description["IFNGR1"].split("; ")
    assert parts[0] == "IFNGR1: interferon gamma receptor 1"
    assert "interferon-gamma-mediated signaling pathway" in parts
    assert parts.index("interferon-gamma receptor activity") < parts.index("protein binding")


def test_text_prior_embeds_known_genes_and_groups_receptor_subunits(shared_data_dir: Path) -> None:
    priors = text_priors(GENES, shared_data_dir)
    assert priors.genes == ["IFNGR1", "IFNGR2", "JAK1", "JAK2", "MYC", "CBARP", "SPI1", "BRD4"]
    assert priors.dim == 384
    unit = priors.features / np.linalg.norm(priors.features, axis=1, keepdims=True)
    cosine = unit @ unit.T
    assert cosine[~np.eye(len(unit), dtype=bool)].mean() < 0.3
    assert cosine[0, 1] == cosine[0, 1:].max()  # IFNGR1's nearest is IFNGR2
    assert cosine[2, 3] == cosine[2, [0, 1, 3, 4, 5, 6, 7]].max()  # JAK1's nearest is JAK2


def test_embeddings_come_from_the_disk_cache(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = text_priors(GENES, shared_data_dir)

    def no_model(max_tokens: int) -> None:
        raise AssertionError("the model was loaded although every text was cached")

    monkeypatch.setattr(text, "_model", no_model)
    again = text_priors(GENES, shared_data_dir)
    np.testing.assert_array_equal(first.features, again.features)


def test_too_few_known_genes_is_an_error(shared_data_dir: Path) -> None:
    with pytest.raises(DataError, match="at least 2"):
        text_priors(["STAT1", "NOPE1"], shared_data_dir)
