"""Where each gene-prior source lives: the staged file in the data directory, or its canonical URL.

Local files are always used first: the tables staged in the data directory (GO from Bioconductor's
``org.Hs.eg.db``/``GO.db``, DoRothEA, Hallmark v7.0), then files fetched earlier with
:func:`fetch_source`. Nothing is downloaded unless asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from biojepa.config import data_dir as default_data_dir
from biojepa.data.download import download_file
from biojepa.errors import DataError


@dataclass(frozen=True)
class PriorSource:
    """One downloadable prior resource; ``path`` is relative to the data directory."""

    name: str
    path: Path
    url: str
    license: str
    citation: str
    sha256: str | None = None  # the canonical URLs serve the current release, so no fixed checksum


PRIOR_SOURCES: dict[str, PriorSource] = {
    s.name: s
    for s in (
        PriorSource(
            "go_basic",
            Path("gene_ontology") / "go-basic.obo",
            "http://current.geneontology.org/ontology/go-basic.obo",
            "CC BY 4.0",
            "Gene Ontology Consortium, Nucleic Acids Res 2023",
        ),
        PriorSource(
            "goa_human",
            Path("gene_ontology") / "goa_human.gaf.gz",
            "http://current.geneontology.org/annotations/goa_human.gaf.gz",
            "CC BY 4.0",
            "GOA (EMBL-EBI), Gene Ontology Consortium",
        ),
        PriorSource(
            "dorothea",
            Path("tf_regulons_dorothea") / "omnipath_dorothea_abc.tsv",
            "https://omnipathdb.org/interactions?datasets=dorothea&organisms=9606"
            "&dorothea_levels=A,B,C&genesymbols=yes&fields=dorothea_level",
            "GPL-3 (DoRothEA)",
            "Garcia-Alonso et al., Genome Res 2019",
        ),
        PriorSource(
            "hallmark",
            Path("gene_sets") / "h.all.v2023.2.Hs.symbols.gmt",
            "https://data.broadinstitute.org/gsea-msigdb/msigdb/release/2023.2.Hs/h.all.v2023.2.Hs.symbols.gmt",
            "CC BY 4.0",
            "Liberzon et al., Cell Syst 2015",
        ),
    )
}

# Files staged with the repository's data (see each folder's MANIFEST.md); preferred when present.
STAGED_FILES: dict[str, Path] = {
    "gene2go": Path("gene_annotations_go") / "human_gene2go_direct.tsv.gz",
    "go_parents": Path("gene_annotations_go") / "go_parents.tsv.gz",
    "go_terms": Path("gene_annotations_go") / "go_terms.tsv.gz",
    "dorothea": Path("tf_regulons_dorothea") / "dorothea_hs.tsv.gz",
    "hallmark": Path("gene_sets") / "h.all.v7.0.symbols.gmt",
}


def _root(data_dir: Path | None) -> Path:
    return Path(data_dir if data_dir is not None else default_data_dir())


def staged_files(keys: Sequence[str], data_dir: Path | None = None) -> list[Path] | None:
    """Paths of the staged files ``keys`` if all of them exist, else ``None``."""
    paths = [_root(data_dir) / STAGED_FILES[k] for k in keys]
    return paths if all(p.is_file() for p in paths) else None


def source_path(name: str, data_dir: Path | None = None) -> Path:
    """Local path of a downloadable source; :class:`DataError` saying how to fetch it if missing."""
    if name not in PRIOR_SOURCES:
        raise DataError(f"unknown prior source {name!r}; known: {sorted(PRIOR_SOURCES)}")
    path = _root(data_dir) / PRIOR_SOURCES[name].path
    if not path.is_file():
        raise DataError(
            f"prior source {name!r} not found at {path}; download it with "
            f"biojepa.priors.sources.fetch_source({name!r}) (from {PRIOR_SOURCES[name].url}) "
            "or point BIOJEPA_DATA_DIR at a directory that has it"
        )
    return path


def fetch_source(name: str, data_dir: Path | None = None, *, progress: bool = True) -> Path:
    """Download a prior source into the data directory unless it is already there; return its path."""
    if name not in PRIOR_SOURCES:
        raise DataError(f"unknown prior source {name!r}; known: {sorted(PRIOR_SOURCES)}")
    source = PRIOR_SOURCES[name]
    return download_file(source.url, _root(data_dir) / source.path, sha256=source.sha256, progress=progress)
