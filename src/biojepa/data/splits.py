"""Train / validation / test splits over conditions keyed ``(perturbation, context)``.

Kinds:

- ``unseen_perturbation``: a ``test_fraction`` of the perturbation labels is held out in every
  context; ``val_fraction`` of the remaining labels goes to validation. When some perturbations are
  combinations, a held-out label's targets may still be perturbed in training as part of another
  label (target ``A`` held out alone while ``A+B`` trains), so the test conditions are grouped:
  ``single`` / ``combination``, and ``novel_targets`` (no target perturbed in any training or
  validation condition), ``known_targets`` (every target perturbed in one) or ``partly_known_targets``.
- ``doubles`` (Norman et al. 2019 / GEARS style): a ``test_fraction`` of the single-gene
  perturbations is held out (those genes are unseen) and ``val_fraction`` of the rest goes to
  validation. A double is ``seen_k`` when ``k`` of its genes have their single perturbation in
  training; doubles with ``k < 2`` are all test, a ``test_fraction`` of the ``seen_2`` doubles is test.
- ``unseen_context``: every perturbed condition of one context is test (its control cells stay
  available as inputs); ``val_fraction`` of the other conditions goes to validation.
- ``unseen_compound``: like ``unseen_perturbation`` over compound labels only (all doses and
  contexts of a held-out compound are test); genetic conditions, if any, stay in training.

Control cells are never test targets. Splits are deterministic per seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from biojepa.data.io import write_json
from biojepa.data.schema import CONTROL, split_perturbation
from biojepa.errors import SplitError

Key = tuple[str, str]
KINDS = ("unseen_perturbation", "doubles", "unseen_context", "unseen_compound")
FORMAT_VERSION = 1


@dataclass
class Split:
    """Assignment of non-control conditions ``(perturbation, context)`` to train / val / test."""

    kind: str
    seed: int
    train: list[Key]
    val: list[Key]
    test: list[Key]
    groups: dict[str, list[Key]] = field(default_factory=dict)
    params: dict[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.train, self.val, self.test = (
            sorted(map(_key, part)) for part in (self.train, self.val, self.test)
        )
        self.groups = {name: sorted(map(_key, keys)) for name, keys in self.groups.items()}
        seen: dict[Key, str] = {}
        for part in ("train", "val", "test"):
            for key in getattr(self, part):
                if key[0] == CONTROL:
                    raise SplitError(f"control condition {key} cannot be assigned to {part}")
                if key in seen:
                    raise SplitError(f"condition {key} is in both {seen[key]} and {part}")
                seen[key] = part
        stray = {k for keys in self.groups.values() for k in keys} - set(self.test)
        if stray:
            raise SplitError(f"test groups name conditions not in test: {sorted(stray)[:5]}")

    def cell_masks(self, adata: ad.AnnData) -> dict[str, np.ndarray]:
        """Boolean cell masks ``train``, ``val``, ``test`` and ``control`` for ``adata``.

        Raises :class:`SplitError` if a perturbed cell's condition is in no part (the split was made
        for other data) or a test condition has no cells.
        """
        keys = pd.Series(_cell_keys(adata.obs))
        control = (adata.obs["perturbation"].astype(str) == CONTROL).to_numpy()
        masks = {part: keys.isin(set(getattr(self, part))).to_numpy() for part in ("train", "val", "test")}
        masks["control"] = control
        unassigned = ~(masks["train"] | masks["val"] | masks["test"] | control)
        if unassigned.any():
            missing = sorted(set(keys[unassigned]))[:5]
            raise SplitError(
                f"{int(unassigned.sum())} perturbed cells have conditions outside this split (e.g. "
                f"{missing}); the split is for other data - rebuild it with `biojepa split` for this file"
            )
        absent = sorted(set(self.test) - set(keys[masks["test"]]))
        if absent:
            raise SplitError(f"test condition(s) {absent[:5]} have no cells in this data; rebuild the split")
        return masks

    def save(self, path: str | Path) -> Path:
        """Write the split as JSON (atomically)."""
        doc = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "seed": self.seed,
            "params": self.params,
            "train": self.train,
            "val": self.val,
            "test": self.test,
            "groups": self.groups,
        }
        return write_json(doc, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Split:
        """Read a split written by :meth:`save`."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
            return cls(
                kind=doc["kind"],
                seed=int(doc["seed"]),
                train=doc["train"],
                val=doc["val"],
                test=doc["test"],
                groups=doc.get("groups", {}),
                params=doc.get("params", {}),
            )
        except FileNotFoundError:
            raise SplitError(f"split file {path} does not exist; create it with `biojepa split`") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SplitError(
                f"{path} is not a valid split file ({exc!r}); recreate it with `biojepa split`"
            ) from exc


