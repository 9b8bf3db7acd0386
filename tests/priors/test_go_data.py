"""Reading GO from the staged extracts and from OBO + GAF files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from biojepa.data.genes import GENE_INFO_FILE
from biojepa.errors import DataError
from biojepa.priors.go_data import load_go_data, read_gaf, read_obo

OBO = """format-version: 1.2

[Term]
id: GO:0000001
name: root process
namespace: biological_process

[Term]
id: GO:0000002
name: child process
namespace: biological_process
is_a: GO:0000001 ! root process

[Term]
id: GO:0000003
name: part of child
namespace: biological_process
relationship: part_of GO:0000002 ! child process

[Term]
id: GO:0000004
name: old term
namespace: biological_process
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""

GAF_ROWS = [
    # DB, id, symbol, qualifier, GO id, ref, evidence, with, aspect, name, synonym, type, taxon, date, by
    [
        "UniProtKB",
        "P42224",
        "STAT1",
        "enables",
        "GO:0000003",
        "PMID:1",
        "IDA",
        "",
        "P",
        "",
        "",
        "protein",
        "taxon:9606",
        "20200101",
        "UniProt",
    ],
    [
        "UniProtKB",
        "P42224",
        "STAT1",
        "NOT|enables",
        "GO:0000002",
        "PMID:1",
        "IDA",
        "",
        "P",
        "",
        "",
        "protein",
        "taxon:9606",
        "20200101",
        "UniProt",
    ],
    [
        "UniProtKB",
        "Q00000",
        "C19orf26",
        "enables",
        "GO:0000002",
        "PMID:1",
        "ND",
        "",
        "F",
        "",
        "",
        "protein",
        "taxon:9606",
        "20200101",
        "UniProt",
    ],
    [
        "UniProtKB",
        "Q00000",
        "C19orf26",
        "located_in",
        "GO:0000001",
        "PMID:1",
        "IEA",
        "",
        "C",
        "",
        "",
        "protein",
        "taxon:9606",
        "20200101",
        "UniProt",
    ],
]


def _write_obo_gaf(root: Path) -> None:
    (root / "gene_ontology").mkdir(parents=True)
    (root / "gene_ontology" / "go-basic.obo").write_text(OBO)
    lines = ["!gaf-version: 2.2", *("\t".join(r) for r in GAF_ROWS)]
    (root / "gene_ontology" / "goa_human.gaf.gz").write_bytes(gzip.compress("\n".join(lines).encode()))


def test_read_obo_keeps_live_terms_and_both_relations(tmp_path: Path) -> None:
    path = tmp_path / "go.obo"
    path.write_text(OBO)
    terms, edges = read_obo(path)
    assert terms["go_id"].tolist() == ["GO:0000001", "GO:0000002", "GO:0000003"]
    assert set(terms["ontology"]) == {"BP"}
    assert sorted(map(tuple, edges.to_numpy().tolist())) == [
        ("GO:0000002", "GO:0000001", "is_a"),
        ("GO:0000003", "GO:0000002", "part_of"),
    ]


def test_read_obo_rejects_a_file_without_terms(tmp_path: Path) -> None:
    path = tmp_path / "bad.obo"
    path.write_text("format-version: 1.2\n")
    with pytest.raises(DataError, match="no \\[Term\\]"):
        read_obo(path)


def test_read_gaf_drops_not_and_no_data_rows(tmp_path: Path) -> None:
    _write_obo_gaf(tmp_path)
    ann = read_gaf(tmp_path / "gene_ontology" / "goa_human.gaf.gz")
    assert sorted(map(tuple, ann.to_numpy().tolist())) == [
        ("C19orf26", "GO:0000001", "CC"),
        ("STAT1", "GO:0000003", "BP"),
    ]


def test_read_gaf_rejects_short_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.gaf"
    path.write_text("STAT1\tGO:1\n")
    with pytest.raises(DataError, match="columns"):
        read_gaf(path)


def test_obo_and_gaf_are_used_when_nothing_is_staged(tmp_path: Path, shared_data_dir: Path) -> None:
    _write_obo_gaf(tmp_path)
    (tmp_path / GENE_INFO_FILE).parent.mkdir(parents=True)
    (tmp_path / GENE_INFO_FILE).symlink_to(shared_data_dir / GENE_INFO_FILE)
    go = load_go_data(tmp_path)
    assert set(go.annotations["symbol"]) == {"STAT1", "CBARP"}  # harmonised
    assert len(go.files) == 2


def test_staged_extracts_are_read(shared_data_dir: Path) -> None:
    go = load_go_data(shared_data_dir)
    assert len(go.annotations) > 250_000
    assert {"is_a", "part_of"} <= set(go.edges["relation"])
    assert (
        go.terms.set_index("go_id").loc["GO:0060333", "name"] == "interferon-gamma-mediated signaling pathway"
    )


def test_missing_go_files_say_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fetch_source"):
        load_go_data(tmp_path)
