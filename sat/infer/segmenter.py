"""The Python inference API: ``Segmenter.from_checkpoint(path).segment(image, prompts)``.

The image is preprocessed and its backbone features cached once (the SAM ``set_image`` pattern):
further prompts on the same image cost only the text-conditioned head. Predictions return to the
input's exact grid one prompt at a time (:mod:`sat.infer.restore`), so memory stays bounded.
"""
from __future__ import annotations

import logging
import threading
import weakref

import numpy as np
import torch

from sat.errors import InputError
from sat.infer.answering import PromptPlan, contradicting_sides, plan_prompt
from sat.infer.hounsfield import tissue_classes
from sat.infer.midline import Midline
from sat.infer.plausibility import body_mask, check_mask, domain_note, read_concept_stats
from sat.infer.postprocess import (advised_fractions, advised_midline, check_fraction, check_threshold, fraction_of,
                                   keep_components)
from sat.infer.restore import restore_prompts
from sat.infer.result import SegmentationResult, Structure
from sat.infer.threads import cpu_threads, resolve_threads
from sat.io.volume import Volume, load_volume
from sat.knowledge.modality import canonical_modality
from sat.knowledge.tree import KnowledgeTree, load_tree
from sat.knowledge.vocabulary import overlay
from sat.model.checkpoint_meta import CheckpointMeta
from sat.model.sliding_window import FeatureCache, decode_tta, encode_image, flip_lr
from sat.volume.preprocess import preprocess_case

__all__ = ["Segmenter", "SegmentationResult", "Structure", "infer_modality", "normalize_modality"]
log = logging.getLogger(__name__)


def infer_modality(volume: Volume) -> str:
    """Guess CT vs MR from intensities (CT has air near -1000 HU)."""
    sample = volume.array.ravel()[::97]
    return "CT" if float(np.percentile(sample, 1)) < -500 else "MR"


# ``"mri"`` -> ``"MR"``, ``"PT"`` -> ``"PET"``; ``None`` for names that are no modality
normalize_modality = canonical_modality


def checkpoint_tree(meta: CheckpointMeta, tree: KnowledgeTree | None = None) -> KnowledgeTree:
    """The tree a checkpoint's prompts resolve with: ``tree`` (default: the current one) under the
    checkpoint's vocabulary snapshot (:func:`sat.knowledge.vocabulary.overlay`).

    A tree changed since training is a warning: the trained concepts keep the names, synonyms,
    sides and mirrors they were trained with; a term only the new tree knows still resolves (and
    is refused when it names a concept the model never learned). A checkpoint written before
    snapshots resolves with the current tree, and the warning says so.
    """
    tree = tree if tree is not None else load_tree()
    if tree.hash == meta.tree_hash:
        return tree
    if meta.vocabulary is None:
        log.warning("knowledge tree changed since this checkpoint was trained (%s -> %s) and the checkpoint "
                    "carries no vocabulary snapshot (format 1): prompts resolve with the current tree",
                    meta.tree_hash, tree.hash)
        return tree
    log.warning("knowledge tree changed since this checkpoint was trained (%s -> %s): its %d trained "
                "concepts answer with the vocabulary they were trained with", meta.tree_hash, tree.hash,
                len(meta.trained_concepts))
    return overlay(tree, meta.vocabulary)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; bad or unavailable devices raise InputError."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {device!r}; expected auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