def make_split(
    adata: ad.AnnData,
    kind: str,
    seed: int,
    *,
    test_fraction: float = 0.25,
    val_fraction: float = 0.1,
    holdout_context: str | None = None,
) -> Split:
    """Build a split of ``kind`` (one of :data:`KINDS`) over the conditions present in ``adata``.

    ``holdout_context`` picks the test context of an ``unseen_context`` split (default: drawn with
    the seed).
    """
    if kind not in KINDS:
        raise SplitError(f"unknown split kind {kind!r}; choose one of {KINDS}")
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1:
        raise SplitError(
            f"need 0 < test_fraction < 1 and 0 <= val_fraction < 1; got {test_fraction}, {val_fraction}"
        )
    obs = adata.obs
    for column in ("perturbation", "context", "perturbation_type"):
        if column not in obs.columns:
            raise SplitError(f"obs lacks {column!r}; splits need canonical data (run `biojepa data prepare`)")
    perturbed = obs[obs["perturbation"].astype(str) != CONTROL]
    conditions = sorted(set(_cell_keys(perturbed)))
    if not conditions:
        raise SplitError("no perturbed cells: nothing to split")
    rng = np.random.default_rng(seed)
    params: dict[str, float | str] = {"test_fraction": test_fraction, "val_fraction": val_fraction}
    if kind == "unseen_perturbation":
        parts = _by_label(conditions, {p for p, _ in conditions}, rng, test_fraction, val_fraction)
        parts |= _target_groups(parts)
    elif kind == "unseen_compound":
        compounds = set(
            perturbed.loc[perturbed["perturbation_type"].astype(str) == "compound", "perturbation"]
        )
        if len(compounds) < 2:
            raise SplitError(f"unseen_compound needs at least 2 compounds; found {len(compounds)}")
        parts = _by_label(conditions, set(map(str, compounds)), rng, test_fraction, val_fraction)
    elif kind == "doubles":
        parts = _doubles(conditions, rng, test_fraction, val_fraction)
    else:
        parts, params["holdout_context"] = _unseen_context(conditions, rng, val_fraction, holdout_context)
    groups = {name: keys for name, keys in parts.items() if name not in ("train", "val", "test")}
    if not parts["train"]:
        raise SplitError(f"{kind} split with seed {seed} left no training conditions; lower test_fraction")
    return Split(kind, int(seed), parts["train"], parts["val"], parts["test"], groups, params)


def _cell_keys(obs: pd.DataFrame) -> list[Key]:
    """The ``(perturbation, context)`` key of every cell."""
    return list(zip(obs["perturbation"].astype(str), obs["context"].astype(str), strict=True))


def _key(item) -> Key:
    perturbation, context = item
    return str(perturbation), str(context)


def _draw(items: set, rng: np.random.Generator, fraction: float, *, at_least_one: bool) -> set:
    """A seeded random ``fraction`` of ``items`` (rounded; at least one when asked and possible)."""
    ordered = sorted(items)
    n = round(fraction * len(ordered))
    if at_least_one and fraction > 0 and len(ordered) > 1:
        n = max(n, 1)
    return {ordered[i] for i in rng.permutation(len(ordered))[:n]}


def _by_label(
    conditions: list[Key],
    labels: set[str],
    rng: np.random.Generator,
    test_fraction: float,
    val_fraction: float,
) -> dict[str, list[Key]]:
    """Hold out whole labels (in every context); ``labels`` are the ones eligible for test/val."""
    if len(labels) < 2:
        raise SplitError(f"need at least 2 perturbations to hold some out; found {len(labels)}")
    test_labels = _draw(labels, rng, test_fraction, at_least_one=True)
    val_labels = _draw(labels - test_labels, rng, val_fraction, at_least_one=False)
    return _assign(
        conditions, lambda p, _: "test" if p in test_labels else "val" if p in val_labels else "train"
    )


