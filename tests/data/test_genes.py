"""Gene symbol harmonisation against the real NCBI Gene alias table."""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from biojepa.data import genes
from biojepa.data.genes import (
    GENE_INFO_FILE,
    NCBI_GENE_INFO_FILE,
    fetch_gene_table,
    harmonise_symbols,
    load_gene_table,
    official_symbols,
)
from biojepa.errors import DataError


def test_gene_table_has_symbols_and_aliases(shared_data_dir: Path) -> None:
    table = load_gene_table(shared_data_dir)
    assert len(table) > 70_000
    stat1 = table.loc[table["symbol"] == "STAT1"].iloc[0]
    assert stat1["gene_type"] == "protein-coding"
    assert load_gene_table(shared_data_dir) is table  # cached in process


def test_previous_symbols_map_to_current(shared_data_dir: Path) -> None:
    old = ["C19orf26", "ELMSAN1", "MARCH8", "C10orf11", "DARS"]
    assert harmonise_symbols(old, shared_data_dir) == ["CBARP", "MIDEAS", "MARCHF8", "LRMDA", "DARS1"]


def test_mitochondrial_genes_with_hgnc_prefix_map_to_ncbi_symbols(shared_data_dir: Path) -> None:
    names = ["MT-ATP8", "MT-CO1", "MT-CYB", "MT-ND4L", "MT-TL1"]
    assert harmonise_symbols(names, shared_data_dir) == ["ATP8", "COX1", "CYTB", "ND4L", "TRNL1"]


def test_official_symbols_map_to_themselves(shared_data_dir: Path) -> None:
    # RNR1 is the official symbol of two entries and an alias of NR4A2.
    symbols = ["STAT1", "IRF1", "TP53", "RNR1", "HBD"]
    assert harmonise_symbols(symbols, shared_data_dir) == symbols
    assert set(symbols) <= official_symbols(shared_data_dir)


def test_ambiguous_alias_is_left_unchanged(shared_data_dir: Path) -> None:
    # SEPT2 is an alias of both SEPTIN2 and SEPTIN6; NEDD5 only of SEPTIN2.
    assert harmonise_symbols(["SEPT2", "NEDD5"], shared_data_dir) == ["SEPT2", "SEPTIN2"]


def test_unknown_names_pass_through(shared_data_dir: Path) -> None:
    names = ["control", "ENSG00000141510", "NOT_A_GENE", "Stat1"]
    assert harmonise_symbols(names, shared_data_dir) == names


def test_missing_table_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="BIOJEPA_DATA_DIR"):
        harmonise_symbols(["STAT1"], tmp_path)


def test_table_without_alias_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / GENE_INFO_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b"entrez_id\tsymbol\n1\tA1BG\n"))
    with pytest.raises(DataError, match="lacks columns"):
        load_gene_table(tmp_path)


NCBI_HEADER = (
    "#tax_id\tGeneID\tSymbol\tLocusTag\tSynonyms\tdbXrefs\tchromosome\tmap_location\tdescription"
    "\ttype_of_gene\n"
)
NCBI_ROWS = [
    "9606\t255057\tCBARP\t-\tBARP|C19orf26|DOS\t-\t19\t19p13.3\tCACN beta associated\tprotein-coding\n",
    "9606\t6772\tSTAT1\t-\tCANDF7|ISGF-3|STAT91\t-\t2\t2q32.2\tsignal transducer 1\tprotein-coding\n",
    "9606\t4509\tATP8\t-\tATPase8|MTATP8\t-\tMT\t-\tATP synthase F0 subunit 8\tprotein-coding\n",
    "9606\t9999\tNOSYN\t-\t-\t-\t1\t-\tno synonyms\tprotein-coding\n",
]


def _ncbi_bytes() -> bytes:
    return gzip.compress((NCBI_HEADER + "".join(NCBI_ROWS)).encode())


def test_ncbi_gene_info_is_used_when_nothing_is_staged(tmp_path: Path) -> None:
    path = tmp_path / NCBI_GENE_INFO_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(_ncbi_bytes())
    table = load_gene_table(tmp_path)
    assert table.set_index("symbol").loc["NOSYN", "aliases"] == ""
    names = ["C19orf26", "STAT91", "MT-ATP8", "NOSYN", "unknown"]
    assert harmonise_symbols(names, tmp_path) == ["CBARP", "STAT1", "ATP8", "NOSYN", "unknown"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_fetch_gene_table_downloads_ncbi_file(
    served_dir: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = served_dir
    (root / "gene_info.gz").write_bytes(_ncbi_bytes())
    monkeypatch.setattr(genes, "NCBI_GENE_INFO_URL", f"{base}/gene_info.gz")
    data_dir = tmp_path / "data"
    path = fetch_gene_table(data_dir, progress=False)
    assert path == data_dir / NCBI_GENE_INFO_FILE
    assert harmonise_symbols(["C19orf26"], data_dir) == ["CBARP"]
