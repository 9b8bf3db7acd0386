from __future__ import annotations

import pytest

from biojepa.data import load_dataset
from biojepa.errors import DataError


def test_papalexi_by_name_is_canonical(shared_data_dir):
    adata = load_dataset("papalexi2021", data_dir=shared_data_dir)
    assert adata.shape == (20729, 299)
    perts = set(adata.obs["perturbation"])
    assert "control" in perts and len(perts) == 26
    assert set(adata.obs["context"]) == {"THP-1"}
    assert set(adata.obs["perturbation_type"]) == {"control", "crispr_ko"}
    assert sorted(adata.obs["batch"].unique()) == ["rep_1", "rep_2", "rep_3"]
    assert "grna" in adata.obs.columns


def test_datlinger_context_is_stimulation(shared_data_dir):
    adata = load_dataset("datlinger2017", data_dir=shared_data_dir)
    assert set(adata.obs["context"]) == {"stimulated", "unstimulated"}
    assert adata.obs.groupby("context", observed=True)["perturbation"].nunique().min() == 21


def test_path_is_auto_detected(shared_data_dir):
    path = shared_data_dir / "norman2019_genetic_interactions/fixture_scx/norman_subset_50x50.h5ad"
    adata = load_dataset(path)
    assert set(adata.obs["perturbation_type"]) == {"control", "crispra"}


def test_absent_dataset_says_how_to_fetch(tmp_path):
    with pytest.raises(DataError, match="biojepa data fetch norman2019"):
        load_dataset("norman2019", data_dir=tmp_path)


def test_unknown_name_and_missing_file():
    with pytest.raises(DataError, match="unknown dataset 'nonsense'"):
        load_dataset("nonsense")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("/nowhere/x.h5ad")
