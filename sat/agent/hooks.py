"""A callback registry that lets a VLM pipeline ask for grounding while it generates.

The pipeline streams the model's text through :meth:`GroundingHooks.feed`. Whenever a complete
``<ground>phrase; phrase</ground>`` tag has arrived, the registered ``ground`` handler runs and its
:class:`GroundingReply` (PNG crops to show the model, measurements to quote) comes back at once,
so the pipeline can put the images and numbers into the model's context before it goes on.
Other request kinds can be registered next to ``ground``; listeners see every request and reply.
See :mod:`sat.agent.vlm_example` for the whole loop with a stub VLM.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sat.agent.models import Finding

GROUND_TAG = re.compile(r"<ground>(.*?)</ground>", re.S | re.I)
MAX_BUFFER_CHARS = 100_000


@dataclass
class GroundingReply:
    """What a ``ground`` request returns to the pipeline."""

    phrases: list[str]
    findings: list[Finding]
    unmatched: list[str] = field(default_factory=list)

    @property
    def images(self) -> list[Path]:
        """PNG crops of every finding, axial plane first."""
        order = {"axial": 0, "coronal": 1, "sagittal": 2}
        return [Path(k.png_path) for f in self.findings
                for k in sorted(f.key_slices, key=lambda k: order[k.plane]) if k.png_path]

    @property
    def measurements(self) -> dict[str, dict[str, Any]]:
        """Concept name -> volume (ml), extent (mm) and centroid (RAS mm)."""
        return {f.name: {"volume_ml": round(f.stats.volume_ml, 1), "extent_mm": f.stats.extent_mm,
                         "centroid_world_mm": f.stats.centroid_world_mm} for f in self.findings}

    def summary(self) -> str:
        """One line per finding, to paste into the model's context."""
        lines = [f"{f.mention.text!r} -> {f.name}: {f.stats.volume_ml:.1f} ml"
                 + (" (empty mask)" if f.empty else "") + (f"; {f.note}" if f.note else "")
                 for f in self.findings]
        lines += [f"{u!r}: not grounded" for u in self.unmatched]
        return "\n".join(lines)


class GroundingHooks:
    """Request kind -> callback, plus listeners, plus a streaming tag scanner.

    Args:
        segmenter: a :class:`~sat.infer.segmenter.Segmenter`; with ``image`` and ``outdir`` it
            registers the built-in ``ground`` handler.
        image: the image being discussed (path or Volume; load it once and pass the Volume so
            repeated requests reuse the image features).
        outdir: where masks and crops are written.
    """

    def __init__(self, segmenter=None, image=None, outdir=None) -> None:
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._listeners: list[Callable[[str, dict, Any], None]] = []
        self._buffer = ""
        self.replies: list[Any] = []
        if segmenter is not None and image is not None and outdir is not None:
            self.register("ground", self._ground_handler(segmenter, image, outdir))

    def register(self, kind: str, fn: Callable[..., Any] | None = None):
        """Register ``fn(**payload)`` for requests of ``kind``; usable as a decorator."""
        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            self._handlers[kind] = f
            return f
        return add(fn) if fn is not None else add

    def subscribe(self, fn: Callable[[str, dict, Any], None]) -> None:
        """Call ``fn(kind, payload, reply)`` after every request."""
        self._listeners.append(fn)

    def request(self, kind: str, **payload: Any) -> Any:
        """Run the handler registered for ``kind``.

        Raises:
            KeyError: no handler is registered for ``kind``.
        """
        if kind not in self._handlers:
            raise KeyError(f"no grounding handler registered for {kind!r}; known: {sorted(self._handlers)}")
        reply = self._handlers[kind](**payload)
        self.replies.append(reply)
        for fn in self._listeners:
            fn(kind, payload, reply)
        return reply

    def feed(self, chunk: str) -> list[Any]:
        """Add generated text; run a ``ground`` request for each ``<ground>`` tag now complete."""
        self._buffer = (self._buffer + chunk)[-MAX_BUFFER_CHARS:]
        replies, end = [], 0
        for m in GROUND_TAG.finditer(self._buffer):
            phrases = [p.strip() for p in re.split(r"[;\n]", m.group(1)) if p.strip()]
            if phrases:
                replies.append(self.request("ground", phrases=phrases))
            end = m.end()
        self._buffer = self._buffer[end:]
        return replies

    @staticmethod
    def _ground_handler(segmenter, image, outdir) -> Callable[..., GroundingReply]:
        from sat.agent.grounding import ground

        def handler(phrases: list[str]) -> GroundingReply:
            result = ground(list(phrases), image, segmenter=segmenter, outdir=outdir)
            return GroundingReply(phrases=list(phrases), findings=result.findings,
                                  unmatched=[u.mention.text for u in result.unmatched])
        return handler
