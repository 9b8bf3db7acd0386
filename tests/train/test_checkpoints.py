import json

import pytest
import torch

from biojepa.errors import CheckpointError
from biojepa.train.checkpoints import (
    load_checkpoint,
    optimizer_from_tensors,
    optimizer_to_tensors,
    save_checkpoint,
)


def test_round_trip(tmp_path):
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.long)}
    save_checkpoint(tmp_path, "ck", tensors, {"note": "x"})
    loaded, meta = load_checkpoint(tmp_path, "ck")
    assert meta["note"] == "x"
    assert torch.equal(loaded["a"], tensors["a"]) and torch.equal(loaded["b"], tensors["b"])
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "ck.safetensors").write_bytes((d / "ck.safetensors").read_bytes()[:40]), "truncated"),
        (lambda d: (d / "ck.json").write_text('{"sha256": '), "not valid JSON"),
        (lambda d: (d / "ck.json").write_text(json.dumps({"x": 1})), "checksum"),
        (lambda d: (d / "ck.safetensors").unlink(), "missing"),
    ],
)
def test_damaged_checkpoints_raise(tmp_path, damage, message):
    save_checkpoint(tmp_path, "ck", {"a": torch.ones(100)}, {})
    damage(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path, "ck")


def test_flipped_byte_is_detected(tmp_path):
    save_checkpoint(tmp_path, "ck", {"a": torch.ones(100)}, {})
    raw = bytearray((tmp_path / "ck.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / "ck.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(tmp_path, "ck")


def test_optimizer_state_round_trip():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = optimizer_to_tensors(opt, "opt")
    fresh = torch.optim.AdamW(model.parameters(), lr=0.5)
    optimizer_from_tensors(fresh, tensors, json.loads(json.dumps(meta)), "opt")
    assert fresh.param_groups[0]["lr"] == 0.1 and fresh.param_groups[0]["betas"] == (0.8, 0.9)
    for key, value in opt.state_dict()["state"][0].items():
        assert torch.equal(fresh.state_dict()["state"][0][key], value)
