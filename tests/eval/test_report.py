"""Markdown / CSV table rendering shared by the evaluation and benchmark reports."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from sat.eval.report import bullet_list, format_value, markdown_table, nested_table, section, write_csv


def test_format_value() -> None:
    assert format_value(0.123456) == "0.123" and format_value(np.float32(2.5), digits=1) == "2.5"
    assert format_value(np.int64(7)) == "7" and format_value(3) == "3" and format_value(True) == "yes"
    assert format_value(float("nan")) == "-" and format_value(None) == "-" and format_value(math.inf) == "inf"
    assert format_value(-math.inf) == "-inf" and format_value("liver") == "liver"


def test_markdown_table_layout_and_alignment() -> None:
    rows = [{"structure": "a|b", "dice": 0.91234, "n": 3}, {"structure": "c", "dice": float("nan"), "n": 4, "x": 1}]
    lines = markdown_table(rows, headers={"dice": "Dice"}, digits={"dice": 2}).splitlines()
    assert lines[0] == "| structure | Dice | n | x |"
    assert lines[1] == "|:---|---:|---:|---:|"  # text left, numbers right
    assert lines[2] == "| a\\|b | 0.91 | 3 |  |"  # pipes escaped; absent key -> empty cell
    assert lines[3] == "| c | - | 4 | 1 |"
    assert markdown_table(rows, ["n", "structure"]).splitlines()[0] == "| n | structure |"
    with pytest.raises(ValueError, match="no columns"):
        markdown_table([])


def test_nested_table_and_sections() -> None:
    table = nested_table({"abdomen": {"dice": 0.8, "n": 2}, "thorax": {"dice": 0.9, "n": 1}}, index="region")
    assert table.splitlines()[0] == "| region | dice | n |" and "| thorax | 0.900 | 1 |" in table
    assert nested_table({"a": {"dice": 1.0, "n": 1}}, index="k", columns=["n"]).splitlines()[0] == "| k | n |"
    text = section("Results", table, "", bullet_list(["one", "two"]), level=3)
    assert text.startswith("### Results\n\n| region |") and text.endswith("- one\n- two\n")
    assert bullet_list([]) == ""


def test_write_csv_keeps_full_precision(tmp_path) -> None:
    rows = [{"a": 1 / 3, "b": float("nan"), "c": np.float64(math.inf), "d": "x"}, {"a": np.float32(0.5), "d": None}]
    path = write_csv(rows, tmp_path / "t.csv")
    got = list(csv.reader(path.open()))
    assert got[0] == ["a", "b", "c", "d"]
    assert float(got[1][0]) == 1 / 3 and got[1][1] == "" and got[1][2] == "inf" and got[2] == ["0.5", "", "", ""]
