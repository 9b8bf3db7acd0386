import json
import os
import stat

import pytest

from biojepa.data.io import atomic_write, write_json


def test_write_json_round_trips_with_normal_permissions(tmp_path):
    path = write_json({"a": 1}, tmp_path / "out.json")
    assert json.loads(path.read_text()) == {"a": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    path = write_json({"v": "old"}, tmp_path / "out.json")

    def broken(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert json.loads(path.read_text()) == {"v": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
