"""Render result tables as Markdown and CSV, from lists of row dicts or nested dicts.

Shared by ``sat evaluate`` and the benchmarks, so every results file formats numbers the same
way: floats with a fixed number of decimals, NaN and None as ``-`` (Markdown) or an empty cell
(CSV), infinities as ``inf``. Importing this module is cheap (standard library and numpy).
"""
from __future__ import annotations

import csv
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MISSING = "-"  # Markdown cell for NaN / None


def format_value(value: Any, digits: int = 3, missing: str = MISSING) -> str:
    """One table cell: floats rounded to ``digits`` decimals, NaN/None -> ``missing``, inf -> ``inf``."""
    if value is None:
        return missing
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return missing
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}f}"
    return str(value)


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    out: list[str] = []
    for row in rows:
        out += [k for k in row if k not in out]
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    digits: int | Mapping[str, int] = 3,
) -> str:
    """A GitHub-flavoured Markdown table.

    Args:
        rows: one mapping per row; a key absent from a row renders as an empty cell.
        columns: column keys in order; default = keys in first-seen order over all rows.
        headers: column key -> header text (default: the key itself).
        digits: decimals for floats, one number or per column (default 3).

    Returns:
        The table without a trailing newline; numeric columns are right-aligned.
    """
    cols = _columns(rows, columns)
    if not cols:
        raise ValueError("markdown_table: no columns (empty rows and no columns given)")
    headers = headers or {}

    def digits_of(col: str) -> int:
        return digits.get(col, 3) if isinstance(digits, Mapping) else digits

    body = [[_cell(format_value(row[c], digits_of(c))) if c in row else "" for c in cols] for row in rows]
    numeric = [bool(rows) and all(_is_number(row.get(c)) for row in rows) for c in cols]
    lines = ["| " + " | ".join(_cell(str(headers.get(c, c))) for c in cols) + " |",
             "|" + "|".join("---:" if num else ":---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    """True for numbers and empty cells (None), which keep a numeric column right-aligned."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return value is None or isinstance(value, numbers.Real)


def nested_rows(data: Mapping[str, Mapping[str, Any]], index: str = "name") -> list[dict[str, Any]]:
    """``{row key: {column: value}}`` -> rows with the row key under ``index`` first."""
    return [{index: key, **dict(values)} for key, values in data.items()]


def nested_table(data: Mapping[str, Mapping[str, Any]], index: str = "name", **kwargs: Any) -> str:
    """Markdown table of a nested dict; the outer keys form the first column (see :func:`markdown_table`)."""
    columns = kwargs.pop("columns", None)
    if columns is not None and index not in columns:
        columns = [index, *columns]
    return markdown_table(nested_rows(data, index), columns, **kwargs)


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Write rows to CSV with full float precision; NaN/None become empty cells. Returns the path."""
    path = Path(path)
    cols = _columns(rows, columns)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        for row in rows:
            writer.writerow([_csv_value(row.get(c)) for c in cols])
    return path


def _csv_value(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_, numbers.Integral)):
        x = float(value)
        return "" if math.isnan(x) else repr(x)  # full precision; inf -> "inf"
    return format_value(value, missing="")


def section(title: str, *blocks: str, level: int = 2) -> str:
    """A Markdown section: a heading and the non-empty blocks separated by blank lines."""
    parts = ["#" * level + " " + title, *[b.strip("\n") for b in blocks if b and b.strip()]]
    return "\n\n".join(parts) + "\n"


def bullet_list(items: Iterable[str]) -> str:
    """Markdown bullet list; empty string when there are no items."""
    return "\n".join(f"- {item}" for item in items)
