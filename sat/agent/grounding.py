"""Ground report phrases in an image: mention -> concept -> mask, statistics, key slices, PNG crops.

``ground(report_or_phrases, image, segmenter=seg, outdir=...)`` is the Python entry point; the
``ground_report`` tool and :mod:`sat.agent.hooks` (the VLM callback registry) call it.

A mention names a concept the model may not have been trained on ("left kidney cyst"). Grounding
then walks to the nearest answerable concept (its lesion parents, then the anatomy the mention
names) and says so in ``Finding.note``. Negated mentions ("no gallstones") ground the anatomy the
text names, never the absent lesion.
"""
from __future__ import annotations

import os
from pathlib import Path

from sat.agent.crops import key_slice_crops
from sat.agent.measure import to_stats
from sat.agent.mentions import extract_mentions, is_generic_lesion, is_lesion
from sat.agent.models import Finding, GroundReportOutput, Mention, Suggestion, Unmatched
from sat.io.volume import Volume, load_volume
from sat.io.writers import check_writable_dir, save_mask, unique_filenames


def _phrase_mention(phrase: str, index: int) -> Mention:
    """A whole phrase as one mention, for free text the tree terms do not match."""
    return Mention(text=phrase, start=0, end=len(phrase), anatomy=phrase, anatomy_start=0,
                   anatomy_end=len(phrase), sentence=index, laterality=None, lesion=None, sizes_mm=[],
                   modifiers=[], negated=False, concept=None)


def find_mentions(report_or_phrases: str | list[str], tree) -> list[Mention]:
    """Mentions of a report (offsets into it) or of each phrase (offsets into that phrase)."""
    if isinstance(report_or_phrases, str):
        return extract_mentions(report_or_phrases, tree)
    out: list[Mention] = []
    for i, phrase in enumerate(report_or_phrases):
        out += extract_mentions(phrase, tree, sentence_offset=i) or [_phrase_mention(phrase, i)]
    return out


def host_organ(tree, cid: str) -> str | None:
    """``cid`` itself if it is not a lesion, else its nearest non-lesion ancestor (its anatomy)."""
    if not is_lesion(tree, tree.get(cid)):
        return cid
    return next((a for a in tree.ancestors(cid) if not is_lesion(tree, tree.get(a))), None)


def candidates(m: Mention, tree) -> list[str]:
    """Concepts (or free text) to try for one mention, most specific first: the mention's concept,
    its lesion parents that still name an anatomy, then the anatomy itself."""
    first = m.concept or m.text
    if first not in tree:
        return [first]
    organ = host_organ(tree, first)
    if m.negated and organ is not None:
        return [organ]  # the lesion is absent; the organ it was looked for in is still there
    parents = [a for a in tree.ancestors(first)
               if is_lesion(tree, tree.get(a)) and not is_generic_lesion(tree, tree.get(a))]
    return list(dict.fromkeys([first, *parents, *([organ] if organ else [])]))


def ground(report_or_phrases: str | list[str], image, *, segmenter, outdir: str | os.PathLike,
           modality: str | None = None, crops: bool = True) -> GroundReportOutput:
    """Find, segment and measure every anatomical mention.

    Args:
        report_or_phrases: a report (mention offsets index it) or a list of phrases (offsets index
            each phrase; ``Mention.sentence`` is the phrase index).
        image: path, DICOM folder, or a loaded :class:`~sat.io.volume.Volume` (reuse one Volume
            object across calls and the segmenter reuses its image features).
        segmenter: a :class:`~sat.infer.segmenter.Segmenter`.
        outdir: folder for masks (``<concept>.nii.gz``) and crops (``<concept>_<plane>.png``).
        modality: CT/MR/...; ``None`` reads it from the image.
        crops: write key-slice PNG crops.

    Returns:
        Findings (one per mention that could be segmented) and unmatched mentions with reasons.
    """
    volume = image if isinstance(image, Volume) else load_volume(image)
    out = check_writable_dir(outdir)
    tree = segmenter.tree
    mentions = find_mentions(report_or_phrases, tree)
    chosen: list[tuple[Mention, object, str]] = []  # (mention, plan, note)
    unmatched: list[Unmatched] = []
    for m in mentions:
        tried = candidates(m, tree)
        plans = segmenter.plan(tried)
        plan = next((p for p in plans if p.concepts), None)
        if plan is None:
            first = plans[0]
            unmatched.append(Unmatched(mention=m, reason=first.refused, suggestions=[
                Suggestion(concept=s["concept"], name=s["name"], score=s.get("score"))
                for s in first.suggestions]))
            continue
        note = ""
        if plan is not plans[0]:
            note = f"'{tried[0]}' cannot be segmented by this model; grounded to '{plan.prompt}'"
        if m.negated:
            note = (note + "; " if note else "") + "negated in the text: the anatomy is grounded, not the finding"
        chosen.append((m, plan, note))
    prompts = list(dict.fromkeys(p.prompt for _, p, _ in chosen))
    result = segmenter.segment(volume, prompts, modality) if prompts else None
    by_prompt = {s.prompt: s for s in (result.structures if result else [])}
    stems = unique_filenames(prompts)
    files: dict[str, tuple[str, list]] = {}
    for prompt, s in by_prompt.items():
        mask_path = save_mask(s.mask, volume.affine, out / f"{stems[prompt]}.nii.gz")
        slices = key_slice_crops(volume.array, s.mask, volume.affine, out, stems[prompt]) if crops else []
        files[prompt] = (str(mask_path), slices)
    findings = []
    for m, plan, note in chosen:
        s = by_prompt[plan.prompt]
        mask_path, slices = files[plan.prompt]
        findings.append(Finding(mention=m, concept=s.concept, name=s.name, used_concepts=s.used_concepts,
                                mask_path=mask_path, empty=not s.mask.any(), key_slices=slices,
                                stats=to_stats(s.stats), note=note))
    return GroundReportOutput(image_path=str(volume.source), output_dir=str(Path(out)), findings=findings,
                              unmatched=unmatched)
