"""Prompt parsing: anatomy separated from modality, contrast, phase, task, report and region
qualifiers, with many phrasings per pattern; words that belong to a name stay anatomy."""
from __future__ import annotations

import pytest

from sat.knowledge.prompt_parse import STAGES, parse_prompt


def _stages(text: str) -> set[str]:
    return {stage for stage, _ in parse_prompt(text).qualifiers}


@pytest.mark.parametrize("text, anatomy, stage", [
    # region context after a preposition of setting
    ("pancreas in the whole body region", "pancreas", "region"),
    ("oesophagus in the abdomen", "oesophagus", "region"),
    ("liver within the abdominal cavity", "liver", "region"),
    ("spleen in the upper abdomen", "spleen", "region"),
    ("heart in the thorax", "heart", "region"),
    ("thyroid gland in head and neck", "thyroid gland", "region"),
    ("femur in the lower limb", "femur", "region"),
    ("kidney across the whole-body region", "kidney", "region"),
    ("prostate in the pelvic region", "prostate", "region"),
    ("left kidney from the abdomen images", "left kidney", "region"),
    ("lienal vein on the abdomen", "lienal vein", "region"),
    ("mask of the ribs (the thorax)", "ribs", "region"),
    ("aorta (in the chest)", "aorta", "region"),
    # modality, with its region adjective, purpose and "of the <region>"
    ("liver in abdominal CT", "liver", "modality"),
    ("vertebrae in spine MR", "vertebrae", "modality"),
    ("hippocampus on brain MRI", "hippocampus", "modality"),
    ("larynx in planning CT of the head and neck", "larynx", "modality"),
    ("hippocampus, MRI of the brain", "hippocampus", "modality"),
    ("sternum in CT angiography", "sternum", "modality"),
    ("lung on whole-body PET/CT", "lung", "modality"),
    ("L3 vertebra on whole-spine MRI", "l3 vertebra", "modality"),
    ("putamen on T1-weighted images", "putamen", "modality"),
    # contrast state and phase
    ("enhancing tumour on brain MRI T1-weighted post-contrast", "enhancing tumour", "contrast"),
    ("portal vein in the portal venous phase", "portal vein", "phase"),
    ("spleen, non-contrast", "spleen", "contrast"),
    ("kidneys in the nephrographic phase", "kidneys", "phase"),
    ("liver, gadolinium-enhanced", "liver", "contrast"),
    # task words, leading and trailing
    ("segmentation of the liver", "liver", "task"),
    ("Segmentation of spleen", "spleen", "task"),
    ("delineation of the left parotid gland", "left parotid gland", "task"),
    ("accurate segmentation of the pancreas", "pancreas", "task"),
    ("automatic delineation of the bladder", "bladder", "task"),
    ("contouring of the mandible", "mandible", "task"),
    ("localization of the pituitary gland", "pituitary gland", "task"),
    ("spleen identified via abdomen MRI", "spleen", "task"),
    ("gallbladder visualized in ultrasound", "gallbladder", "task"),
    ("right lung as seen on chest CT", "right lung", "task"),
    ("aorta depicted in the thorax", "aorta", "task"),
    ("stomach visualised on imaging", "stomach", "task"),
    # report phrasing
    ("CT scan showing hepatic structures", "hepatic", "report"),
    ("abdominal CT showing liver structures", "liver", "report"),
    ("the abdomen showing pancreas structures", "pancreas", "report"),
    ("brain MRI image depicting the hippocampus", "hippocampus", "report"),
    ("region characterized by peritumoral edema", "peritumoral edema", "report"),
    ("area consistent with pleural effusion", "pleural effusion", "report"),
    ("liver lesion characterized by arterial enhancement", "liver lesion", "report"),
])
def test_qualifiers_are_cut_from_the_anatomy(text, anatomy, stage):
    p = parse_prompt(text)
    assert p.anatomy == anatomy, p
    assert stage in _stages(text), p.qualifiers


@pytest.mark.parametrize("text", [
    "body of pancreas", "head of pancreas", "tail of the pancreas", "base of the skull",
    "abdominal aorta", "thoracic spine", "thoracic aorta", "lymph nodes of the neck",
    "neck of the femur", "head and neck", "whole body", "brain stem", "abdominal wall",
    "pelvic floor", "T2 vertebra", "contrast-enhancing tumour", "gadolinium-enhancing tumour",
    "surrounding FLAIR hyperintensity", "FLAIR hyperintensities", "posterior liver segment",
])
def test_words_of_a_name_stay_anatomy(text):
    assert parse_prompt(text).anatomy == text.lower()


def test_region_setting_needs_anatomy_before_it():
    assert parse_prompt("in the abdomen").anatomy == "abdomen"
    assert parse_prompt("body of pancreas in the whole body region").anatomy == "body of pancreas"


def test_long_descriptions_are_not_cut():
    text = ("The large organ in the right upper abdomen under the diaphragm that processes nutrients, "
            "makes bile and clears toxins showing many lobules")
    p = parse_prompt(text)
    assert "showing many lobules" in p.anatomy and "report" not in _stages(text)


@pytest.mark.parametrize("text, core", [("splenic tissue", "splenic"), ("hepatic structure in CT", ""),
                                        ("kidney parenchyma", "kidney"), ("LA cavity", "la"),
                                        ("liver", "")])
def test_core_drops_one_trailing_generic_noun(text, core):
    assert parse_prompt(text).core == core


def test_stages_are_named_and_ordered():
    assert [name for name, _ in STAGES] == ["modality", "contrast", "phase", "scan", "brackets", "task",
                                            "report", "region"]


def test_qualifiers_keep_modality_and_side():
    p = parse_prompt("Delineation of the right kidney on contrast-enhanced CT in the arterial phase")
    assert (p.anatomy, p.modality, p.laterality) == ("right kidney", "CT", "right")
    assert {"modality", "phase", "task"} <= _stages(p.text)


@pytest.mark.parametrize("text", ["pancreas in the whole body region on CT", "pancreas in the abdomen on MRI",
                                  "pancreas, in the whole body region, on contrast-enhanced CT"])
def test_region_setting_before_a_cut_modality(text):
    assert parse_prompt(text).anatomy == "pancreas"


@pytest.mark.parametrize("text, anatomy", [
    ("metacarpophalangeal joint of manual digit I", "metacarpophalangeal joint of manual digit i"),
    ("where is cranial nerve I?", "cranial nerve i"),
    ("cervical vertebra I", "cervical vertebra i"), ("vertebra lumbalis I", "vertebra lumbalis i"),
    ("segment the liver I", "liver"),  # a trailing pronoun is still filler
])
def test_a_trailing_roman_one_after_a_numbered_noun_is_anatomy(text, anatomy):
    assert parse_prompt(text).anatomy == anatomy
