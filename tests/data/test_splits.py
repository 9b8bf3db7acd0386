from __future__ import annotations

import itertools

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biojepa.data import load_dataset
from biojepa.data.preprocess import prepare, select_hvg
from biojepa.data.splits import Split, make_split
from biojepa.errors import SplitError


@pytest.fixture(scope="module")
def papalexi(shared_data_dir):
    return load_dataset("papalexi2021", data_dir=shared_data_dir)


def _canonical(perturbations, contexts=None, types=None) -> ad.AnnData:
    n = len(perturbations)
    contexts = contexts or ["K562"] * n
    types = types or ["control" if p == "control" else "crispra" for p in perturbations]
    obs = pd.DataFrame(
        {
            "perturbation": perturbations,
            "perturbation_type": types,
            "dose": 0.0,
            "time": np.nan,
            "context": contexts,
            "batch": "b",
        },
        index=[f"c{i}" for i in range(n)],
    )
    X = np.random.default_rng(0).poisson(3, size=(n, 8)).astype(np.float32)
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(8)]))


def _labels(keys) -> set[str]:
    return {p for p, _ in keys}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_unseen_perturbation_papalexi_is_leak_free(papalexi, seed):
    split = make_split(papalexi, "unseen_perturbation", seed)
    train, val, test = _labels(split.train), _labels(split.val), _labels(split.test)
    assert len(test) == 6 and len(val) == 2 and len(train) == 17
    assert not (test & train) and not (test & val) and not (train & val)
    masks = split.cell_masks(papalexi)
    perts = papalexi.obs["perturbation"].astype(str).to_numpy()
    assert not set(perts[masks["train"] | masks["val"]]) & test  # no test cell reaches train/val
    assert set(perts[masks["test"]]) == test
    assert not (masks["control"] & masks["test"]).any()
    assert (masks["train"] | masks["val"] | masks["test"] | masks["control"]).all()
    assert not (masks["train"] & masks["test"]).any()


def test_split_is_deterministic_and_seeds_differ(papalexi):
    splits = {s: make_split(papalexi, "unseen_perturbation", s) for s in range(1, 6)}
    assert make_split(papalexi, "unseen_perturbation", 3).test == splits[3].test
    for a, b in itertools.combinations(splits.values(), 2):
        assert a.test != b.test


def test_hvg_on_train_cells_ignores_test_cells(papalexi):
    prepared = prepare(papalexi[::4].copy())
    split = make_split(prepared, "unseen_perturbation", 1)
    masks = split.cell_masks(prepared)
    fit_mask = masks["train"] | masks["control"]
    hvg = select_hvg(prepared, fit_mask, 50)
    scrambled = prepared.copy()
    dense = scrambled.X.toarray()
    dense[masks["test"]] = dense[masks["test"]][:, ::-1]  # change only the test cells
    scrambled.X = type(prepared.X)(dense)
    np.testing.assert_array_equal(select_hvg(scrambled, fit_mask, 50), hvg)


def test_save_load_round_trip(papalexi, tmp_path):
    split = make_split(papalexi, "unseen_perturbation", 2)
    path = split.save(tmp_path / "split.json")
    loaded = Split.load(path)
    assert loaded == split
    assert all(isinstance(k, tuple) for k in loaded.test)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SplitError, match="not a valid split file"):
        Split.load(tmp_path / "bad.json")


def test_doubles_seen_groups():
    singles = ["A", "B", "C", "D", "E", "F", "G", "H"]
    doubles = ["A+B", "A+C", "B+C", "C+D", "D+E", "E+F", "F+G", "G+H", "A+H", "B+G"]
    perts = ["control"] * 3 + [p for p in singles + doubles for _ in range(2)]
    adata = _canonical(perts)
    split = make_split(adata, "doubles", 1, test_fraction=0.25, val_fraction=0.0)
    train_genes = {p for p in _labels(split.train) if "+" not in p}
    assert _labels(split.groups["single"]) == set(singles) - train_genes
    for k in (0, 1, 2):
        for label in _labels(split.groups[f"seen_{k}"]):
            assert sum(g in train_genes for g in label.split("+")) == k
    for label in _labels(split.train):
        assert all(g in train_genes for g in label.split("+"))
    grouped = set().union(*(_labels(v) for v in split.groups.values()))
    assert grouped == _labels(split.test)


