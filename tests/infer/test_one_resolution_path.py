"""Issue 19 item 5: one resolution path. ``sat concepts ... --checkpoint`` answers as ``sat segment``
does; refusals quote the user's words; suggestions are only concepts the model can segment;
grouping reports agree (agent ``list_concepts`` vs ``segment``); contradicting sides are refused."""
from __future__ import annotations

import json

from sat.infer.concepts import plan_row
from sat.infer.answering import answerable, answering, contradicting_sides, plan_prompt
from sat.knowledge.resolver import Resolution

PROMPTS = ["kidneys", "urinary system", "left kidney", "right left kidney", "right pulmonary artery", "liver", "lungs"]


def _run(capsys, *args) -> list[dict]:
    from sat.cli import main

    assert main(["concepts", *map(str, args)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_resolve_with_checkpoint_is_segments_plan(tiny_checkpoint, segmenter, capsys):
    rows = _run(capsys, "resolve", "--checkpoint", tiny_checkpoint, "--json", *PROMPTS)
    expected = [plan_row(p) for p in segmenter.plan(PROMPTS)]
    assert rows == json.loads(json.dumps(expected))
    by = {r["text"]: r for r in rows}
    assert by["kidneys"]["used_concepts"] == ["kidneys"]  # trained as a group; never the cyst
    assert sorted(by["urinary system"]["used_concepts"]) == ["kidneys", "urinary_bladder"]
    assert by["left kidney"]["used_concepts"] == ["kidney_left"]
    contradiction = by["right left kidney"]
    assert not contradiction["answerable"] and "'right left kidney' names both the left and the right" in \
        contradiction["reason"]
    untrained = by["right pulmonary artery"]
    assert untrained["reason"].startswith("'right pulmonary artery' means")  # the user's words, quoted
    assert all(answering(segmenter.tree, segmenter.trained, s["concept"]) for s in untrained["suggestions"])


def test_list_and_show_with_checkpoint_agree_with_segment_and_agent(tiny_checkpoint, segmenter, capsys):
    from sat.agent.handlers import _answering

    rows = {r["id"]: r for r in _run(capsys, "list", "--checkpoint", tiny_checkpoint, "--json")}
    assert set(rows) == set(answerable(segmenter.tree, segmenter.trained))
    assert set(segmenter.trained) <= set(rows)
    for cid, row in rows.items():  # every grouping report is the segment plan's union
        assert row["via"] == _answering(segmenter.tree, segmenter.trained, cid)
    group = segmenter.plan(["urinary system"])[0]
    assert not rows["urinary_system"]["trained"] and rows["urinary_system"]["via"] == group.concepts
    shown = _run(capsys, "show", "urinary_system", "--checkpoint", tiny_checkpoint, "--json")[0]
    assert shown["segmentable"] and shown["via"] == group.concepts
    assert not _run(capsys, "show", "brainstem", "--checkpoint", tiny_checkpoint, "--json")[0]["segmentable"]


def test_refusal_suggestions_are_only_segmentable(segmenter):
    tree, trained = segmenter.tree, segmenter.trained
    res = Resolution(text="banana", concept=None, name=None, score=0.45, reason="no concept is close enough",
                     suggestions=[{"concept": "cecum", "name": "caecum"}, {"concept": "liver", "name": "liver"},
                                  {"concept": "kidneys", "name": "kidneys"}])
    plan = plan_prompt(res, tree, trained)
    assert plan.refused.startswith("'banana' was not recognised")
    assert [s["concept"] for s in plan.suggestions] == ["liver", "kidneys"]  # the caecum would be refused


def test_contradicting_sides():
    assert contradicting_sides("right left kidney") and contradicting_sides("Lt Rt lung")
    assert not contradicting_sides("left and right kidney") and not contradicting_sides("left kidney")
    assert not contradicting_sides("right kidney, left kidney")
