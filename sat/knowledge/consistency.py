"""Phrasing consistency: do all phrasings of one class resolve to the same concept?

A phrasing set is a JSON-lines file, one ``{"class": ..., "text": ...}`` object per line
(``tests/knowledge/data/phrasings.jsonl`` is the project's own, 1,365 phrasings over 195
classes in the styles of public text-guided segmentation challenges). When ``class`` is a concept
id of the tree it is also the gold answer, and accuracy is reported besides consistency.

``sat concepts consistency [--file F]`` prints the figures; ``sat concepts eval`` adds them to
its report.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from sat.resources import checkout_root

# the committed phrasing set of the checkout (relative to the working directory when installed)
DEFAULT_PHRASINGS = Path(checkout_root() or ".") / "tests" / "knowledge" / "data" / "phrasings.jsonl"


def read_phrasings(path: str | Path) -> list[tuple[str, str]]:
    """``(class, text)`` of every line of a JSON-lines phrasing file.

    Raises:
        ValueError: a line is not a JSON object with string ``class`` and ``text`` (names the line).
    """
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("class"), str) or not isinstance(row.get("text"), str):
            raise ValueError(f"{path}:{n}: expected an object with string 'class' and 'text'")
        out.append((row["class"], row["text"]))
    return out


def consistency(rows: list[tuple[str, str]], answers: list[str | None], known: set[str] | None = None) -> dict:
    """Consistency figures of resolver ``answers`` (concept id or ``None`` for refused) to ``rows``.

    Returns:
        ``{"phrasings", "classes", "consistency", "classes_consistent", "refused", "accuracy",
        "inconsistent"}``: ``consistency`` is the share of phrasings that resolve to their
        class's most frequent concept (a refusal never counts as agreeing);
        ``classes_consistent`` the share of classes whose phrasings all resolve to one concept;
        ``accuracy`` the share resolving to the class itself, over classes that are concept ids
        in ``known`` (``None`` when there are none); ``inconsistent`` up to 20 classes with
        their answers.
    """
    if len(rows) != len(answers):
        raise ValueError(f"{len(rows)} phrasings but {len(answers)} answers")
    by_class: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for (cls, text), ans in zip(rows, answers):
        by_class[cls].append((text, ans))
    agree = whole = 0
    bad = []
    for cls, items in by_class.items():
        counts = Counter(a for _, a in items if a is not None)
        modal, n = counts.most_common(1)[0] if counts else (None, 0)
        agree += n
        if n == len(items):
            whole += 1
        else:
            bad.append({"class": cls, "modal": modal,
                        "others": [{"text": t, "got": a} for t, a in items if a != modal][:5]})
    gold = [(cls, a) for (cls, _), a in zip(rows, answers) if known is not None and cls in known]
    return {"phrasings": len(rows), "classes": len(by_class),
            "consistency": round(agree / len(rows), 4) if rows else float("nan"),
            "classes_consistent": round(whole / len(by_class), 4) if by_class else float("nan"),
            "refused": round(sum(a is None for a in answers) / len(rows), 4) if rows else float("nan"),
            "accuracy": round(sum(c == a for c, a in gold) / len(gold), 4) if gold else None,
            "inconsistent": bad[:20]}


def measure(resolver, path: str | Path = DEFAULT_PHRASINGS) -> dict:
    """Resolve every phrasing of ``path`` with ``resolver`` and return :func:`consistency`."""
    rows = read_phrasings(path)
    answers = [r.concept for r in resolver.resolve_many([t for _, t in rows])]
    return {"file": str(path), **consistency(rows, answers, set(resolver.tree.concepts))}