def test_unseen_perturbation_groups_test_conditions_by_targets_perturbed_in_training():
    singles = ["A", "B", "C", "D", "E", "F", "G", "H"]
    doubles = ["A+B", "C+D", "E+F", "G+H", "A+H"]
    perts = ["control"] * 3 + [p for p in singles + doubles for _ in range(2)]
    adata = _canonical(perts)
    for seed in range(1, 6):
        split = make_split(adata, "unseen_perturbation", seed, test_fraction=0.4, val_fraction=0.1)
        fitted = {g for label in _labels(split.train) | _labels(split.val) for g in label.split("+")}
        groups = {name: _labels(keys) for name, keys in split.groups.items()}
        assert groups.get("single", set()) == {p for p in _labels(split.test) if "+" not in p}
        assert groups.get("combination", set()) == {p for p in _labels(split.test) if "+" in p}
        by_known = {name: labels for name, labels in groups.items() if name.endswith("_targets")}
        for name, labels in by_known.items():
            for label in labels:
                n_known = sum(g in fitted for g in label.split("+"))
                targets = len(label.split("+"))
                assert {0: "novel_targets", targets: "known_targets"}.get(
                    n_known, "partly_known_targets"
                ) == name
        assert set().union(*by_known.values()) == _labels(split.test)


def test_unseen_perturbation_of_singles_only_has_no_target_groups():
    adata = _canonical(["control"] * 3 + [p for p in "ABCDEFGH" for _ in range(2)])
    assert make_split(adata, "unseen_perturbation", 1).groups == {}


def test_unseen_context_keeps_held_out_controls_as_inputs():
    perts = ["control", "A", "B", "C"] * 2 * 3
    contexts = ["X"] * 12 + ["Y"] * 12
    adata = _canonical(perts, contexts)
    split = make_split(adata, "unseen_context", 0, holdout_context="Y")
    assert {c for _, c in split.test} == {"Y"} and {c for _, c in split.train + split.val} == {"X"}
    masks = split.cell_masks(adata)
    held_out_controls = masks["control"] & (adata.obs["context"] == "Y").to_numpy()
    assert held_out_controls.sum() == 3 and not (held_out_controls & masks["test"]).any()
    with pytest.raises(SplitError, match="at least 2 contexts"):
        make_split(_canonical(["control", "A", "B"]), "unseen_context", 0)


def test_unseen_compound_holds_out_all_doses():
    perts = ["control"] + [f"drug{i}" for i in range(8) for _ in range(3)]
    types = ["control"] + ["compound"] * 24
    adata = _canonical(perts, types=types)
    adata.obs["dose"] = [0.0] + [10.0, 100.0, 1000.0] * 8
    split = make_split(adata, "unseen_compound", 4)
    assert len(split.test) == 2
    masks = split.cell_masks(adata)
    assert masks["test"].sum() == 6  # three doses of each of the two held-out compounds
    with pytest.raises(SplitError, match="at least 2 compounds"):
        make_split(_canonical(["control", "A", "B"]), "unseen_compound", 0)


def test_bad_requests_are_split_errors(papalexi):
    with pytest.raises(SplitError, match="unknown split kind"):
        make_split(papalexi, "random", 1)
    with pytest.raises(SplitError, match="test_fraction"):
        make_split(papalexi, "unseen_perturbation", 1, test_fraction=1.5)
    split = make_split(_canonical(["control", "A", "B", "C"]), "unseen_perturbation", 1)
    with pytest.raises(SplitError, match="outside this split"):
        split.cell_masks(papalexi)
    with pytest.raises(SplitError, match="both"):
        Split("unseen_perturbation", 1, [("A", "K")], [], [("A", "K")])
    with pytest.raises(SplitError, match="control"):
        Split("unseen_perturbation", 1, [("control", "K")], [], [])
