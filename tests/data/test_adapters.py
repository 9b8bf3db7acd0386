"""Adapters on tiny synthetic AnnData in each source convention."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biojepa.data.adapters import (
    NO_BATCH,
    convert,
    detect_convention,
    from_gears,
    from_replogle,
    from_scperturb,
)
from biojepa.data.schema import UNS_KEY, validate
from biojepa.errors import DataError

RNG = np.random.default_rng(0)


def _counts(n_obs: int, n_vars: int = 4) -> np.ndarray:
    return RNG.poisson(3.0, size=(n_obs, n_vars)).astype(np.float32)


def _adata(obs: dict, X=None, var_names=("GAPDH", "C19orf26", "ELMSAN1", "ACTB"), **kwargs) -> ad.AnnData:
    frame = pd.DataFrame(obs)
    frame.index = [f"c{i}" for i in range(len(frame))]
    X = _counts(len(frame), len(var_names)) if X is None else X
    return ad.AnnData(X=X, obs=frame, var=pd.DataFrame(index=list(var_names)), **kwargs)


def test_scperturb_genetic_with_combos_and_alias_symbols():
    source = _adata(
        {
            "perturbation": ["control", "KLF1", "CEBPE_RUNX1T1", "C19orf26", "control"],
            "perturbation_type": ["CRISPR", "CRISPRa", "CRISPRa", "CRISPRa", "CRISPR"],
            "cell_line": "K562",
            "gem_group": ["1", "1", "2", "2", "2"],
            "guide": ["nt", "g1", "g2", "g3", "nt"],
        }
    )
    out = detect_convention(source), convert(source)
    assert out[0] == "scperturb"
    adata = out[1]
    assert adata.obs["perturbation"].tolist() == ["control", "KLF1", "CEBPE+RUNX1T1", "CBARP", "control"]
    assert adata.obs["perturbation_type"].tolist() == ["control", "crispra", "crispra", "crispra", "control"]
    assert adata.obs["batch"].tolist() == ["1", "1", "2", "2", "2"]
    assert set(adata.obs["context"]) == {"K562"}
    assert adata.obs["guide"].tolist() == ["nt", "g1", "g2", "g3", "nt"]
    assert list(adata.var_names) == ["GAPDH", "CBARP", "MIDEAS", "ACTB"]
    np.testing.assert_array_equal(adata.X, source.X)


def test_scperturb_compound_doses_are_converted_to_nm():
    source = _adata(
        {
            "perturbation": ["control", "Dacinostat", "Dacinostat", "Givinostat"],
            "perturbation_type": ["drug"] * 4,
            "dose_value": [0.0, 0.01, 10.0, 100.0],
            "dose_unit": ["uM", "uM", "uM", "nM"],
            "time": [24, 24, 24, 24],
            "cell_line": ["A549", "A549", "MCF7", "MCF7"],
        }
    )
    adata = from_scperturb(source)
    assert adata.obs["perturbation"].tolist() == ["control", "Dacinostat", "Dacinostat", "Givinostat"]
    assert adata.obs["perturbation_type"].tolist() == ["control", "compound", "compound", "compound"]
    np.testing.assert_allclose(adata.obs["dose"], [0.0, 10.0, 10_000.0, 100.0])
    np.testing.assert_allclose(adata.obs["time"], 24.0)
    assert adata.obs["batch"].unique().tolist() == [NO_BATCH]


def test_scperturb_unknown_modality_needs_explicit_type():
    source = _adata(
        {"perturbation": ["control", "A"], "perturbation_type": ["x", "mystery"], "cell_line": "K"}
    )
    with pytest.raises(DataError, match="not recognised"):
        from_scperturb(source)
    assert from_scperturb(source, perturbation_type="crispri").obs["perturbation_type"].tolist() == [
        "control",
        "crispri",
    ]


def test_gears_is_marked_log_normalised_and_never_needs_counts():
    X = np.log1p(_counts(4) * 1.37).astype(np.float32)
    source = _adata(
        {"condition": ["ctrl", "KLF1+ctrl", "ctrl+C19orf26", "CEBPE+KLF1"], "cell_type": "K562"}, X=X
    )
    assert detect_convention(source) == "gears"
    with pytest.raises(DataError, match="perturbation_type"):
        from_gears(source)
    adata = from_gears(source, perturbation_type="crispra")
    assert adata.obs["perturbation"].tolist() == ["control", "KLF1", "CBARP", "CEBPE+KLF1"]
    assert adata.uns[UNS_KEY]["log_normalised"] is True
    assert adata.uns[UNS_KEY]["raw_counts"] is False
    np.testing.assert_allclose(adata.X, X)


def test_replogle_figshare_convention_with_ensembl_var():
    var = pd.DataFrame({"gene_name": ["GAPDH", "C19orf26", "ACTB"]}, index=["ENSG1", "ENSG2", "ENSG3"])
    obs = pd.DataFrame(
        {"gene": ["non-targeting", "GAPDH", "ACTB"], "gem_group": [1, 2, 2]}, index=["a", "b", "c"]
    )
    source = ad.AnnData(X=_counts(3, 3), obs=obs, var=var)
    assert detect_convention(source) == "replogle"
    with pytest.raises(DataError, match="context"):
        from_replogle(source)
    adata = from_replogle(source, context="K562")
    assert adata.obs["perturbation"].tolist() == ["control", "GAPDH", "ACTB"]
    assert adata.obs["perturbation_type"].tolist() == ["control", "crispri", "crispri"]
    assert adata.obs["batch"].tolist() == ["1", "2", "2"]
    assert list(adata.var_names) == ["GAPDH", "CBARP", "ACTB"]
    assert list(adata.var["source_id"]) == ["ENSG1", "ENSG2", "ENSG3"]


def test_cpa_norman_reads_counts_layer(shared_data_dir):
    source = ad.read_h5ad(
        shared_data_dir / "norman2019_genetic_interactions/fixture_scx/norman_subset_50x50.h5ad"
    )
    assert detect_convention(source) == "cpa_norman"
    adata = convert(source)
    validate(adata)
    assert set(adata.obs["context"]) == {"K562"}
    assert "MAP2K6+MIDEAS" in set(adata.obs["perturbation"])  # ELMSAN1 → MIDEAS
    assert (adata.obs["perturbation"] == "control").sum() == (source.obs["condition"] == "ctrl").sum()
    np.testing.assert_array_equal(adata.X, source.layers["counts"])


def test_canonical_input_passes_through_and_unknown_convention_fails():
    canonical = from_scperturb(
        _adata({"perturbation": ["control", "A"], "cell_line": "K"}), perturbation_type="crispri"
    )
    assert detect_convention(canonical) == "canonical"
    assert convert(canonical).obs["perturbation"].tolist() == ["control", "A"]
    with pytest.raises(DataError, match="cannot tell the source convention"):
        detect_convention(_adata({"label": ["x", "y"]}))


def test_no_control_cells_is_an_error():
    with pytest.raises(DataError, match="no control cells"):
        from_scperturb(_adata({"perturbation": ["A", "B"], "cell_line": "K"}), perturbation_type="crispri")


def test_logged_data_passed_as_counts_is_an_error():
    X = np.log1p(_counts(2) * 1.37).astype(np.float32)
    source = _adata({"perturbation": ["control", "A"], "cell_line": "K"}, X=X)
    with pytest.raises(DataError, match="raw counts are required"):
        from_scperturb(source, perturbation_type="crispri")
