"""Prior sources: local files first, and a real download of a missing source from a local server."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from biojepa.errors import DataError, DownloadError
from biojepa.priors import cache, sources
from biojepa.priors.hallmark import hallmark_priors
from biojepa.priors.regulons import regulon_source_file
from biojepa.priors.sources import PRIOR_SOURCES, fetch_source, source_path

GMT = "".join(
    f"SET_{i}\tdesc\t" + "\t".join(f"GENE{i}_{j}" for j in range(5)) + "\tSHARED\n" for i in range(6)
)


def test_every_source_has_a_url_and_a_path_in_the_data_dir() -> None:
    assert set(PRIOR_SOURCES) == {"go_basic", "goa_human", "dorothea", "hallmark"}
    for source in PRIOR_SOURCES.values():
        assert source.url.startswith(("http://", "https://")) and not source.path.is_absolute()


def test_staged_file_is_preferred(shared_data_dir: Path) -> None:
    assert regulon_source_file(shared_data_dir).name == "dorothea_hs.tsv.gz"


def test_missing_source_explains_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"fetch_source\('hallmark'\)"):
        source_path("hallmark", tmp_path)
    with pytest.raises(DataError, match="unknown prior source"):
        fetch_source("esm2", tmp_path)


def test_fetched_source_is_downloaded_once_and_then_used(
    http_dir: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data_dir: Path
) -> None:
    base, served = http_dir
    (served / "h.gmt").write_text(GMT)
    local = dataclasses.replace(PRIOR_SOURCES["hallmark"], url=f"{base}/h.gmt")
    monkeypatch.setitem(sources.PRIOR_SOURCES, "hallmark", local)
    data_dir = tmp_path / "data"
    path = fetch_source("hallmark", data_dir, progress=False)
    assert path == data_dir / local.path and path.read_text() == GMT
    (served / "h.gmt").unlink()
    assert fetch_source("hallmark", data_dir, progress=False) == path  # present: no second download
    # Symbols are harmonised with the gene table, which this data dir borrows from the shared one.
    gene_table = data_dir / "gene_annotations_go" / "human_gene_info.tsv.gz"
    gene_table.parent.mkdir(parents=True)
    gene_table.symlink_to(shared_data_dir / "gene_annotations_go" / "human_gene_info.tsv.gz")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    priors = hallmark_priors(data_dir)
    assert priors.dim == 6 and len(priors) == 31


def test_failed_download_is_a_download_error(
    http_dir: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = http_dir
    local = dataclasses.replace(PRIOR_SOURCES["dorothea"], url=f"{base}/missing.tsv")
    monkeypatch.setitem(sources.PRIOR_SOURCES, "dorothea", local)
    with pytest.raises(DownloadError):
        fetch_source("dorothea", tmp_path, progress=False)
    assert not (tmp_path / local.path).exists()
