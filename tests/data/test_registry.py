from __future__ import annotations

import pytest

from biojepa.data.download import sha256sum
from biojepa.data.registry import DATASETS, get_dataset
from biojepa.errors import DataError

EXPECTED = {
    "papalexi2021",
    "datlinger2017",
    "norman2019",
    "adamson2016",
    "replogle2022_k562_essential",
    "replogle2022_rpe1",
    "sciplex3",
}


def test_registry_has_the_seven_datasets_with_metadata():
    assert set(DATASETS) == EXPECTED
    for entry in DATASETS.values():
        assert entry.urls and all(u.startswith("https://") for u in entry.urls)
        assert entry.license and entry.citation and entry.paths


def test_unknown_name_lists_valid_names():
    with pytest.raises(DataError, match=r"unknown dataset 'nope'.*papalexi2021"):
        get_dataset("nope")


def test_local_datasets_are_found_and_match_manifest_checksums(shared_data_dir):
    for name in ("papalexi2021", "datlinger2017"):
        entry = get_dataset(name)
        path = entry.local_path(shared_data_dir)
        assert entry.is_local(shared_data_dir) and path is not None
        assert sha256sum(path) == entry.sha256


def test_absent_dataset_is_not_local(tmp_path):
    assert not get_dataset("norman2019").is_local(tmp_path)
    assert get_dataset("norman2019").local_path(tmp_path) is None
