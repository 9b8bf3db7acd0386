"""The dataset registry: one entry per perturbation screen, pertpy style.

Each :class:`DatasetEntry` names where the data lives inside the data directory
(:func:`biojepa.config.data_dir`), where it can be downloaded from, its license and citation, and
the source adapter (:mod:`biojepa.data.adapters`) with the options that convert it to the canonical
schema. Download URLs are those of the public deposits (Zenodo scPerturb, Harvard Dataverse GEARS,
figshare+ Replogle); checksums are given where they are known and verified on download.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from biojepa.config import data_dir as default_data_dir
from biojepa.errors import DataError

SCPERTURB_ZENODO = "https://zenodo.org/records/10044268/files/{}?download=1"
GEARS_DATAVERSE = "https://dataverse.harvard.edu/api/access/datafile/{}"
FIGSHARE_PLUS = "https://plus.figshare.com/ndownloader/files/{}"


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: ``url`` → ``dest`` (relative to the data directory).

    ``extract`` unpacks the downloaded archive next to ``dest`` after the checksum is verified.
    """

    url: str
    dest: str
    sha256: str | None = None
    extract: bool = False


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    ``paths`` are candidate h5ad files relative to the data directory; the first one present is
    loaded (e.g. the staged subset before the full download). ``sha256`` is the checksum of
    ``paths[0]`` where known. ``adapter`` names a function in :data:`biojepa.data.adapters.ADAPTERS`
    and ``adapter_options`` are its keyword arguments.
    """

    name: str
    title: str
    adapter: str
    license: str
    citation: str
    paths: tuple[str, ...]
    remote: tuple[RemoteFile, ...] = ()
    sha256: str | None = None
    adapter_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    notes: str = ""

    @property
    def urls(self) -> tuple[str, ...]:
        """Download URLs of the dataset's remote files."""
        return tuple(r.url for r in self.remote)

    def local_path(self, root: Path | None = None) -> Path | None:
        """The first of :attr:`paths` that exists under ``root`` (default: the data directory)."""
        base = Path(root) if root is not None else default_data_dir()
        for rel in self.paths:
            candidate = base / rel
            if candidate.is_file():
                return candidate
        return None

    def is_local(self, root: Path | None = None) -> bool:
        """Whether the dataset is present in ``root`` (default: the data directory)."""
        return self.local_path(root) is not None


def _options(**kwargs: Any) -> Mapping[str, Any]:
    return MappingProxyType(kwargs)


