"""Path checks, limits, per-call folders and timeouts of the agent's safety policy."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from sat.agent.safety import PathRefused, SafetyPolicy, TimedRunner, ToolTimeout
from sat.errors import InputError


@pytest.fixture()
def tree(tmp_path):
    """root/ with a file and a sub-folder; outside/ next to it with a secret."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "img.nii.gz").write_bytes(b"x" * 100)
    (root / "sub" / "b.nii.gz").write_bytes(b"y" * 10)
    (outside / "secret.nii.gz").write_bytes(b"s" * 10)
    return root, outside


def test_inside_paths_resolve_relative_and_absolute(tree):
    root, _ = tree
    pol = SafetyPolicy(allowed_roots=[root])
    assert pol.resolve("img.nii.gz") == (root / "img.nii.gz").resolve()
    assert pol.resolve(str(root / "sub" / "b.nii.gz"), kind="file") == (root / "sub" / "b.nii.gz").resolve()
    assert pol.resolve("sub", kind="dir") == (root / "sub").resolve()


@pytest.mark.parametrize("raw", ["../outside/secret.nii.gz", "sub/../img.nii.gz", "sub/../../outside/secret.nii.gz",
                                 "..\\outside\\secret.nii.gz"])
def test_parent_traversal_is_refused_even_when_it_lands_inside(tree, raw):
    pol = SafetyPolicy(allowed_roots=[tree[0]])
    with pytest.raises(PathRefused, match=r"'\.\.'"):
        pol.resolve(raw)


def test_absolute_path_elsewhere_is_refused(tree):
    root, outside = tree
    pol = SafetyPolicy(allowed_roots=[root])
    for raw in (str(outside / "secret.nii.gz"), "/etc/passwd", str(root.parent)):
        with pytest.raises(PathRefused, match="outside the allowed roots"):
            pol.resolve(raw)


def test_symlink_escape_is_refused_but_inside_links_work(tree):
    root, outside = tree
    (root / "escape.nii.gz").symlink_to(outside / "secret.nii.gz")
    (root / "escape_dir").symlink_to(outside, target_is_directory=True)
    (root / "alias.nii.gz").symlink_to(root / "img.nii.gz")
    pol = SafetyPolicy(allowed_roots=[root])
    with pytest.raises(PathRefused, match="symlink"):
        pol.resolve("escape.nii.gz")
    with pytest.raises(PathRefused, match="outside"):
        pol.resolve("escape_dir/secret.nii.gz")
    assert pol.resolve("alias.nii.gz") == (root / "img.nii.gz").resolve()


def test_root_given_through_a_symlink_is_resolved(tree, tmp_path):
    root, _ = tree
    link = tmp_path / "root_link"
    link.symlink_to(root, target_is_directory=True)
    pol = SafetyPolicy(allowed_roots=[link])
    assert pol.resolve(str(link / "img.nii.gz")) == (root / "img.nii.gz").resolve()


@pytest.mark.parametrize("raw", ["", "   ", "a\x00b", None, 3, "x" * 5000])
def test_malformed_paths_are_refused(tree, raw):
    with pytest.raises(PathRefused):
        SafetyPolicy(allowed_roots=[tree[0]]).resolve(raw)


def test_missing_wrong_kind_and_too_large(tree):
    root, _ = tree
    pol = SafetyPolicy(allowed_roots=[root], max_input_bytes=50)
    with pytest.raises(PathRefused, match="does not exist"):
        pol.resolve("nope.nii.gz")
    with pytest.raises(PathRefused, match="not a file"):
        pol.resolve("sub", kind="file")
    with pytest.raises(PathRefused, match="larger than"):
        pol.resolve("img.nii.gz")  # 100 bytes > 50
    assert pol.resolve("sub/b.nii.gz").name == "b.nii.gz"
    with pytest.raises(InputError, match="limit"):
        pol.check_text("x" * (pol.max_text_chars + 1), "report_text")


def test_policy_construction_is_validated(tree):
    root, outside = tree
    with pytest.raises(InputError, match="allow-root"):
        SafetyPolicy(allowed_roots=[])
    with pytest.raises(InputError, match="not an existing folder"):
        SafetyPolicy(allowed_roots=[root / "missing"])
    with pytest.raises(InputError, match="not inside an allowed root"):
        SafetyPolicy(allowed_roots=[root], output_root=outside)


def test_call_dirs_are_fresh_and_inside_a_root(tree):
    root, _ = tree
    pol = SafetyPolicy(allowed_roots=[root])
    a, b = pol.call_dir("segment"), pol.call_dir("segment")
    assert a != b and a.is_dir() and b.is_dir()
    assert root.resolve() in a.parents and "segment" in a.name
    assert pol.resolve(str(a), kind="dir") == a  # later calls may read what a call wrote


def test_timed_runner_times_out_and_keeps_working():
    from sat.agent.safety import abandoned

    runner = TimedRunner()
    release, seen = threading.Event(), []

    def slow():
        release.wait(5)
        seen.append(abandoned())  # the abandoned call learns it must not write results

    with pytest.raises(ToolTimeout, match="0.2 s"):
        runner.run(slow, 0.2, "slow_tool")
    assert runner.run(lambda: 41 + 1, 5, "fast_tool") == 42
    release.set()
    for _ in range(50):
        if seen:
            break
        threading.Event().wait(0.05)
    assert seen == [True]
    runner.close()


def test_agent_code_never_runs_a_shell():
    """No subprocess, os.system/popen or shell=True anywhere in sat/agent."""
    pkg = Path(__file__).resolve().parents[2] / "sat" / "agent"
    banned = re.compile(r"\bsubprocess\b|os\.system|os\.popen|shell\s*=\s*True|\bpty\b|os\.exec")
    hits = [f"{p.name}: {m.group(0)}" for p in pkg.glob("*.py") for m in banned.finditer(p.read_text())]
    assert not hits, hits
    assert len(list(pkg.glob("*.py"))) >= 8
