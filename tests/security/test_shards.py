"""Hostile shard folders (issue 20 rows 11 and 12): a 20 GiB sparse member, bad manifests, pipe: URLs."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from sat.cli import main as sat_main
from sat.data.shard_verify import verify_shards


def _sparse_tar(path: Path, real_size: int = 20 * 2**30) -> Path:
    """A tar whose one member is a GNU sparse file expanding to ``real_size`` bytes of zeros."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("case0.image.npy")
        info.size = 512
        tf.addfile(info, io.BytesIO(b"\0" * 512))
    raw = bytearray(buf.getvalue())
    header = raw[:512]
    header[156:157] = b"S"  # GNU sparse member
    header[386:410] = b"%011o\0" % 0 + b"%011o\0" % 512  # one data block at offset 0
    header[482:483] = b"\0"  # no extended sparse headers
    header[483:495] = b"%011o\0" % real_size  # the expanded size
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    raw[:512] = header
    path.write_bytes(bytes(raw))
    return path


def _manifest(folder: Path, shards: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps({"shards": shards, "cases": {"case0": {}}}))


def test_row11_sparse_member_is_refused_in_bounded_memory(h, tmp_path):
    tar = _sparse_tar(tmp_path / "shard-000000.tar")
    assert tar.stat().st_size < 20_000
    sha = hashlib.sha256(tar.read_bytes()).hexdigest()
    _manifest(tmp_path, {tar.name: {"sha256": sha, "samples": 1}})
    r = h.run_bounded(f"""
        rep = verify_shards({str(tmp_path)!r})
        print("VERIFY", rep.errors)
        print("INSPECT", sat_main(["shards", "inspect", {str(tmp_path)!r}]))
        """, imports="from sat.data.shard_verify import verify_shards\nfrom sat.cli import main as sat_main\n"
                     "import sat.data.shards_cli, webdataset, sat.knowledge.tree, sat.data.shard_format\n",
        headroom_mb=400, timeout_s=120)
    assert "VERIFY" in r.stdout and "more than the 4294967296 byte limit" in r.stdout, r.stdout + r.stderr[-2000:]
    assert "INSPECT 2" in r.stdout and "byte limit per member" in r.stderr, r.stdout + r.stderr[-2000:]


def test_row12_bad_manifests_are_one_error_line(tmp_path):
    outside = tmp_path / "outside.tar"
    outside.write_bytes(b"\0" * 1024)
    folder = tmp_path / "shards"
    folder.mkdir()
    for manifest, expected in (([1, 2], "must be a JSON object"), ({"shards": []}, "needs a 'shards' object"),
                               ({"shards": {"../outside.tar": {"sha256": "0"}}, "cases": {}}, "plain .tar file"),
                               ({"shards": {"a.tar": {}}, "cases": {}}, "lacks its sha256"),
                               ("{not json", "unreadable")):
        (folder / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
        rep = verify_shards(folder)
        assert not rep.ok and len(rep.errors) == 1 and expected in rep.errors[0], (manifest, rep.errors)


def test_pipe_urls_are_refused_unless_allowed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    assert sat_main(["shards", "inspect", f"pipe:touch {marker}"]) == 2
    assert not marker.exists() and "--allow-pipe" in capsys.readouterr().err
    assert sat_main(["shards", "inspect", "gs://bucket/x-{000..001}.tar"]) == 2


def test_row12_malformed_sample_metadata_is_one_error_line():
    import numpy as np

    from sat.data.label_codes import CodedLabels
    from sat.data.shard_format import ShardCase
    from sat.data.shard_verify import check_sample

    labels = CodedLabels(np.zeros((2, 2, 2), np.uint8), np.ones((1, 1), bool), ["liver"])
    meta = {"case_id": "c", "dataset": "d", "modality": "CT", "spacing": "wide", "shape": 7, "concepts": ["liver"],
            "annotated": ["liver"], "voxels": None, "present": [True], "bbox": [None], "affine": "eye"}
    errors = check_sample(ShardCase("c", np.zeros((1, 2, 2, 2), np.float16), labels, meta), None)
    assert len(errors) == 1 and "malformed sample" in errors[0], errors
