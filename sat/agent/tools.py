"""The agent tools and their dispatcher: one place that validates, guards, runs and reports.

``Dispatcher.call(name, arguments)`` validates the arguments with the tool's pydantic input model,
checks every path against the :class:`~sat.agent.safety.SafetyPolicy`, runs the tool under the
per-call time limit and returns a :class:`ToolReply` whose ``data`` fits the output model. Any
failure becomes :class:`ToolFailure` with a one-line message meant for the model to read; the
MCP server and the chat loop turn it into a tool error and keep serving.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sat.agent import handlers
from sat.agent.models import (CompareInput, CompareOutput, GroundReportInput, GroundReportOutput, ListConceptsInput,
                              ListConceptsOutput, MeasureInput, MeasureOutput, ResolvePromptInput,
                              RefineInput, ResolvePromptOutput, SegmentInput, SegmentOutput)
from sat.agent.safety import SafetyPolicy, TimedRunner, ToolTimeout
from sat.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what the model is told about it, and its input/output models."""

    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    read_only: bool = True  # writes nothing (else: files in a per-call output folder)


TOOLS: dict[str, ToolSpec] = {t.name: t for t in (
    ToolSpec("list_concepts", "List the anatomical structures and lesions the loaded model can segment, "
             "with synonyms. Filter by a substring query and/or body region.", ListConceptsInput, ListConceptsOutput),
    ToolSpec("resolve_prompt", "Map free text to a knowledge-tree concept: the concept, a match score, whether "
             "the model can segment it, and suggestions when it cannot.", ResolvePromptInput, ResolvePromptOutput),
    ToolSpec("segment", "Segment structures named in free text in a 3D image. Returns a mask file and "
             "statistics per structure (volume in ml, centroid and bounding box in RAS mm, mean confidence) and "
             "the prompts that were refused, with suggestions.", SegmentInput, SegmentOutput, read_only=False),
    ToolSpec("refine", "Correct one structure's mask with clicks (points inside or outside it, RAS mm) and/or "
             "a box, optionally with its free-text name (a box alone that fits a structure the model knows is "
             "answered as that structure, named in the reply); reuses the image features of an earlier segment call. "
             "Pass every click so far. Returns the mask file and statistics like segment.",
             RefineInput, SegmentOutput, read_only=False),
    ToolSpec("measure", "Measure a mask file: volume, extent, centroid and bounding box; intensity statistics "
             "when the image it was made on is given.", MeasureInput, MeasureOutput),
    ToolSpec("compare", "Compare two masks of one structure, e.g. baseline and follow-up: volume change, Dice "
             "overlap and centroid shift.", CompareInput, CompareOutput),
    ToolSpec("ground_report", "Find every anatomical mention in a report (with laterality, sizes, lesion words, "
             "negation and character offsets) and ground each in the image: mask, statistics, key slices and "
             "PNG crops.", GroundReportInput, GroundReportOutput, read_only=False),
)}


class ToolFailure(Exception):
    """A tool call that failed cleanly; the message is safe to show to the model."""


@dataclass
class ToolReply:
    """A successful tool result: JSON-ready ``data`` and image files worth showing to a VLM."""

    data: dict[str, Any]
    images: list[Path] = field(default_factory=list)

    def text(self) -> str:
        return json.dumps(self.data, indent=1)


def _validation_message(name: str, exc: ValidationError) -> str:
    errs = exc.errors()
    first = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in errs[:3])
    more = f" (+{len(errs) - 3} more)" if len(errs) > 3 else ""
    return f"invalid arguments for {name}: {first}{more}"


