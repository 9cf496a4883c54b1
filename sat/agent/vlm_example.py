"""The grounding loop with a stub VLM: the model asks for a mask mid-answer and quotes the result.

A real pipeline swaps :class:`StubVLM` for its model's streaming generator and
:meth:`StubVLM.observe` for "append these images and this text to the model's context"::

    from sat.agent.hooks import GroundingHooks
    from sat.agent.vlm_example import StubVLM, run_pipeline
    from sat.io.volume import load_volume
    from sat.infer.segmenter import Segmenter

    seg = Segmenter.from_checkpoint("model.ckpt")
    hooks = GroundingHooks(seg, load_volume("ct.nii.gz"), outdir="grounding_out")
    answer = run_pipeline(StubVLM("left kidney"), hooks, "How large is the left kidney?")

The stub needs no weights: it streams a canned answer with a ``<ground>`` tag in the middle,
then writes the volume it was given and how many images it saw.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sat.agent.hooks import GroundingHooks, GroundingReply


class StubVLM:
    """A stand-in for a vision-language model that requests grounding while generating.

    Args:
        target: the structure the stub "decides" to look at.
    """

    def __init__(self, target: str = "left kidney") -> None:
        self.target = target
        self.images: list[Path] = []  # images put into the context by the pipeline
        self.context: list[str] = []  # text put into the context by the pipeline
        self._reply: GroundingReply | None = None

    def stream(self, question: str) -> Iterator[str]:
        """Yield the answer in chunks; chunks after the tag read what :meth:`observe` received."""
        yield f"Question: {question}\n"
        yield f"To answer I need to see the {self.target}. "
        yield "<gro"  # a tag may arrive split over several chunks
        yield f"und>{self.target}</ground>"
        if self._reply is None or not self._reply.findings:
            yield f"I could not locate the {self.target}."
            return
        f = self._reply.findings[0]
        yield f"I looked at {len(self.images)} key-slice images of the {f.name}. "
        yield f"Its volume is {f.stats.volume_ml:.1f} ml"
        yield "." if not f.empty else " (the mask is empty, so I cannot confirm it)."

    def observe(self, reply: GroundingReply) -> None:
        """Receive a grounding reply: the pipeline shows the images and the summary to the model."""
        self._reply = reply
        self.images += reply.images
        self.context.append(reply.summary())


def run_pipeline(vlm: StubVLM, hooks: GroundingHooks, question: str) -> str:
    """Drive ``vlm`` to the end, answering each grounding request as soon as its tag is complete."""
    answer = []
    for chunk in vlm.stream(question):
        answer.append(chunk)
        for reply in hooks.feed(chunk):
            vlm.observe(reply)
    return "".join(answer)
