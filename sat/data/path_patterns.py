"""Path patterns of the generic layout: ``"img/img{case:\\d+}.nii.gz"``.

``{name}`` captures one path part (lazily, ``[^/]+?``), ``{name:regex}`` constrains it (the regex
may hold braces), a repeated ``{name}`` must match the same text again, and ``*`` / ``?`` are
globs within one path part. The first image pattern of a recipe finds the cases; the others and
the label pattern are filled in from its captures.
"""
from __future__ import annotations

import re
from pathlib import Path


def _tokens(pattern: str) -> list[tuple[str, str | None, str | None]]:
    """Split a pattern into (literal, placeholder name, regex) triples; regexes may hold braces."""
    out, i, literal = [], 0, ""
    while i < len(pattern):
        if pattern[i] != "{":
            literal, i = literal + pattern[i], i + 1
            continue
        depth, j = 0, i
        while j < len(pattern):
            depth += {"{": 1, "}": -1}.get(pattern[j], 0)
            if depth == 0:
                break
            j += 1
        if depth:
            raise ValueError(f"unbalanced braces in path pattern {pattern!r}")
        name, _, spec = pattern[i + 1:j].partition(":")
        if not re.fullmatch(r"\w+", name):
            raise ValueError(f"bad placeholder {{{name}}} in path pattern {pattern!r}")
        out.append((literal, name, spec or None))
        literal, i = "", j + 1
    return out + [(literal, None, None)]


def compile_pattern(pattern: str) -> tuple[str, re.Pattern, str]:
    """``"a/{case:\\d+}_x.nii"`` -> (glob, regex with named groups, plain format string)."""
    glob, rx, fmt, seen = [], [], [], set()
    for literal, name, spec in _tokens(pattern):
        glob.append(literal)
        rx.append(re.escape(literal).replace(r"\*", "[^/]*").replace(r"\?", "[^/]"))
        fmt.append(literal.replace("{", "{{").replace("}", "}}"))
        if name:
            glob.append("*")
            rx.append(f"(?P={name})" if name in seen else f"(?P<{name}>{spec or '[^/]+?'})")
            fmt.append("{" + name + "}")
            seen.add(name)
    return "".join(glob), re.compile("".join(rx)), "".join(fmt)


def fill_pattern(root: Path, pattern: str, fields: dict) -> Path:
    """The path of ``pattern`` with ``fields`` filled in; a remaining glob must match one file."""
    path = compile_pattern(pattern)[2].format(**fields)
    if any(c in path for c in "*?["):
        hits = sorted(root.glob(path))
        return hits[0] if len(hits) == 1 else root / path  # 0 or >1 matches fail when read
    return root / path