def _target_groups(parts: dict[str, list[Key]]) -> dict[str, list[Key]]:
    """Test conditions grouped by their number of targets (``single`` / ``combination``) and by how many of
    them a training or validation condition perturbs (alone or in a combination); no groups when no
    condition is a combination (every test condition is then a single with a novel target)."""
    fitted = parts["train"] + parts["val"]
    if all(len(split_perturbation(p)) == 1 for p, _ in fitted + parts["test"]):
        return {}
    known = {g for p, _ in fitted for g in split_perturbation(p)}
    groups: dict[str, list[Key]] = {}
    for perturbation, context in parts["test"]:
        targets = split_perturbation(perturbation)
        groups.setdefault("single" if len(targets) == 1 else "combination", []).append(
            (perturbation, context)
        )
        n_known = sum(g in known for g in targets)
        name = (
            "novel_targets"
            if n_known == 0
            else "known_targets"
            if n_known == len(targets)
            else "partly_known_targets"
        )
        groups.setdefault(name, []).append((perturbation, context))
    return groups


def _doubles(
    conditions: list[Key], rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> dict[str, list[Key]]:
    singles = {p for p, _ in conditions if len(split_perturbation(p)) == 1}
    doubles = {p for p, _ in conditions if len(split_perturbation(p)) == 2}
    if not doubles or len(singles) < 2:
        raise SplitError(
            f"a doubles split needs single and double perturbations; found {len(singles)} singles and "
            f"{len(doubles)} doubles"
        )
    test_singles = _draw(singles, rng, test_fraction, at_least_one=True)
    val_singles = _draw(singles - test_singles, rng, val_fraction, at_least_one=False)
    seen_genes = {g for s in singles - test_singles - val_singles for g in split_perturbation(s)}
    seen = {d: sum(g in seen_genes for g in split_perturbation(d)) for d in doubles}
    seen_2 = {d for d, k in seen.items() if k == 2}
    test_seen_2 = _draw(seen_2, rng, test_fraction, at_least_one=True)
    val_doubles = _draw(seen_2 - test_seen_2, rng, val_fraction, at_least_one=False)

    def part(label: str, _: str) -> str:
        if label in singles:
            return "test" if label in test_singles else "val" if label in val_singles else "train"
        if label not in doubles:
            raise SplitError(f"doubles split cannot place {label!r} (more than two targets)")
        if seen[label] < 2:
            return f"seen_{seen[label]}"
        return "seen_2" if label in test_seen_2 else "val" if label in val_doubles else "train"

    parts = _assign(conditions, part)
    groups = {name: parts.pop(name, []) for name in ("seen_0", "seen_1", "seen_2")}
    parts["single"] = parts["test"]
    parts["test"] = parts["test"] + [k for keys in groups.values() for k in keys]
    return {**parts, **groups}


def _unseen_context(
    conditions: list[Key], rng: np.random.Generator, val_fraction: float, holdout: str | None
) -> tuple[dict[str, list[Key]], str]:
    contexts = sorted({c for _, c in conditions})
    if len(contexts) < 2:
        raise SplitError(f"unseen_context needs at least 2 contexts with perturbed cells; found {contexts}")
    if holdout is None:
        holdout = contexts[int(rng.integers(len(contexts)))]
    elif holdout not in contexts:
        raise SplitError(f"holdout context {holdout!r} not among the contexts {contexts}")
    val = _draw({k for k in conditions if k[1] != holdout}, rng, val_fraction, at_least_one=False)
    parts = _assign(conditions, lambda p, c: "test" if c == holdout else "val" if (p, c) in val else "train")
    return parts, holdout


def _assign(conditions: list[Key], part_of) -> dict[str, list[Key]]:
    parts: dict[str, list[Key]] = {"train": [], "val": [], "test": []}
    for perturbation, context in conditions:
        parts.setdefault(part_of(perturbation, context), []).append((perturbation, context))
    return parts