class Segmenter:
    """Text-prompted segmentation of a whole volume in its original geometry.

    Args:
        net: a :class:`UniversalSegmenter`. meta: checkpoint metadata. device: torch device.
        patch_size: sliding-window size (default: the training patch from the checkpoint).
        overlap: window overlap fraction in [0, 1); ``None``: what the checkpoint recommends
            (``meta.extra["inference"]["overlap"]``, chosen by ``sat benchmark real``), else 0.25.
        tta: average with a left-right mirrored pass (lateral queries swapped); ``None``: what the
            checkpoint recommends (``meta.extra["inference"]["tta"]``, else off). Only a model
            trained with left-right flips (``meta.extra["lr_flip_prob"] > 0``) gets the mirrored
            pass, any other runs the plain pass with one warning (mirrored anatomy it never saw made
            its masks worse, not better).
        largest_component: keep only the largest connected component of a structure: ``None``
            for the concepts the checkpoint lists (``meta.extra["inference"]["largest_component"]``,
            chosen on validation patients; those of ``["major_components"]`` keep every component
            of at least :data:`~sat.infer.postprocess.MAJOR_FRACTION` of the largest), ``True`` for
            every concept, ``False`` for none, a list of concept ids, or a dict concept id ->
            component fraction (see :mod:`sat.infer.postprocess`). Counted on the restored mask
            (the input grid) for a one-concept prompt, on the model grid for a group's members.
        thresholds: concept id -> foreground threshold; ``None``: the checkpoint's
            (``meta.extra["inference"]["thresholds"]``, chosen on validation patients), 0.5 for
            every concept it does not list.
        midline: concept ids whose pieces away from the body's mid-sagittal plane are dropped
            before the component rule (:mod:`sat.infer.midline`); ``None``: the checkpoint's
            (``meta.extra["inference"]["midline_components"]``, chosen on validation patients),
            ``False``: none.
        resolver: a prompt resolver (default: built from the checkpoint's text encoder on first use).
        threads: CPU threads while segmenting: an int, ``"auto"`` (all cores unless they are busy
            with other work, see :mod:`sat.infer.threads`) or ``None`` (leave torch's setting).
        warm_text: load the resolver's text encoder and term table in a background thread now
            (:meth:`start_text_warmup`), for long-lived sessions (a server, a notebook) whose first
            free-text prompt should not wait for them.
    """

    def __init__(self, net, meta: CheckpointMeta, device: str | torch.device = "cpu", patch_size=None,
                 overlap: float | None = None, *, tta: bool | None = None, resolver=None,
                 threads: int | str | None = "auto", warm_text: bool = False,
                 largest_component: bool | list[str] | dict[str, float] | None = None,
                 thresholds: dict[str, float] | None = None, midline: bool | list[str] | None = None) -> None:
        self.net, self.meta, self.device = net, meta, resolve_device(device)
        self.tree = checkpoint_tree(meta)
        self.spec = meta.preprocess
        self.patch = tuple(patch_size or meta.extra.get("patch_size", (48, 48, 48)))
        advice = meta.extra.get("inference") or {}
        self.overlap = float(advice.get("overlap", 0.25) if overlap is None else overlap)
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap!r}")
        self.tta = bool(advice.get("tta", False)) if tta is None else bool(tta)
        self.components = self._component_rule(largest_component, advice)
        self.midline_concepts = self._midline_rule(midline, advice)
        chosen = (advice.get("thresholds") or {}) if thresholds is None else thresholds
        self.thresholds = {str(c): check_threshold(t, f"threshold of {c}") for c, t in chosen.items()}
        self.threads = resolve_threads(threads) if threads != "auto" else threads  # validates ints
        self.trained = (set(meta.trained_concepts) & set(net.concept_ids)) & set(self.tree.concepts)
        self.flip_trained = float(meta.extra.get("lr_flip_prob") or 0.0) > 0.0
        self.concept_stats = read_concept_stats(meta.extra)
        self._warned: set[str] = set()  # one-time warnings already given (domain, tta)
        self.warn_domain = True  # say once when a phantom-only model is used (False: the caller knows)
        self._resolver = resolver
        self._cache: dict = {}
        self._warmup: threading.Thread | None = None
        if warm_text and resolver is None:
            self.start_text_warmup()

    @property
    def mirrors(self) -> bool:
        """Whether ``segment`` takes the mirrored pass by default: asked to (``tta``) and the model
        was trained with left-right flips. ``refine`` answers text before clicks the same way."""
        return self.tta and self.flip_trained

    @staticmethod
    def _component_rule(choice, advice: dict) -> dict[str, float] | float:
        """Concept id -> component fraction (:func:`~sat.infer.postprocess.major_components`; 1:
        the largest alone), or one fraction for every concept (1 or 0). ``choice``: ``None`` (the
        checkpoint's advice), a bool, a collection of concept ids that keep their largest, or a dict
        concept id -> fraction."""
        if choice is None:
            return advised_fractions(advice)
        if isinstance(choice, dict):
            return {str(c): check_fraction(f, f"component fraction of {c}") for c, f in choice.items()}
        if isinstance(choice, (set, frozenset, list, tuple)):
            return {str(c): 1.0 for c in choice}
        if not isinstance(choice, bool):
            raise ValueError(f"largest_component must be True, False, None, a list of concept ids or a "
                             f"dict of component fractions, not {choice!r}")
        return 1.0 if choice else 0.0

    @staticmethod
    def _midline_rule(choice, advice: dict) -> frozenset[str]:
        """Concept ids that drop the pieces away from the body's midline: ``None`` those the
        checkpoint lists, ``False`` none, or a collection of concept ids."""
        if choice is None:
            return advised_midline(advice)
        if choice is False:
            return frozenset()
        if isinstance(choice, (set, frozenset, list, tuple)):
            return frozenset(str(c) for c in choice)
        raise ValueError(f"midline must be None, False or a list of concept ids, not {choice!r}")

    @staticmethod
    def midline_of(volume: Volume) -> Midline:
        """The body's mid-sagittal plane in the input image (its whole field of view: the model
        grid is cropped to the body, so it cannot tell a body cut by the image's edge)."""
        return Midline.from_image(volume.array, volume.affine)

    @classmethod
    def from_checkpoint(cls, path, device: str = "auto", **kw) -> Segmenter:
        """Load a ``sat`` checkpoint; a missing or corrupt file raises :class:`InputError`."""
        from sat.model.checkpoint import load_checkpoint

        dev = resolve_device(device)
        try:
            net, meta = load_checkpoint(path, dev)
        except InputError:
            raise
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:  # weights do not fit the config
            raise InputError(f"checkpoint {path} does not load ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]})") from None
        return cls(net, meta, dev, **kw)

    def start_text_warmup(self) -> threading.Thread:
        """Build the resolver, its text encoder and its term table in a daemon thread.

        Afterwards a free-text prompt costs only its own encoding; the first use of
        :attr:`resolver` waits for a warm-up still running. A failed warm-up only logs: the
        first free-text prompt then loads what is missing as usual.
        """
        def work() -> None:
            try:
                resolver = self.resolver
                resolver.terms()
                # a free-text prompt runs every stage once: thesaurus, glossary, encoder build and call
                resolver.resolve_many(["structure seen on a scan"])
                resolver.clear_cache()
            except Exception as exc:  # noqa: BLE001 -- the main thread retries on first use
                log.debug("text warm-up failed: %s", exc)

        if self._warmup is None:
            self._warmup = threading.Thread(target=work, name="sat-text-warmup", daemon=True)
            self._warmup.start()
        return self._warmup

    @property
    def resolver(self):
        """The prompt resolver; the text encoder loads only when a prompt is not an exact term."""
        warmup = self._warmup
        if warmup is not None and warmup is not threading.current_thread():
            warmup.join()
        if self._resolver is None:
            from sat.text.encoder import TextEncoderSpec
            from sat.text.resolver_factory import build_resolver

            self._resolver = build_resolver(self.tree, TextEncoderSpec(**self.meta.text))
        return self._resolver

    @resolver.setter
    def resolver(self, value) -> None:
        self._resolver = value

    def plan(self, prompts: list[str]) -> list[PromptPlan]:
        """Resolve prompts and decide which trained concepts answer each.

        A prompt naming both sides of one structure is refused before the resolver sees it.
        """
        from sat.knowledge.resolver import Resolution

        prompts = list(prompts)
        asked = [p for p in prompts if not contradicting_sides(p)]
        answers = iter(self.resolver.resolve_many(asked) if asked else [])
        return [plan_prompt(Resolution(text=p, concept=None, name=None, score=0.0) if contradicting_sides(p)
                            else next(answers), self.tree, self.trained) for p in prompts]

    def clear_cache(self) -> None:
        """Drop the cached features of the last image."""
        self._cache = {}

    def refine(self, result_or_volume, prompt: str | None = None, points=(), box=None, *,
               modality: str | None = None, space: str = "world", probabilities: bool = False,
               local: bool = True, name_boxes: bool = True) -> SegmentationResult:
        """Correct one structure with clicks and a box, reusing the image's cached features.

        Args:
            result_or_volume: a :class:`SegmentationResult` from this Segmenter (its volume, its
                modality and the cached backbone features are reused), a Volume or an image path.
            prompt: the structure's text; ``None``: the clicks and the box alone define it.
            points: every click so far, as ``"x,y,z[,+|-]"`` or ``(x, y, z[, positive])``.
            box: two opposite corners ``((x0, y0, z0), (x1, y1, z1))`` or ``"x0,y0,z0,x1,y1,z1"``; a
                box flat along one axis is a 2D box drawn on that slice.
            space: ``"world"`` (RAS+ mm, the frame of ``Volume.affine``) or ``"voxel"`` (input indices).
            probabilities: keep the float16 probability map.
            local: take the clicks one at a time, each changing the answer before it only in
                regions connected to itself, a positive click only adding foreground and a negative
                one only removing it (:mod:`sat.infer.click_locality`, :mod:`sat.infer.refine`);
                False: the network's whole answer to all the clicks.
            name_boxes: a box without text that fits the answer of a structure this model knows
                names it, and is answered as that structure's name plus the box
                (:mod:`sat.infer.box_naming`; ``stats["box_names"]``). False: the text-less box answer.

        Returns:
            A result with one structure (see :mod:`sat.infer.refine`).

        Raises:
            InputError: a point or box outside the image, a box without extent, nothing to segment.
        """
        from sat.infer.refine import refine

        threads = resolve_threads(self.threads) if self.device.type == "cpu" else None
        with cpu_threads(threads):
            return refine(self, result_or_volume, prompt, points, box, modality=modality, space=space,
                          probabilities=probabilities, local=local, name_boxes=name_boxes)

    def _prepare(self, volume: Volume, modality: str, tta: bool) -> tuple[list[FeatureCache], dict]:
        """Preprocess and encode ``volume`` once (twice with TTA); reuse while it is alive."""
        c = self._cache
        if c.get("ref") is not None and c["ref"]() is volume and c["modality"] == modality \
                and len(c["features"]) >= 1 + tta:
            return c["features"][:1 + tta], c["pre"]
        pre = preprocess_case(volume.array, volume.affine, modality, self.spec, crop=True)
        image = torch.from_numpy(pre["image"])  # (1, x, y, z) on an axis-aligned RAS grid
        views = [image, flip_lr(image)] if tta else [image]
        features = [encode_image(self.net, v, modality, self.patch, overlap=self.overlap, device=self.device)
                    for v in views]
        self._cache = {"ref": weakref.ref(volume), "modality": modality, "features": features, "pre": pre}
        return features, pre

    def _decode(self, features: list[FeatureCache], concepts: list[str]) -> torch.Tensor:
        """(K, x, y, z) float16 probabilities; with TTA averaged with the mirrored pass."""
        mirror_of = {}
        for c in concepts:  # unpaired concepts ask themselves; a lateral one its trained mirror
            m = self.tree.mirror(c)
            mirror_of[c] = c if m is None else (m.id if m.id in self.trained else None)
        return decode_tta(self.net, features, concepts, mirror_of, device=self.device)

    def _modality(self, volume: Volume, given: str | None, plans: list[PromptPlan]) -> str:
        """Argument, else DICOM metadata, else a prompt qualifier, else intensities (with a warning).

        One image has one modality: prompts naming different ones, or a prompt naming another than
        the DICOM metadata (or than Hounsfield intensities, for MR), raise InputError naming both;
        an explicit ``modality`` wins over prompt qualifiers with a warning.
        """
        asked = {}  # modality -> first prompt naming it
        for p in plans:
            m = normalize_modality(p.resolution.modality)
            if m:
                asked.setdefault(m, p.prompt)
        if given is not None:
            modality = normalize_modality(given)
            if modality is None:
                raise InputError(f"unknown modality {given!r}; expected CT, MR, PET or US")
            for m, prompt in asked.items():
                if m != modality:
                    log.warning("--modality %s overrides %s in prompt %r", modality, m, prompt)
            return modality
        if len(asked) > 1:
            (m1, p1), (m2, p2) = list(asked.items())[:2]
            raise InputError(f"prompts name different modalities for one image: {p1!r} ({m1}) and {p2!r} ({m2}); "
                             f"drop the qualifier or pass --modality")
        image = normalize_modality(volume.modality)
        prompt_mod, prompt = next(iter(asked.items()), (None, None))
        if image and prompt_mod and image != prompt_mod:
            raise InputError(f"prompt {prompt!r} names {prompt_mod} but the image's DICOM metadata says {image}; "
                             f"drop the qualifier or pass --modality")
        if image:
            return image
        if prompt_mod:
            if prompt_mod != "CT" and infer_modality(volume) == "CT":
                raise InputError(f"prompt {prompt!r} names {prompt_mod} but the image has CT intensities "
                                 f"(air near -1000 HU); drop the qualifier or pass --modality")
            return prompt_mod
        modality = infer_modality(volume)
        log.warning("modality not given; inferred %s from intensities (set it with --modality, "
                    "or modality= in Python)", modality)
        return modality

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    def segment(self, image, prompts: list[str] | None = None, modality: str | None = None, *,
                affine=None, all_concepts: bool = False, probabilities: bool = False,
                tta: bool | None = None, largest_component: bool | list[str] | dict[str, float] | None = None) -> SegmentationResult:
        """Segment ``prompts`` (free text) in ``image``.

        Args:
            image: a path (NIfTI, NRRD, MetaImage, DICOM folder or zip), a Volume, or an (X, Y, Z)
                array with ``affine``.
            prompts: free-text structure names; grouping prompts ("kidneys") give the union of
                their trained parts.
            modality: CT / MR / PET / US; default: DICOM metadata, a prompt qualifier, intensities.
            all_concepts: also segment every trained concept.
            probabilities: keep float16 probability maps on the input grid (memory: 2 bytes per
                voxel per prompt).
            tta: left-right mirrored test-time augmentation (default: the Segmenter's ``tta``).
            largest_component: ``True`` / ``False`` for every concept in this call, or a list of
                concept ids (default: the Segmenter's setting).

        Returns:
            A :class:`SegmentationResult` whose masks have exactly the input's shape and affine.

        Raises:
            InputError: bad image, no prompts, unknown modality.
        """
        volume = image if isinstance(image, Volume) else load_volume(image, affine)
        threads = resolve_threads(self.threads) if self.device.type == "cpu" else None
        with cpu_threads(threads):
            rule = self.components if largest_component is None else self._component_rule(largest_component, {})
            return self._segment(volume, prompts, modality, all_concepts, probabilities,
                                 self.tta if tta is None else bool(tta), rule)

    def _segment(self, volume: Volume, prompts, modality, all_concepts: bool, probabilities: bool,
                 tta: bool, components: dict[str, float] | float = 0.0) -> SegmentationResult:
        if isinstance(prompts, str):  # one prompt, not its characters
            prompts = [prompts]
        prompts = [str(p) for p in (prompts or [])]
        if all_concepts:
            prompts += [self.tree.get(c).name for c in sorted(self.trained)]
        prompts = list(dict.fromkeys(prompts))
        if not prompts:
            raise InputError("no prompts given (pass at least one prompt, or all_concepts=True)")
        plans = self.plan(prompts)
        modality = self._modality(volume, modality, plans)
        answered = [p for p in plans if p.concepts]
        structures: list[Structure] = []
        note = domain_note(self.meta.extra)
        if note and answered and self.warn_domain:
            self._warn_once("domain", note)
        if tta and not self.flip_trained:
            self._warn_once("tta", "--tta skipped: this model was not trained with left-right flips "
                                   "(lr_flip_prob 0 or not recorded), so a mirrored pass would make masks worse")
            tta = False
        if answered:
            features, pre = self._prepare(volume, modality, tta)
            needed = list(dict.fromkeys(c for p in answered for c in p.concepts))
            probs = self._decode(features, needed)  # (K, x, y, z) float16, model grid
            cut = [self.thresholds.get(c, 0.5) for c in needed]  # (K,) foreground thresholds
            fraction = {c: fraction_of(components, c) for c in needed}
            # a one-concept prompt's component rule runs on the restored mask (the input grid, where
            # the benchmark chose it); a group's members keep theirs here, before the group's max
            single = {p.concepts[0] for p in answered if len(p.concepts) == 1}
            on_plane = {c for c in needed if c in self.midline_concepts}
            plane = self.midline_of(volume) if on_plane else None
            keep_components(probs, {i: fraction[c] for i, c in enumerate(needed) if c not in single}, cut,
                            midline=plane, affine=pre["affine"],
                            midline_rows={i for i, c in enumerate(needed) if c in on_plane})
            row = {c: i for i, c in enumerate(needed)}
            # one channel per prompt: a grouping prompt is the union (max) of its members
            per_prompt = torch.stack([probs[[row[c] for c in p.concepts]].amax(0) for p in answered])
            if tta == self.mirrors and components is self.components:  # as refine would answer it
                from sat.infer.answer_memo import remember_text_answer  # refine's answer before clicks

                for p, answer in zip(answered, per_prompt):
                    if len(p.concepts) == 1:
                        remember_text_answer(self, p.concepts[0], answer.clone())
            concepts = [self.tree.get(p.resolution.concept) for p in answered]
            workers = torch.get_num_threads() if self.device.type == "cpu" else 1
            # a grouping prompt (the max of its members) takes the lowest of its members' thresholds
            prompt_cut = [min(cut[row[c]] for c in p.concepts) for p in answered]
            # prompts with one answer ("parotid gland, left side", "Parotid_L") are restored once
            restored = restore_prompts(per_prompt, pre["affine"], volume, [c.laterality for c in concepts],
                                       keep_probabilities=probabilities, workers=workers, thresholds=prompt_cut,
                                       answers=[tuple(p.concepts) for p in answered],
                                       fractions=[fraction[p.concepts[0]] if len(p.concepts) == 1 else 0.0
                                                  for p in answered],
                                       midline=plane, on_midline=[len(p.concepts) == 1 and p.concepts[0] in on_plane
                                                                  for p in answered])
            image = pre["image"][0]  # (x, y, z) normalised, model grid
            body = body_mask(image)
            for k, (p, c, r) in enumerate(zip(answered, concepts, restored)):
                check = check_mask(c.id, c.laterality, float(r.stats.get("volume_ml") or 0.0),
                                   (per_prompt[k] > prompt_cut[k]).numpy(), image, body, pre["affine"], modality,
                                   self.concept_stats, tissue=tissue_classes(self.tree, p.concepts),
                                   hu=volume.array[r.mask] if modality == "CT" else None)  # original HU
                if check["flags"]:  # one line per structure, every failed check on it
                    log.warning("%r (%s) looks implausible: %s", p.prompt, c.name,
                                "; ".join(f["message"] for f in check["flags"]))
                structures.append(Structure(prompt=p.prompt, concept=c.id, name=c.name, used_concepts=p.concepts,
                                            mask=r.mask, prob=r.prob, laterality=c.laterality,
                                            stats={**r.stats, "plausibility": check}))
        refused = [{"prompt": p.prompt, "reason": p.refused, "suggestions": p.suggestions}
                   for p in plans if not p.concepts]
        return SegmentationResult(volume=volume, modality=modality, structures=structures, refused=refused)
