from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from biojepa.data import load_dataset
from biojepa.data.adapters import from_gears, from_scperturb
from biojepa.data.io import write_h5ad
from biojepa.data.preprocess import load_prepared, prepare, select_hvg
from biojepa.data.schema import UNS_KEY
from biojepa.errors import DataError


@pytest.fixture(scope="module")
def papalexi(shared_data_dir):
    return load_dataset("papalexi2021", data_dir=shared_data_dir)


@pytest.fixture(scope="module")
def prepared(papalexi):
    return prepare(papalexi, dataset="papalexi2021")


def _synthetic(X, perturbations=("control", "control", "A", "A", "B", "B"), **obs) -> ad.AnnData:
    frame = pd.DataFrame({"perturbation": list(perturbations), "cell_line": "K", **obs})
    frame.index = [f"c{i}" for i in range(len(frame))]
    var = pd.DataFrame(index=[f"G{i}" for i in range(X.shape[1])])
    return from_scperturb(ad.AnnData(X=X, obs=frame, var=var), perturbation_type="crispri")


def test_papalexi_prepared_schema(papalexi, prepared):
    assert prepared.shape == papalexi.shape  # mild QC keeps every cell and gene
    assert prepared.obs["perturbation"].nunique() == 26
    assert (prepared.obs["perturbation"] != "control").groupby(prepared.obs["perturbation"]).size().size == 26
    assert prepared.obs["batch"].nunique() == 3
    info = prepared.uns[UNS_KEY]
    assert info["log_normalised"] and info["prepared"] and info["dataset"] == "papalexi2021"
    assert prepared.X.dtype == np.float32
    counts = papalexi.X
    np.testing.assert_array_equal(prepared.layers["counts"].toarray(), counts.toarray())
    np.testing.assert_allclose(
        prepared.obs["log_library_size"], np.log(np.asarray(counts.sum(1)).ravel()), rtol=1e-5
    )


def test_log_is_applied_exactly_once(papalexi, prepared):
    counts = papalexi.X.toarray().astype(np.float64)
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(prepared.X.toarray(), expected, rtol=1e-4, atol=1e-5)
    again = prepare(prepared)
    np.testing.assert_array_equal(again.X.toarray(), prepared.X.toarray())


def test_prepared_file_round_trip(prepared, tmp_path):
    path = write_h5ad(prepared, tmp_path / "p.h5ad")
    loaded = load_prepared(path)
    assert loaded.uns[UNS_KEY]["prepared"]
    np.testing.assert_array_equal(loaded.X.toarray(), prepared.X.toarray())
    with pytest.raises(DataError, match="not prepared"):
        raw = tmp_path / "raw.h5ad"
        write_h5ad(from_scperturb(_synthetic_raw(), perturbation_type="crispri"), raw)
        load_prepared(raw)


def _synthetic_raw() -> ad.AnnData:
    X = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
    frame = pd.DataFrame({"perturbation": ["control", "control", "A", "A", "B", "B"], "cell_line": "K"})
    frame.index = [f"c{i}" for i in range(6)]
    return ad.AnnData(X=X, obs=frame, var=pd.DataFrame(index=["G0", "G1"]))


def test_logged_data_passed_as_counts_is_refused():
    adata = _synthetic(np.arange(12, dtype=np.float32).reshape(6, 2) + 1)
    adata.X = np.log1p(adata.X * 1.3)
    with pytest.raises(DataError, match="raw counts are required"):
        prepare(adata)


def test_no_control_cells_is_refused():
    adata = _synthetic(np.ones((6, 2), dtype=np.float32))
    adata.obs["perturbation"] = pd.Categorical(["A"] * 6)
    adata.obs["perturbation_type"] = pd.Categorical(["crispri"] * 6)
    with pytest.raises(DataError, match="no control cells"):
        prepare(adata)


def test_qc_reports_removed_groups_and_guards_controls(caplog):
    X = np.array([[3, 1], [2, 2], [0, 0], [0, 0], [1, 4], [2, 0]], dtype=np.float32)
    out = prepare(_synthetic(scipy.sparse.csr_matrix(X)))
    qc = out.uns[UNS_KEY]["qc"]
    assert qc["cells_removed_min_genes"] == 2 and qc["groups_removed"] == "A|K"
    assert "QC removed every cell" in caplog.text
    X_no_control = X.copy()
    X_no_control[:2] = 0
    with pytest.raises(DataError, match="every control cell"):
        prepare(_synthetic(X_no_control))


def test_guide_filter_is_opt_in_and_needs_columns(papalexi):
    with pytest.raises(DataError, match="guide_filter needs"):
        prepare(_synthetic(np.ones((6, 2), dtype=np.float32)), guide_filter=True)
    small = papalexi[:2000].copy()
    filtered = prepare(small, guide_filter=True)
    obs = small.obs
    keep = (obs["grna_umi_max"] >= 5) & (obs["grna_umi_max"] > 2 * obs["grna_umi_second"])
    assert filtered.n_obs == int(keep.sum()) < small.n_obs


def test_gears_input_is_not_logged_again(caplog):
    X = np.log1p(np.array([[3, 1], [2, 2], [1, 5], [4, 1]], dtype=np.float32) * 1.37)
    frame = pd.DataFrame({"condition": ["ctrl", "ctrl", "A+ctrl", "A+B"], "cell_type": "K562"})
    frame.index = [f"c{i}" for i in range(4)]
    gears = from_gears(
        ad.AnnData(X=X, obs=frame, var=pd.DataFrame(index=["G0", "G1"])), perturbation_type="crispra"
    )
    out = prepare(gears)
    np.testing.assert_allclose(out.X.toarray(), X, rtol=1e-6)
    assert "counts" not in out.layers and out.uns[UNS_KEY]["raw_counts"] is False
    assert "skipping normalize_total" in caplog.text


def test_counts_layer_is_used_when_x_is_not_counts():
    raw = _synthetic(np.array([[3, 1], [2, 2], [1, 5], [4, 1], [1, 1], [2, 3]], dtype=np.float32))
    raw.layers["counts"] = raw.X.copy()
    raw.X = np.log1p(raw.X * 2.5)
    out = prepare(raw)
    np.testing.assert_array_equal(out.layers["counts"].toarray(), raw.layers["counts"])


def test_select_hvg_ignores_test_cells():
    rng = np.random.default_rng(0)
    X = rng.poisson(np.linspace(2, 30, 30), size=(200, 30)).astype(np.float32)
    test = np.zeros(200, dtype=bool)
    test[150:] = True
    X[:, 0] = rng.poisson(12, size=200)
    X[test, 0] = rng.choice([0, 60], size=test.sum())  # gene 0 is bimodal only in test cells
    perts = ["control"] * 50 + ["A"] * 100 + ["B"] * 50
    adata = prepare(_synthetic(X, perturbations=perts))
    with_test = select_hvg(adata, np.ones(200, dtype=bool), 5)
    train_only = select_hvg(adata, ~test, 5)
    assert with_test[0] and not train_only[0]
    assert train_only.sum() == 5
    mutated = adata.copy()
    dense = mutated.X.toarray()
    dense[test] = rng.poisson(50, size=(test.sum(), 30))  # anything in test cells: same selection
    mutated.X = scipy.sparse.csr_matrix(dense)
    np.testing.assert_array_equal(select_hvg(mutated, ~test, 5), train_only)
    with pytest.raises(DataError, match="shape"):
        select_hvg(adata, np.ones(3, dtype=bool), 5)