_ENTRIES = (
    DatasetEntry(
        name="papalexi2021",
        title="Papalexi 2021 THP-1 ECCITE-seq CRISPR-KO (25 targets, 299-gene subset)",
        adapter="scperturb",
        license="MIT (sceptredata subset); data GEO GSE153056",
        citation="Papalexi et al. 2021, Nat Genet 53:322-331; Barry et al. (sceptre)",
        paths=(
            "papalexi2021_thp1_eccite_crisprko_subset/papalexi2021_thp1_lowmoi_subset.h5ad",
            "papalexi2021/PapalexiSatija2021_eccite_RNA.h5ad",
        ),
        remote=(
            RemoteFile(
                SCPERTURB_ZENODO.format("PapalexiSatija2021_eccite_RNA.h5ad"),
                "papalexi2021/PapalexiSatija2021_eccite_RNA.h5ad",
            ),
        ),
        sha256="716a142002cf220ca2c8e0c79b74a218eaf6db30d0f1b564c13bc1dffe7344f3",
        adapter_options=_options(context="THP-1", batch_key="bio_rep", perturbation_type="crispr_ko"),
        notes="The staged subset keeps all 20,729 cells but 299 genes; the download is the full file.",
    ),
    DatasetEntry(
        name="datlinger2017",
        title="Datlinger 2017 Jurkat CROP-seq (20 targets x TCR stimulation, 2,000-gene subset)",
        adapter="scperturb",
        license="MIT (scPerturb test subset); data GEO GSE92872",
        citation="Datlinger et al. 2017, Nat Methods 14:297-301; Peidli et al. 2024 (scPerturb)",
        paths=(
            "datlinger2017_jurkat_cropseq_subset/datlinger2017_jurkat_cropseq_subset.h5ad",
            "datlinger2017/DatlingerBock2017.h5ad",
        ),
        remote=(
            RemoteFile(
                SCPERTURB_ZENODO.format("DatlingerBock2017.h5ad"), "datlinger2017/DatlingerBock2017.h5ad"
            ),
        ),
        sha256="8e3a88a79476bec3cea4c941f71c11bbf2c15edd368067b93495cda264d56cc5",
        adapter_options=_options(
            context_key="stimulation", batch_key="sample", perturbation_type="crispr_ko"
        ),
        notes="Context = TCR stimulation state; batch = the scPerturb `sample` (well).",
    ),
    DatasetEntry(
        name="norman2019",
        title="Norman 2019 K562 CRISPRa singles and doubles (GEARS processed)",
        adapter="gears",
        license="CC BY 4.0 (GEARS Dataverse deposit); data GEO GSE133344",
        citation="Norman et al. 2019, Science 365:786-793; Roohani et al. 2024 (GEARS)",
        paths=("norman2019/norman/perturb_processed.h5ad",),
        remote=(RemoteFile(GEARS_DATAVERSE.format(6154020), "norman2019/norman.zip", extract=True),),
        adapter_options=_options(context="K562", perturbation_type="crispra"),
        notes="GEARS files are log-normalised and hold no raw counts.",
    ),
    DatasetEntry(
        name="adamson2016",
        title="Adamson 2016 K562 CRISPRi UPR screen (GEARS processed)",
        adapter="gears",
        license="CC BY 4.0 (GEARS Dataverse deposit); data GEO GSE90546",
        citation="Adamson et al. 2016, Cell 167:1867-1882; Roohani et al. 2024 (GEARS)",
        paths=("adamson2016/adamson/perturb_processed.h5ad",),
        remote=(RemoteFile(GEARS_DATAVERSE.format(6154417), "adamson2016/adamson.zip", extract=True),),
        adapter_options=_options(context="K562", perturbation_type="crispri"),
        notes="GEARS files are log-normalised and hold no raw counts.",
    ),
    DatasetEntry(
        name="replogle2022_k562_essential",
        title="Replogle 2022 K562 essential-gene CRISPRi Perturb-seq (single cells, raw counts)",
        adapter="replogle",
        license="CC BY 4.0",
        citation="Replogle et al. 2022, Cell 185:2559-2575",
        paths=("replogle2022_k562_essential/K562_essential_raw_singlecell_01.h5ad",),
        remote=(
            RemoteFile(
                FIGSHARE_PLUS.format(35773219),
                "replogle2022_k562_essential/K562_essential_raw_singlecell_01.h5ad",
            ),
        ),
        adapter_options=_options(context="K562", perturbation_type="crispri", batch_key="gem_group"),
        notes="10.7 GB (figshare+ article 20029387).",
    ),
    DatasetEntry(
        name="replogle2022_rpe1",
        title="Replogle 2022 RPE1 essential-gene CRISPRi Perturb-seq (scPerturb)",
        adapter="scperturb",
        license="CC BY 4.0",
        citation="Replogle et al. 2022, Cell 185:2559-2575; Peidli et al. 2024 (scPerturb)",
        paths=("replogle2022_rpe1/ReplogleWeissman2022_rpe1.h5ad",),
        remote=(
            RemoteFile(
                SCPERTURB_ZENODO.format("ReplogleWeissman2022_rpe1.h5ad"),
                "replogle2022_rpe1/ReplogleWeissman2022_rpe1.h5ad",
            ),
        ),
        adapter_options=_options(context="RPE1", perturbation_type="crispri"),
    ),
    DatasetEntry(
        name="sciplex3",
        title="sci-Plex 3: 188 compounds x 4 doses x 3 cell lines (scPerturb)",
        adapter="scperturb",
        license="CC BY 4.0 (scPerturb Zenodo deposit); data GEO GSE139944",
        citation="Srivatsan et al. 2020, Science 367:45-51; Peidli et al. 2024 (scPerturb)",
        paths=("sciplex3/SrivatsanTrapnell2020_sciplex3.h5ad",),
        remote=(
            RemoteFile(
                SCPERTURB_ZENODO.format("SrivatsanTrapnell2020_sciplex3.h5ad"),
                "sciplex3/SrivatsanTrapnell2020_sciplex3.h5ad",
            ),
        ),
        adapter_options=_options(context_key="cell_line", perturbation_type="compound"),
        notes="Doses 10-10,000 nM, 24 h.",
    ),
)

DATASETS: dict[str, DatasetEntry] = {entry.name: entry for entry in _ENTRIES}


def get_dataset(name: str) -> DatasetEntry:
    """The registry entry called ``name``; :class:`DataError` listing the valid names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r}; registered datasets: {', '.join(sorted(DATASETS))} "
            "(or pass the path of an .h5ad file)"
        ) from None
