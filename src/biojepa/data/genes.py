"""Human gene symbol harmonisation with the NCBI Gene alias table.

Perturbation screens name genes with the symbols current when they were published (Norman 2019
uses ``C19orf26``, now ``CBARP``). :func:`harmonise_symbols` maps aliases and previous symbols to the
current official symbol so that targets, measured genes and gene priors line up across sources.
The table is ``gene_annotations_go/human_gene_info.tsv.gz`` in the data directory (NCBI Gene via
Bioconductor ``org.Hs.eg.db``; see that folder's MANIFEST.md) or, where that is absent, NCBI's own
``Homo_sapiens.gene_info.gz`` fetched with :func:`fetch_gene_table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd

from biojepa.config import data_dir as default_data_dir
from biojepa.data.download import download_file
from biojepa.errors import DataError

GENE_INFO_FILE = Path("gene_annotations_go") / "human_gene_info.tsv.gz"
NCBI_GENE_INFO_FILE = Path("gene_info") / "Homo_sapiens.gene_info.gz"
NCBI_GENE_INFO_URL = "https://ftp.ncbi.nlm.nih.gov/gene/DATA/GENE_INFO/Mammalia/Homo_sapiens.gene_info.gz"
# NCBI column → gene-table column.
NCBI_COLUMNS = {
    "GeneID": "entrez_id",
    "Symbol": "symbol",
    "description": "gene_name",
    "type_of_gene": "gene_type",
    "chromosome": "chromosome",
    "Synonyms": "aliases",
}
GENE_TABLE_COLUMNS = ("entrez_id", "symbol", "gene_name", "gene_type", "chromosome", "aliases")
ALIAS_SEP = ";"


def _root(data_dir: Path | None) -> Path:
    return Path(data_dir if data_dir is not None else default_data_dir())


def gene_info_path(data_dir: Path | None = None) -> Path:
    """The gene table in ``data_dir`` (default :func:`biojepa.config.data_dir`): the staged extract
    if present, else NCBI's file; :class:`DataError` saying how to get one if neither is there."""
    for relative in (GENE_INFO_FILE, NCBI_GENE_INFO_FILE):
        if (_root(data_dir) / relative).is_file():
            return (_root(data_dir) / relative).resolve()
    raise DataError(
        f"no gene table in {_root(data_dir)}: expected {GENE_INFO_FILE} (see its MANIFEST.md) or "
        f"{NCBI_GENE_INFO_FILE}; download the latter with biojepa.data.genes.fetch_gene_table(), "
        "or set BIOJEPA_DATA_DIR to a directory that has one"
    )


def fetch_gene_table(data_dir: Path | None = None, *, progress: bool = True) -> Path:
    """Download NCBI's human ``gene_info`` into the data directory unless it is there; return its path."""
    return download_file(NCBI_GENE_INFO_URL, _root(data_dir) / NCBI_GENE_INFO_FILE, progress=progress)


def load_gene_table(data_dir: Path | None = None) -> pd.DataFrame:
    """The human gene table: one row per Entrez gene, string columns incl. ``symbol`` and ``aliases``.

    ``aliases`` is a ``;``-joined list that includes previous symbols. Cached in process; treat the
    returned frame as read-only.
    """
    return _load_gene_table(gene_info_path(data_dir))


@lru_cache(maxsize=4)
def _load_gene_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"gene table {path} is unreadable ({exc}); re-create or re-download it") from exc
    if path.name == NCBI_GENE_INFO_FILE.name:
        table = _from_ncbi(table, path)
    missing = [c for c in GENE_TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"gene table {path} lacks columns {missing}; expected {list(GENE_TABLE_COLUMNS)}")
    return table


def _from_ncbi(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """NCBI ``gene_info`` layout (``|``-joined synonyms, ``-`` for none) → the gene-table columns."""
    missing = [c for c in NCBI_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks NCBI gene_info columns {missing}; delete it and fetch it again")
    table = table[list(NCBI_COLUMNS)].rename(columns=NCBI_COLUMNS)
    table = table.replace("-", "")
    table["aliases"] = table["aliases"].str.replace("|", ALIAS_SEP, regex=False)
    return table


@lru_cache(maxsize=4)
def _alias_to_symbol(path: Path) -> dict[str, str]:
    """Unambiguous alias → official symbol; official symbols are never remapped.

    NCBI names mitochondrial genes without HGNC's ``MT-`` prefix (``ATP8``, alias ``MTATP8``), so
    ``MT-ATP8`` as found in 10x/Ensembl feature names is added as an alias of those genes.
    """
    table = _load_gene_table(path)
    official = set(table["symbol"])
    candidates: dict[str, set[str]] = {}
    for symbol, aliases, chromosome in zip(
        table["symbol"], table["aliases"], table["chromosome"], strict=True
    ):
        names = [a for a in aliases.split(ALIAS_SEP) if a]
        if chromosome == "MT":
            names += [f"MT-{a[2:]}" for a in names if a.startswith("MT") and not a.startswith("MT-")]
        for alias in names:
            if alias not in official:
                candidates.setdefault(alias, set()).add(symbol)
    return {alias: next(iter(symbols)) for alias, symbols in candidates.items() if len(symbols) == 1}


def harmonise_symbols(symbols: Sequence[str], data_dir: Path | None = None) -> list[str]:
    """Map each symbol to the current official human symbol.

    Official symbols map to themselves; an alias or previous symbol of exactly one gene maps to that
    gene's symbol; an alias shared by several genes, and any unknown name (Ensembl id, control
    label, non-human symbol), is returned unchanged. Matching is exact (case-sensitive).
    """
    mapping = _alias_to_symbol(gene_info_path(data_dir))
    return [mapping.get(s, s) for s in symbols]


def official_symbols(data_dir: Path | None = None) -> frozenset[str]:
    """Every current official human symbol in the gene table."""
    return frozenset(load_gene_table(data_dir)["symbol"])