class Dispatcher:
    """Runs the tools against one loaded model under one safety policy.

    Args:
        segmenter: a :class:`~sat.infer.segmenter.Segmenter`, or a zero-argument callable that
            builds one on first use.
        policy: allowed roots and limits.
        threaded: run each call in a thread under the policy's time limit (in-process use); False
            runs calls directly, for a worker process whose supervisor enforces the limit by
            killing it (:class:`sat.agent.worker.IsolatedDispatcher`).
    """

    def __init__(self, segmenter, policy: SafetyPolicy, *, threaded: bool = True) -> None:
        self._segmenter = segmenter
        self.policy = policy
        self.model_lock = threading.Lock()  # the segmenter and its feature cache are not thread-safe
        self._runner = TimedRunner() if threaded else None
        self._volumes: OrderedDict[tuple, Any] = OrderedDict()
        self.call_tag: str | None = None  # names the output folders of the current call

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, policy: SafetyPolicy, device: str = "auto",
                        *, threaded: bool = True) -> Dispatcher:
        from sat.infer.segmenter import Segmenter

        if not Path(checkpoint).is_file():
            raise InputError(f"checkpoint {str(checkpoint)!r} is not a file")
        return cls(Segmenter.from_checkpoint(checkpoint, device=device), policy, threaded=threaded)

    @contextlib.contextmanager
    def model(self) -> Iterator[Any]:
        """Exclusive use of the segmenter; waits at most ~the call limit for a busy model."""
        if not self.model_lock.acquire(timeout=0.9 * self.policy.timeout_s):
            raise ToolTimeout("the model is still busy with an earlier call (perhaps one that timed out); "
                              "try again later")
        try:
            yield self.segmenter
        finally:
            self.model_lock.release()

    @property
    def segmenter(self):
        if callable(self._segmenter) and not hasattr(self._segmenter, "segment"):
            self._segmenter = self._segmenter()
        return self._segmenter

    def volume(self, path: Path):
        """Load an image once per file version and return the same Volume object again, so the
        segmenter reuses its image features (cached while that object is alive) across calls."""
        from sat.io.volume import load_volume

        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._volumes:  # roots, file kinds and sizes checked by the safe-open layer
            self._volumes[key] = load_volume(path, limits=self.policy.limits())
        self._volumes.move_to_end(key)
        while len(self._volumes) > 2:
            self._volumes.popitem(last=False)
        return self._volumes[key]

    def call(self, name: str, arguments: dict | str | None) -> ToolReply:
        """Validate, guard and run one tool call.

        Raises:
            ToolFailure: unknown tool, invalid arguments, refused path, bad input, timeout or crash.
        """
        spec = TOOLS.get(name)
        if spec is None:
            raise ToolFailure(f"unknown tool {name!r}; available: {', '.join(TOOLS)}")
        try:
            if isinstance(arguments, str):
                arguments = json.loads(arguments or "{}")
            args = spec.input_model.model_validate(arguments or {})
        except json.JSONDecodeError as exc:
            raise ToolFailure(f"arguments for {name} are not valid JSON ({exc.msg})") from None
        except ValidationError as exc:
            raise ToolFailure(_validation_message(name, exc)) from None
        fn = getattr(handlers, name)
        try:
            out = self._runner.run(lambda: fn(self, args), self.policy.timeout_s, name) if self._runner \
                else fn(self, args)
            data = spec.output_model.model_validate(out[0] if isinstance(out, tuple) else out)
        except InputError as exc:
            raise ToolFailure(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        except Exception as exc:  # a bug or an unexpected library error: log it, report it briefly
            log.exception("tool %s failed", name)
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            raise ToolFailure(f"{name} failed: {type(exc).__name__}: {first}") from None
        images = out[1] if isinstance(out, tuple) else []
        return ToolReply(data.model_dump(mode="json"), [Path(p) for p in images])

    def call_json(self, name: str, arguments: dict | str | None) -> tuple[bool, str]:
        """``(is_error, text)`` for transports that carry text only (the chat loop)."""
        try:
            return False, self.call(name, arguments).text()
        except ToolFailure as exc:
            return True, json.dumps({"error": str(exc)})

    def close(self) -> None:
        if self._runner:
            self._runner.close()
