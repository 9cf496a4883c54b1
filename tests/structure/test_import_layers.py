"""The import graph of ``sat`` runs one way, lowest layer first.

Every ``import`` and ``from ... import`` in every module is read with :mod:`ast`, including those
inside functions, methods and ``if`` blocks. A module may import its own package, a lower layer and
the shared helpers at the top of ``sat`` (``errors``, ``safe_open``, ``yaml_io``, ``cli_hints``,
``resources``, ``atomic``, ``lightning_args``: they import no layer); never a higher layer and never
a sibling of its own layer (``train`` and ``infer`` are siblings; ``data`` and ``infer`` never
import each other). The harness (``sat.bench``) sits above every core package, and only the ``sat``
package itself (the dispatcher and the lazy ``sat.Segmenter``) sits above the harness.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sat"

# Lowest first; names on one row are siblings and never import each other.
LAYERS: list[tuple[str, ...]] = [
    ("knowledge",),
    ("text",),
    ("vision", "losses", "volume"),
    ("model",),
    ("io",),
    ("data",),
    ("train", "infer"),
    ("eval",),
    ("agent",),
    ("bench",),
]
# Pairs that may not import each other although their layers are ordered.
FORBIDDEN = {("infer", "data"), ("data", "infer")}
SHARED = {"errors", "safe_open", "yaml_io", "cli_hints", "resources", "atomic", "lightning_args"}  # below every layer
TOP = {"", "cli"}  # ``sat/__init__.py`` and the ``sat`` dispatcher: above everything
RANK = {name: i for i, row in enumerate(LAYERS) for name in row}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = PACKAGE) -> list[tuple[str, int]]:
    """Every ``sat`` module that ``path`` imports, anywhere in the file, with its line number."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                targets = [".".join(base + ([node.module] if node.module else []))]
            else:
                targets = [node.module or ""]
            # ``from sat.x import y`` may import the module ``sat.x.y``
            submodules = [f"{targets[0]}.{alias.name}" for alias in node.names
                          if _is_module(root, f"{targets[0]}.{alias.name}")]
            targets = submodules or targets

        else:
            continue
        found += [(t, node.lineno) for t in targets if t.startswith("sat.")]
    return found


def _is_module(root: Path, dotted: str) -> bool:
    path = root.parent / Path(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer_of(module: str) -> str:
    """``sat.infer.cli`` -> ``infer``; ``sat.errors`` -> ``errors``; ``sat`` -> ``''``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def back_edges(package: Path = PACKAGE) -> list[str]:
    """Imports that go up, sideways between siblings, or into a package no layer names."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        a = layer_of(module_name(path, package))
        for target, line in imported_modules(path, package):
            b = layer_of(target)
            if a == b or b in SHARED or a in TOP:
                continue
            where = f"{path.relative_to(package.parent)}:{line} imports {target}"
            if a not in RANK and a not in SHARED:
                bad.append(f"{where} (sat.{a} is in no layer)")
            elif b not in RANK:
                bad.append(f"{where} (sat.{b} is in no layer)")
            elif a in SHARED or RANK[b] >= RANK[a] or (a, b) in FORBIDDEN:
                bad.append(where)
    return bad


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"packages without a layer: {sorted(packages - set(RANK))}"
    assert modules <= SHARED | TOP, f"top-level modules without a place: {sorted(modules - SHARED - TOP)}"


def test_imports_run_one_way():
    bad = back_edges()
    assert not bad, f"{len(bad)} import(s) against the layer order:\n" + "\n".join(bad)


def test_the_walk_sees_imports_inside_functions(tmp_path):
    pkg = tmp_path / "sat"
    (pkg / "knowledge").mkdir(parents=True)
    (pkg / "infer").mkdir()
    for p in (pkg, pkg / "knowledge", pkg / "infer"):
        (p / "__init__.py").write_text("")
    (pkg / "infer" / "engine.py").write_text("X = 1\n")
    (pkg / "knowledge" / "tree.py").write_text(
        "def f():\n    if True:\n        from sat.infer.engine import X\n    return X\n")
    (pkg / "knowledge" / "cli.py").write_text("def g():\n    from ..infer import engine\n")
    assert [e.split(" imports ")[1] for e in back_edges(pkg)] == ["sat.infer.engine", "sat.infer.engine"]


@pytest.mark.parametrize("source, target, allowed", [
    ("infer", "data", False), ("data", "infer", False), ("train", "infer", False),
    ("knowledge", "text", False), ("bench", "infer", True), ("infer", "io", True), ("io", "model", True),
])
def test_layer_rule(tmp_path, source, target, allowed):
    pkg = tmp_path / "sat"
    for p in (pkg, pkg / source, pkg / target):
        p.mkdir(parents=True, exist_ok=True)
        (p / "__init__.py").write_text("")
    (pkg / target / "x.py").write_text("")
    (pkg / source / "y.py").write_text(f"import sat.{target}.x\n")
    assert (back_edges(pkg) == []) == allowed
