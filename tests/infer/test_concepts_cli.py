"""`sat concepts` CLI: resolve JSON shape, bad inputs, validate / show / list exit codes."""
from __future__ import annotations

import json

import pytest

from sat.cli import main as sat_main

KEYS = {"text", "concept", "name", "score", "modality", "suggestions"}


def _run(capsys, *argv) -> tuple[int, list[str], str]:
    rc = sat_main(["concepts", *argv])
    out = capsys.readouterr()
    return rc, [line for line in out.out.splitlines() if line], out.err


def test_resolve_json_shape_and_bad_inputs(capsys, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(b"postcava\n\xff\xfeliver\xc3\n\n  \r\n" + b"a" * 10_000 + b"\n;;;!!!\n"
                        b"right kidney on T2 MRI\r\n")
    rc, lines, _ = _run(capsys, "resolve", "IVC", "", "liver in abdominal CT", "--file", str(prompts), "--json")
    assert rc == 0
    rows = [json.loads(line) for line in lines]
    assert all(KEYS <= set(r) for r in rows)
    by_text = {r["text"][:30]: r for r in rows}
    assert len(rows) == 9  # 3 arguments + 6 non-empty file lines
    assert by_text["IVC"]["concept"] == by_text["postcava"]["concept"] == "inferior_vena_cava"
    assert (by_text["liver in abdominal CT"]["concept"], by_text["liver in abdominal CT"]["modality"]) == ("liver", "CT")
    rk = by_text["right kidney on T2 MRI"]
    assert (rk["concept"], rk["modality"], rk["laterality"]) == ("kidney_right", "MR", "right")
    refused = [r for r in rows if r["concept"] is None]
    reasons = " | ".join(r["reason"] for r in refused)
    assert len(refused) == 5  # "", bad bytes, whitespace, 10k chars, punctuation
    for needle in ("empty", "not valid UTF-8", "longer than", "no anatomy"):
        assert needle in reasons
    assert all(r["score"] == 0.0 and r["suggestions"] == [] for r in refused)


def test_resolve_plain_text_and_missing_file(capsys, tmp_path):
    rc, lines, _ = _run(capsys, "resolve", "left kidney")
    assert rc == 0 and "kidney_left" in lines[0]
    assert _run(capsys, "resolve", "--file", str(tmp_path / "missing.txt"))[0] == 2
    assert _run(capsys, "resolve")[0] == 2


def test_validate_exit_codes(capsys, tmp_path):
    assert _run(capsys, "validate")[0] == 0
    (tmp_path / "bad.yaml").write_text(
        "concepts:\n"
        "  - {id: a, name: alpha, definition: d, region: abdomen, kind: organ, part_of: [ghost]}\n"
        "  - {id: b_left, name: b, definition: d, region: abdomen, kind: organ, laterality: left}\n")
    rc, lines, err = _run(capsys, "--tree", str(tmp_path), "validate")
    assert rc == 1 and "2 problem" in err
    assert any("ghost" in line for line in lines) and any("mirror" in line for line in lines)


def test_show_and_list(capsys):
    rc, lines, _ = _run(capsys, "show", "kidney_left", "--json")
    info = json.loads(lines[0])
    assert rc == 0 and info["mirror"] == "kidney_right" and "kidneys" in info["ancestors"]
    rc, _, err = _run(capsys, "show", "kidney")
    assert rc == 2 and "did you mean" in err
    rc, lines, _ = _run(capsys, "list", "--region", "spine", "--json")
    rows = [json.loads(line) for line in lines]
    assert rc == 0 and rows and {r["region"] for r in rows} == {"spine"}
    assert _run(capsys, "list", "--region", "nowhere")[0] == 2


@pytest.mark.parametrize("argv", [["bogus"], ["resolve", "--threshold", "abc", "x"]])
def test_usage_errors_exit_2(capsys, argv):
    rc, _, err = _run(capsys, *argv)  # through the dispatcher: one line, no usage block
    assert rc == 2 and err.startswith("sat concepts: error:") and len(err.strip().splitlines()) == 1


def test_resolve_json_shows_the_parse(capsys):
    rc, lines, _ = _run(capsys, "resolve", "segmentation of pancreas in the whole body region on CT", "--json")
    row = json.loads(lines[0])
    assert rc == 0 and row["concept"] == "pancreas" and row["anatomy"] == "pancreas"
    stages = {q["stage"]: q["text"] for q in row["qualifiers"]}
    assert stages["region"] == "in the whole body region" and stages["task"] == "segmentation of"
    assert stages["modality"] == "ct" and row["stage"] == "terms"


def test_consistency_subcommand_on_a_small_file(capsys, tmp_path):
    rows = [{"class": "liver", "text": t} for t in ("liver in abdominal CT", "hepatic structure", "segmentation of the liver")]
    rows += [{"class": "spleen", "text": t} for t in ("spleen", "splenic tissue in the abdomen")]
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rc, lines, _ = _run(capsys, "consistency", "--file", str(f), "--json")
    out = json.loads(lines[0])
    assert rc == 0 and (out["phrasings"], out["classes"]) == (5, 2)
    assert out["consistency"] == out["accuracy"] == 1.0
    assert _run(capsys, "consistency", "--file", str(tmp_path / "missing.jsonl"))[0] == 2
