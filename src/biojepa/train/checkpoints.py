"""Checkpoints: tensors in safetensors, metadata in JSON, both written atomically and cross-checked.

A checkpoint named ``NAME`` in a directory is ``NAME.safetensors`` plus ``NAME.json``; the JSON is written
last and records the SHA-256 of the tensor file, so a truncated or corrupt pair raises
:class:`~biojepa.errors.CheckpointError` instead of loading wrong weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from biojepa.errors import CheckpointError

FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(directory: str | Path, name: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Save ``tensors`` (safetensors) and ``meta`` (JSON, with the tensor file's checksum)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp)
        digest = _sha256(Path(tmp))
        os.replace(tmp, directory / f"{name}.safetensors")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    record = {**meta, "format_version": FORMAT_VERSION, "sha256": digest}  # never a stale checksum
    atomic_write_bytes(directory / f"{name}.json", json.dumps(record, indent=1).encode())


def load_checkpoint(directory: str | Path, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Load a checkpoint pair; raise :class:`CheckpointError` if missing, truncated or corrupt."""
    directory = Path(directory)
    weights, meta_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    for path in (weights, meta_path):
        if not path.is_file():
            raise CheckpointError(
                f"checkpoint file {path} is missing; point to a directory written by "
                "`biojepa train` or WorldModel.save"
            )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{meta_path} is not valid JSON (truncated or corrupt): {err}") from err
    if not isinstance(meta, dict) or "sha256" not in meta:
        raise CheckpointError(f"{meta_path} lacks the weights checksum; it is not a biojepa checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path} has format version {meta.get('format_version')}, "
            f"this biojepa reads version {FORMAT_VERSION}"
        )
    if _sha256(weights) != meta["sha256"]:
        raise CheckpointError(
            f"{weights} does not match the checksum in {meta_path}: the file is truncated "
            "or corrupt; re-train or restore it from a backup"
        )
    try:
        tensors = load_file(str(weights))
    except Exception as err:  # safetensors raises several error types for bad headers
        raise CheckpointError(f"{weights} cannot be read as safetensors: {err}") from err
    return tensors, meta


def optimizer_to_tensors(
    optimizer: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer state into named tensors plus JSON-able param-group settings."""
    state = optimizer.state_dict()
    tensors = {
        f"{prefix}.{idx}.{key}": torch.as_tensor(value)
        for idx, slots in state["state"].items()
        for key, value in slots.items()
    }
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]
    ]
    return tensors, {"param_groups": groups}


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str
) -> None:
    """Restore what :func:`optimizer_to_tensors` saved into ``optimizer``."""
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, slot = key[len(prefix) + 1 :].split(".", 1)
            slots.setdefault(int(idx), {})[slot] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    try:
        optimizer.load_state_dict({"state": slots, "param_groups": groups})
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"optimizer state in the checkpoint does not fit the model: {err}") from err


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
