"""`sat segment` with real files: bad input -> one line + exit 2, single runs, batch mode.

Most runs call the dispatcher in-process (same code path as the console script, minus interpreter
start-up); a few run as real subprocesses to check exit codes and stderr end to end.
"""
from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from sat.cli import main


def _run(capsys, *args):
    rc = main(["segment", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _nifti(path, data, affine, *, qform=True):
    img = nib.Nifti1Image(np.asarray(data), None)
    img.set_sform(affine, code=1)
    if qform:  # a singular affine has no quaternion form
        img.set_qform(affine, code=1)
    nib.save(img, str(path))
    return path


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    good = np.random.default_rng(0).normal(0, 100, (20, 18, 16)).astype(np.float32)
    aff = np.diag([4.0, 4.0, 4.0, 1.0])
    (tmp / "empty_dir").mkdir()
    (tmp / "text_dir").mkdir()
    (tmp / "text_dir" / "readme.txt").write_text("no images here")
    (tmp / "notes.nii.gz").write_text("not an image")
    (tmp / "notes.txt").write_text("not an image")
    whole = _nifti(tmp / "whole.nii.gz", good, aff).read_bytes()
    (tmp / "truncated.nii.gz").write_bytes(whole[: len(whole) // 2])
    (tmp / "garbage.nii.gz").write_bytes(gzip.compress(np.random.default_rng(1).bytes(5000)))
    _nifti(tmp / "flat.nii.gz", good[:, :, 0], aff)
    _nifti(tmp / "four_d.nii.gz", np.stack([good, good], -1), aff)
    nan, inf = good.copy(), good.copy()
    nan[3, 3, 3], inf[4, 4, 4] = np.nan, np.inf
    _nifti(tmp / "nan.nii.gz", nan, aff)
    _nifti(tmp / "inf.nii.gz", inf, aff)
    _nifti(tmp / "zero_spacing.nii.gz", good, np.diag([4.0, 0.0, 4.0, 1.0]), qform=False)
    neg = nib.Nifti1Image(good, aff)
    neg.header["pixdim"][1:4] = [-4.0, 4.0, 4.0]
    neg.set_sform(None, 0)
    neg.set_qform(None, 0)
    nib.save(neg, str(tmp / "negative_spacing.nii.gz"))
    header = ("NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nspace: left-posterior-superior\n"
              "space directions: (1,0,0) (0,1,0) (0,0,0)\nencoding: raw\nspace origin: (0,0,0)\n\n")
    (tmp / "zero_spacing.nrrd").write_bytes(header.encode() + bytes(64))
    (tmp / "junk.ckpt").write_bytes(np.random.default_rng(2).bytes(2048))
    (tmp / "a_file").write_text("x")
    return tmp


def test_bad_inputs_one_line_exit_2(capsys, bad_inputs, tiny_checkpoint, tmp_path):
    t, ck = bad_inputs, tiny_checkpoint
    out = tmp_path / "out"
    cases = {
        "missing path": (["-i", t / "missing.nii.gz", "-p", "liver"], "not found"),
        "empty folder": (["-i", t / "empty_dir", "-p", "liver"], "no DICOM series or image"),
        "folder without images": (["-i", t / "text_dir", "-p", "liver"], "no DICOM series or image"),
        "non-image .nii.gz": (["-i", t / "notes.nii.gz", "-p", "liver"], "not a readable NIfTI"),
        "unsupported file": (["-i", t / "notes.txt", "-p", "liver"], "unsupported file type"),
        "truncated": (["-i", t / "truncated.nii.gz", "-p", "liver"], "not a readable NIfTI"),
        "corrupt gzip payload": (["-i", t / "garbage.nii.gz", "-p", "liver"], "not a readable NIfTI"),
        "2D": (["-i", t / "flat.nii.gz", "-p", "liver"], "2D image"),
        "4D without channel": (["-i", t / "four_d.nii.gz", "-p", "liver"], "pass a channel"),
        "channel out of range": (["-i", t / "four_d.nii.gz", "-p", "liver", "--channel", "5"], "out of range"),
        "NaN": (["-i", t / "nan.nii.gz", "-p", "liver"], "NaN or Inf"),
        "Inf": (["-i", t / "inf.nii.gz", "-p", "liver"], "NaN or Inf"),
        "zero spacing (sform)": (["-i", t / "zero_spacing.nii.gz", "-p", "liver"], "spacing"),
        "negative spacing (pixdim)": (["-i", t / "negative_spacing.nii.gz", "-p", "liver"], "negative voxel spacing"),
        "zero spacing (nrrd)": (["-i", t / "zero_spacing.nrrd", "-p", "liver"], "spacing"),
        "no prompt": (["-i", t / "whole.nii.gz"], "no prompts"),
        "empty prompt": (["-i", t / "whole.nii.gz", "-p", " "], "no prompts"),
        "unwritable output": (["-i", t / "whole.nii.gz", "-p", "liver", "-o", t / "a_file" / "sub"], "cannot be created"),
        "missing checkpoint": (["-i", t / "whole.nii.gz", "-p", "liver", "--checkpoint", t / "none.ckpt"],
                               "checkpoint not found"),
        "corrupt checkpoint": (["-i", t / "whole.nii.gz", "-p", "liver", "--checkpoint", t / "junk.ckpt"], "corrupt"),
        "bad format": (["-i", t / "whole.nii.gz", "-p", "liver", "--formats", "png"], "--formats"),
        "dicom_seg for NIfTI": (["-i", t / "whole.nii.gz", "-p", "liver", "--formats", "dicom_seg"], "DICOM"),
        "bad modality": (["-i", t / "whole.nii.gz", "-p", "liver", "--modality", "XR"], "modality"),
        "bad device": (["-i", t / "whole.nii.gz", "-p", "liver", "--device", "tpu"], "device"),
        "parts of one image": (["-i", t / "whole.nii.gz", "-p", "liver", "--num-parts", "2"], "batch input"),
        "bad threads": (["-i", t / "whole.nii.gz", "-p", "liver", "--threads", "0"], "--threads"),
        "bad option": (["-i", t / "whole.nii.gz", "--frobnicate"], "unrecognized"),
    }
    for name, (args, pattern) in cases.items():
        if "-o" not in args:
            args = [*args, "-o", out]
        if "--checkpoint" not in args:
            args = [*args, "--checkpoint", ck]
        rc, stdout, stderr = _run(capsys, *args)
        lines = stderr.strip().splitlines()
        assert rc == 2, (name, rc, stderr)
        assert len(lines) == 1 and lines[0].startswith("sat segment: error:"), (name, stderr)
        assert pattern in lines[0], (name, lines[0])


def test_single_runs(capsys, bad_inputs, tiny_checkpoint, tmp_path):
    img = bad_inputs / "whole.nii.gz"
    rc, out, err = _run(capsys, "-i", img, "-o", tmp_path / "a", "-p", "liver", "left kidney", "-p", "spleen",
                        "--checkpoint", tiny_checkpoint, "--modality", "CT", "--formats", "nifti,multilabel",
                        "--probabilities")
    assert rc == 0, err
    names = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"liver.nii.gz", "left_kidney.nii.gz", "spleen.nii.gz", "liver_prob.nii.gz", "multilabel.nii.gz",
            "multilabel.json", "statistics.json", "preview.png", "result.json"} <= names
    assert json.loads(out.strip().splitlines()[-1]) == {"output": str(tmp_path / "a"), "structures": 3, "refused": 0,
                                                         "implausible": 0}
    # a 4D image with a channel choice; a refused prompt gives exit 2 but the answered one is written
    rc, out, err = _run(capsys, "-i", bad_inputs / "four_d.nii.gz", "--channel", "1", "-o", tmp_path / "b",
                        "-p", "lumbar spine", "-p", "liver", "--checkpoint", tiny_checkpoint, "--no-preview")
    assert rc == 2 and "refused 'lumbar spine'" in err and "suggestions:" in err
    assert sorted(p.name for p in (tmp_path / "b").glob("*.nii.gz")) == ["liver.nii.gz"]
    assert nib.load(tmp_path / "b" / "liver.nii.gz").shape == (20, 18, 16)


def _batch_folder(root, n=3):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        _nifti(root / f"case{i}.nii.gz", rng.normal(0, 100, (16, 14, 12)).astype(np.float32), np.diag([5.0, 5, 5, 1]))
    (root / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    return root


def test_batch_isolation_resume_and_parts(capsys, tiny_checkpoint, tmp_path):
    src = _batch_folder(tmp_path / "in")
    common = ["-p", "liver", "--checkpoint", tiny_checkpoint, "--modality", "CT", "--no-preview", "--quiet"]
    rc, out, err = _run(capsys, "-i", src, "-o", tmp_path / "out", *common)
    assert rc == 1  # one case failed, the others completed
    assert "case broken failed" in err and "FAILED broken" in out
    assert "3 segmented, 0 already done, 1 failed" in out
    for i in range(3):
        assert (tmp_path / "out" / f"case{i}" / "liver.nii.gz").exists()
        assert (tmp_path / "out" / f"case{i}" / ".sat_done.json").exists()
    rc, out, _ = _run(capsys, "-i", src, "-o", tmp_path / "out", *common)
    assert rc == 1 and "0 segmented, 3 already done, 1 failed" in out
    rc, out, _ = _run(capsys, "-i", src, "-o", tmp_path / "out", *common, "-p", "spleen")
    assert "3 segmented, 0 already done" in out  # a different request is not 'done'
    seen = []
    for part in (0, 1):
        rc, out, _ = _run(capsys, "-i", src, "-o", tmp_path / f"p{part}", *common, "--num-parts", "2", "--part", part)
        seen.append({p.name for p in (tmp_path / f"p{part}").iterdir() if p.is_dir()})
        assert f"part {part} of 2: 2 of 4 cases" in out
    assert not (seen[0] & seen[1]) and len(seen[0] | seen[1]) == 3  # disjoint; 'broken' failed in one part
    rc, _, err = _run(capsys, "-i", src, "-o", tmp_path / "x", *common, "--num-parts", "2", "--part", "2")
    assert rc == 2 and "--part must be in 0..1" in err


def test_batch_csv(capsys, tiny_checkpoint, tmp_path):
    src = _batch_folder(tmp_path / "in", n=2)
    table = tmp_path / "cases.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "image", "modality"])
        w.writerow(["patient A", "in/case0.nii.gz", "CT"])
        w.writerow(["b", str(src / "case1.nii.gz"), ""])
    rc, out, err = _run(capsys, "-i", table, "-o", tmp_path / "out", "-p", "liver", "--checkpoint", tiny_checkpoint,
                        "--no-preview", "--quiet")
    assert rc == 0, err
    assert (tmp_path / "out" / "patient_a" / "liver.nii.gz").exists() and (tmp_path / "out" / "b" / "result.json").exists()
    (tmp_path / "bad.csv").write_text("file\nx.nii.gz\n")
    rc, _, err = _run(capsys, "-i", tmp_path / "bad.csv", "-o", tmp_path / "o2", "-p", "liver",
                      "--checkpoint", tiny_checkpoint)
    assert rc == 2 and "'image' column" in err


def test_real_processes(tiny_checkpoint, tmp_path, bad_inputs):
    """Exit codes and stderr as a shell sees them: a bad input, and a batch with a progress bar."""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "sat.cli", "segment", *map(str, args)], capture_output=True,
                              text=True, encoding="utf-8", errors="replace", timeout=600)

    r = run("-i", bad_inputs / "truncated.nii.gz", "-o", tmp_path / "o", "-p", "liver", "--checkpoint", tiny_checkpoint)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    src = _batch_folder(tmp_path / "in", n=2)
    r = run("-i", src, "-o", tmp_path / "out", "-p", "liver", "--checkpoint", tiny_checkpoint, "--no-preview")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "case/s" in r.stderr or "it/s" in r.stderr or "case]" in r.stderr  # the tqdm bar went to stderr
    assert "2 segmented, 0 already done, 1 failed" in r.stdout


def test_batch_warnings_wait_for_the_progress_bar(capsys, tiny_checkpoint, tmp_path):
    """Per-case warnings printed mid-bar broke the progress display; they now follow it, once each."""
    src = _batch_folder(tmp_path / "in", n=2)
    rc, out, err = _run(capsys, "-i", src, "-o", tmp_path / "out", "-p", "liver", "--checkpoint", tiny_checkpoint,
                        "--no-preview")
    assert rc == 1 and "2 segmented" in out
    line = "sat segment: warning: modality not given; inferred"
    assert err.count(line) == 1 and "(2 times)" in err.split(line)[1].splitlines()[0]
    assert err.rindex(line) > err.rindex("case")  # after the bar's last update
