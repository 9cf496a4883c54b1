"""The one atomic write: a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import pytest

from sat.atomic import atomic_path, write_text_atomic


def test_the_new_content_replaces_the_old(tmp_path):
    path = tmp_path / "sub" / "f.json"
    write_text_atomic(path, "one", mkdir=True)
    write_text_atomic(path, "two ü")
    assert path.read_text(encoding="utf-8") == "two ü"
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_the_temporary_file_sits_beside_the_target(tmp_path):
    with atomic_path(tmp_path / "x.bin") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x.bin.tmp")
        tmp.write_bytes(b"1")
    assert (tmp_path / "x.bin").read_bytes() == b"1"
