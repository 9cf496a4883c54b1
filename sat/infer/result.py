"""What :meth:`Segmenter.segment` returns: structures on the input grid, refusals, the volume."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sat.io.volume import Volume


@dataclass
class Structure:
    """One answered prompt: a mask in the input's geometry and its statistics.

    Attributes:
        prompt: the user's text. concept: the resolved concept id. name: its canonical name.
        used_concepts: trained concept ids whose union is the mask (several for a grouping prompt).
        mask: (X, Y, Z) bool on the input grid. prob: (X, Y, Z) float16 probabilities or None.
        laterality: the concept's side. stats: see :func:`sat.infer.stats.structure_statistics`.
    """

    prompt: str
    concept: str
    name: str
    used_concepts: list[str]
    mask: np.ndarray  # (X, Y, Z) bool, input grid
    prob: np.ndarray | None  # (X, Y, Z) float16 or None
    laterality: str
    stats: dict = field(default_factory=dict)

    @property
    def flags(self) -> list[dict]:
        """Failed plausibility checks (``{"check", "message"}``; see :mod:`sat.infer.plausibility`)."""
        return list((self.stats.get("plausibility") or {}).get("flags") or [])


@dataclass
class SegmentationResult:
    """Masks for answered prompts, refused prompts with suggestions, and the input volume.

    Attributes:
        volume: the input image (shape and affine of every mask).
        modality: the modality the image was normalised as.
        structures: one :class:`Structure` per answered prompt, in prompt order.
        refused: ``{"prompt", "reason", "suggestions"}`` per refused prompt; never a mask.
    """

    volume: Volume
    modality: str
    structures: list[Structure]
    refused: list[dict]

    @property
    def flagged(self) -> list[Structure]:
        """Structures that failed a plausibility check."""
        return [s for s in self.structures if s.flags]

    def save(self, outdir, formats: tuple[str, ...] = ("nifti",), probabilities: bool = False,
             preview: bool = True, statistics: bool = True) -> dict:
        """Write the result to ``outdir``; see :func:`sat.io.result_writer.save_result`."""
        from sat.io.result_writer import save_result

        return save_result(self, outdir, formats=formats, probabilities=probabilities,
                           preview=preview, statistics=statistics)

    def volume_table(self) -> list[dict]:
        """One row per structure: prompt, concept, volume (ml), voxels, mean confidence."""
        return [{"prompt": s.prompt, "concept": s.concept, "name": s.name,
                 "volume_ml": round(float(s.stats.get("volume_ml") or 0.0), 2),
                 "voxels": int(s.stats.get("voxel_count") or 0),
                 "confidence": s.stats.get("mean_confidence"),
                 "used": ",".join(s.used_concepts),
                 "flags": ",".join(f["check"] for f in s.flags)} for s in self.structures]
