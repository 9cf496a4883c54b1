"""The Python inference API: ``Segmenter.from_checkpoint(path).segment(image, prompts)``."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from sat.data.geometry import resample
from sat.data.preprocess import PreprocessSpec, preprocess_case
from sat.errors import InputError
from sat.infer.engine import FeatureCache, decode_prompts, encode_image
from sat.infer.io import Volume, load_volume
from sat.infer.prompts import PromptPlan, plan_prompt

log = logging.getLogger(__name__)


@dataclass
class Structure:
    """One answered prompt: a mask in the input's geometry and its statistics."""

    prompt: str
    concept: str
    name: str
    used_concepts: list[str]
    mask: np.ndarray  # (X, Y, Z) bool, input grid
    prob: np.ndarray | None  # (X, Y, Z) float16 or None
    laterality: str
    stats: dict = field(default_factory=dict)


@dataclass
class SegmentationResult:
    """Masks for answered prompts, refused prompts with suggestions, and the input volume."""

    volume: Volume
    modality: str
    structures: list[Structure]
    refused: list[dict]

    def save(self, outdir, formats: tuple[str, ...] = ("nifti",), probabilities: bool = False,
             preview: bool = True, statistics: bool = True):
        from sat.infer.writer import save_result

        return save_result(self, outdir, formats=formats, probabilities=probabilities,
                           preview=preview, statistics=statistics)


def infer_modality(volume: Volume) -> str:
    """Guess CT vs MR from intensities (CT has air near -1000 HU)."""
    sample = volume.array.ravel()[::97]
    return "CT" if float(np.percentile(sample, 1)) < -500 else "MR"


class Segmenter:
    """Text-prompted segmentation of a whole volume in its original geometry.

    Args:
        net: a :class:`UniversalSegmenter`. meta: checkpoint metadata. device: torch device.
        patch_size: sliding-window size (default: the training patch from the checkpoint).
        overlap: window overlap fraction.
    """

    def __init__(self, net, meta: dict, device: str = "cpu", patch_size=None, overlap: float = 0.25) -> None:
        from sat.knowledge.tree import load_tree

        self.net, self.meta, self.device = net, meta, torch.device(device)
        self.tree = load_tree()
        if self.tree.hash != meta.get("tree_hash"):
            log.info("knowledge tree changed since training (%s -> %s)", meta.get("tree_hash"), self.tree.hash)
        self.spec = PreprocessSpec.from_dict(meta["preprocess"])
        self.patch = tuple(patch_size or meta["extra"].get("patch_size", (48, 48, 48)))
        self.overlap = overlap
        self.trained = set(meta["trained_concepts"]) & set(net.concept_ids)
        self._resolver = None
        self._cache: tuple[int, FeatureCache, dict] | None = None

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", **kw) -> Segmenter:
        from sat.model.checkpoint import load_checkpoint

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        net, meta = load_checkpoint(path, device)
        return cls(net, meta, device, **kw)

    @property
    def resolver(self):
        if self._resolver is None:
            from sat.knowledge.resolver import Resolver
            from sat.text.encoder import TextEncoderSpec

            self._resolver = Resolver.from_spec(self.tree, TextEncoderSpec(**self.meta["text"]))
        return self._resolver

    def plan(self, prompts: list[str]) -> list[PromptPlan]:
        """Resolve prompts and decide which trained concepts answer each."""
        return [plan_prompt(r, self.tree, self.trained) for r in self.resolver.resolve_many(list(prompts))]

    def _prepare(self, volume: Volume, modality: str) -> tuple[FeatureCache, dict]:
        key = id(volume)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        pre = preprocess_case(volume.array, volume.affine, modality, self.spec, crop=True)
        cache = encode_image(self.net, torch.from_numpy(pre["image"]), modality, self.patch,
                             overlap=self.overlap, device=self.device)
        self._cache = (key, cache, pre)
        return cache, pre

    def segment(self, image, prompts: list[str] | None = None, modality: str | None = None, *,
                affine=None, all_concepts: bool = False, probabilities: bool = False) -> SegmentationResult:
        """Segment ``prompts`` (free text) in ``image`` (path, DICOM folder, Volume, or array + affine).

        Returns:
            A :class:`SegmentationResult` whose masks have exactly the input's shape and affine.
        """
        volume = image if isinstance(image, Volume) else load_volume(image, affine)
        prompts = list(prompts or [])
        if all_concepts:
            prompts += [self.tree.get(c).name for c in sorted(self.trained)]
        if not prompts:
            raise InputError("no prompts given (pass at least one prompt, or all_concepts=True)")
        plans = self.plan(prompts)
        if modality is None:
            modality = volume.modality or next((p.resolution.modality for p in plans if p.resolution.modality), None)
        if modality is None:
            modality = infer_modality(volume)
            log.warning("modality not given; inferred %s from intensities", modality)
        modality = "MR" if modality.upper() in ("MRI", "MR") else modality.upper()
        answered = [p for p in plans if p.concepts]
        structures: list[Structure] = []
        if answered:
            cache, pre = self._prepare(volume, modality)
            needed = list(dict.fromkeys(c for p in answered for c in p.concepts))
            probs = decode_prompts(self.net, cache, needed, device=self.device)  # (K, x, y, z)
            row = {c: i for i, c in enumerate(needed)}
            for p in answered:
                prob = probs[[row[c] for c in p.concepts]].float().amax(0)  # union of the group
                back = resample(prob[None], pre["affine"], volume.affine, volume.shape, mode="bilinear")[0]
                mask = (back > 0.5).numpy()
                c = self.tree.get(p.resolution.concept)
                structures.append(Structure(prompt=p.prompt, concept=c.id, name=c.name,
                                            used_concepts=p.concepts, mask=mask,
                                            prob=back.half().numpy() if probabilities else None,
                                            laterality=c.laterality))
                structures[-1].stats = self._stats(structures[-1], volume, back)
        refused = [{"prompt": p.prompt, "reason": p.refused, "suggestions": p.suggestions}
                   for p in plans if not p.concepts]
        return SegmentationResult(volume=volume, modality=modality, structures=structures, refused=refused)

    @staticmethod
    def _stats(s: Structure, volume: Volume, prob: torch.Tensor) -> dict:
        from sat.infer.stats import structure_statistics

        return structure_statistics(s.mask, volume, prob.numpy(), s.laterality)
