"""Read Gene Ontology annotations, the term DAG and term names into plain tables.

Two layouts are understood: the staged Bioconductor extracts (``gene_annotations_go/*.tsv.gz``),
used when present, and the canonical ``go-basic.obo`` + ``goa_human.gaf.gz`` fetched with
:func:`biojepa.priors.sources.fetch_source`.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from biojepa.data.genes import harmonise_symbols
from biojepa.errors import DataError
from biojepa.priors.sources import source_path, staged_files

ONTOLOGY_CODES = {
    "biological_process": "BP",
    "molecular_function": "MF",
    "cellular_component": "CC",
    "P": "BP",
    "F": "MF",
    "C": "CC",
}
# "No biological data available": an annotation that says nothing about the gene.
NO_DATA_EVIDENCE = "ND"


@dataclass(frozen=True)
class GoData:
    """``annotations`` (symbol, go_id, ontology; direct), ``edges`` (child, parent, relation),
    ``terms`` (go_id, ontology, name) and the files they came from."""

    annotations: pd.DataFrame
    edges: pd.DataFrame
    terms: pd.DataFrame
    files: tuple[Path, ...]


def go_source_files(data_dir: Path | None = None) -> tuple[Path, ...]:
    """The GO files in use: the three staged extracts if present, else ``go-basic.obo`` + the GAF."""
    staged = staged_files(["gene2go", "go_parents", "go_terms"], data_dir)
    if staged is not None:
        return tuple(p.resolve() for p in staged)
    return (source_path("go_basic", data_dir).resolve(), source_path("goa_human", data_dir).resolve())


def load_go_data(data_dir: Path | None = None) -> GoData:
    """GO tables from the data directory (staged extracts first, then OBO + GAF). Cached in process."""
    files = go_source_files(data_dir)
    if len(files) == 3:
        return _read_staged(*files)
    return _read_obo_gaf(*files, data_dir)


def _read_tsv(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); re-create it from its MANIFEST.md") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}; expected at least {columns}")
    return table


@lru_cache(maxsize=2)
def _read_staged(gene2go: Path, parents: Path, names: Path) -> GoData:
    ann = _read_tsv(gene2go, ["symbol", "go_id", "evidence", "ontology"])
    ann = ann.loc[ann["evidence"] != NO_DATA_EVIDENCE, ["symbol", "go_id", "ontology"]]
    edges = _read_tsv(parents, ["child", "parent", "relationship_type"])
    relation = edges["relationship_type"].str.replace(" ", "_").replace({"isa": "is_a"})
    edges = pd.DataFrame({"child": edges["child"], "parent": edges["parent"], "relation": relation})
    terms = _read_tsv(names, ["go_id", "ontology", "term"]).rename(columns={"term": "name"})
    return GoData(
        ann.drop_duplicates().reset_index(drop=True),
        edges.drop_duplicates().reset_index(drop=True),
        terms[["go_id", "ontology", "name"]],
        (gene2go, parents, names),
    )


def read_obo(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Terms (go_id, ontology, name) and edges (child, parent, relation) of a GO OBO file.

    Obsolete terms are dropped; ``is_a`` and every ``relationship:`` line become edges.
    """
    terms: list[tuple[str, str, str]] = []
    edges: list[tuple[str, str, str]] = []
    stanza: dict[str, list[str]] | None = None

    def flush() -> None:
        if stanza and stanza.get("id") and "true" not in stanza.get("is_obsolete", []):
            go_id = stanza["id"][0]
            ontology = ONTOLOGY_CODES.get(stanza.get("namespace", [""])[0], "")
            terms.append((go_id, ontology, stanza.get("name", [""])[0]))
            edges.extend((go_id, v.split()[0], "is_a") for v in stanza.get("is_a", []))
            for value in stanza.get("relationship", []):
                relation, parent = value.split()[:2]
                edges.append((go_id, parent, relation))

    with path.open(encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if line.startswith("["):
                flush()
                stanza = {} if line == "[Term]" else None
            elif stanza is not None and ": " in line:
                tag, value = line.split(": ", 1)
                stanza.setdefault(tag, []).append(value.split(" ! ")[0].strip())
    flush()
    if not terms:
        raise DataError(f"{path} holds no [Term] stanzas; is it a GO OBO file?")
    return (
        pd.DataFrame(terms, columns=["go_id", "ontology", "name"]),
        pd.DataFrame(edges, columns=["child", "parent", "relation"]),
    )


def read_gaf(path: Path) -> pd.DataFrame:
    """Direct annotations (symbol, go_id, ontology) of a GAF 2.x file; ``NOT`` and ND rows dropped."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows: list[tuple[str, str, str]] = []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("!") or not line.strip():
                    continue
                cols = line.rstrip("\n").split("\t")
                if len(cols) < 15:
                    raise DataError(f"{path}: a GAF line has {len(cols)} columns, expected at least 15")
                if "NOT" in cols[3].split("|") or cols[6] == NO_DATA_EVIDENCE:
                    continue
                rows.append((cols[2], cols[4], ONTOLOGY_CODES.get(cols[8], cols[8])))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); delete it and fetch it again") from exc
    if not rows:
        raise DataError(f"{path} holds no annotations; is it a GAF file?")
    return pd.DataFrame(rows, columns=["symbol", "go_id", "ontology"]).drop_duplicates()


@lru_cache(maxsize=2)
def _read_obo_gaf(obo: Path, gaf: Path, data_dir: Path | None) -> GoData:
    terms, edges = read_obo(obo)
    ann = read_gaf(gaf)
    symbols = ann["symbol"].unique().tolist()
    ann["symbol"] = ann["symbol"].map(dict(zip(symbols, harmonise_symbols(symbols, data_dir), strict=True)))
    return GoData(ann.drop_duplicates().reset_index(drop=True), edges, terms, (obo, gaf))
