"""Pydantic input and output models of the agent tools.

These models are the single source of the tools' JSON schemas: the MCP server publishes them,
``sat agent schemas`` converts them to OpenAI (strict) and Anthropic tool definitions, and the
dispatcher validates every call against them. Optional inputs are ``X | None`` so that OpenAI's
strict mode (every property required) can express them as nullable.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from sat.knowledge.modality import MODALITIES

Modality = Literal[MODALITIES]  # Literal["CT", "MR", "PET", "US"]
Region = Literal["brain", "head_neck", "thorax", "abdomen", "pelvis", "spine", "upper_limb",
                 "lower_limb", "whole_body"]
_PATH = "a file path inside an allowed root (relative paths start at the first allowed root)"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------- inputs
class ListConceptsInput(_In):
    query: str | None = Field(None, max_length=200, description="substring of a name or synonym; null lists all")
    region: Region | None = Field(None, description="body region filter; null for every region")


class ResolvePromptInput(_In):
    text: str = Field(..., min_length=1, max_length=512, description="free-text structure name, e.g. 'left kidney'")


class SegmentInput(_In):
    image_path: str = Field(..., max_length=4096,
                            description=f"3D image (NIfTI, NRRD, MHA, DICOM folder or zip): {_PATH}")
    prompts: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        ..., min_length=1, max_length=32, description="structures in free text, e.g. ['liver', 'left kidney']")
    modality: Modality | None = Field(None, description="imaging modality; null to read it from the image")


class Click(_In):
    x: float = Field(..., description="RAS x in mm (patient left is +x)")
    y: float = Field(..., description="RAS y in mm (anterior is +y)")
    z: float = Field(..., description="RAS z in mm (superior is +z)")
    positive: bool = Field(True, description="true: this point belongs to the structure; false: it does not")


class RefineInput(_In):
    image_path: str = Field(..., max_length=4096, description=f"3D image, the one segmented before: {_PATH}")
    prompt: str | None = Field(None, min_length=1, max_length=512,
                               description="the structure in free text; null to segment from clicks and box alone")
    points: list[Click] = Field(default_factory=list, max_length=64,
                                description="every click so far (world RAS mm), not only the new one")
    box: list[float] | None = Field(None, min_length=6, max_length=6,
                                    description="[x0, y0, z0, x1, y1, z1]: two opposite corners in RAS mm; "
                                                "equal on one axis for a 2D box drawn on one slice")
    modality: Modality | None = Field(None, description="imaging modality; null to read it from the image")


class MeasureInput(_In):
    mask_path: str = Field(..., max_length=4096, description=f"binary mask NIfTI: {_PATH}")
    image_path: str | None = Field(None, max_length=4096,
                                   description="image on the same grid for intensity statistics; null to skip")


class CompareInput(_In):
    mask_a: str = Field(..., max_length=4096, description=f"baseline mask: {_PATH}")
    mask_b: str = Field(..., max_length=4096, description=f"follow-up mask: {_PATH}")


class GroundReportInput(_In):
    image_path: str = Field(..., max_length=4096, description=f"3D image the report describes: {_PATH}")
    report_text: str = Field(..., min_length=1, max_length=20_000, description="radiology report or findings text")


# ---------------------------------------------------------------------------------- outputs
class Box(_Out):
    min: list[float]
    max: list[float]


class VoxelBox(_Out):
    min: list[int]
    max: list[int]


class Stats(_Out):
    """Volume, extent, position, intensity and confidence of one mask (RAS+ mm)."""

    volume_ml: float
    voxel_count: int
    extent_mm: list[float] | None = None
    bbox_world_mm: Box | None = None
    bbox_voxel: VoxelBox | None = None
    centroid_world_mm: list[float] | None = None
    intensity_mean: float | None = None
    intensity_std: float | None = None
    mean_confidence: float | None = None


class ConceptInfo(_Out):
    id: str
    name: str
    synonyms: list[str]
    region: str
    kind: str
    laterality: str
    trained: bool = Field(description="the model has its own output for this concept")
    via: list[str] = Field(description="trained concepts whose union answers it")


class ListConceptsOutput(_Out):
    concepts: list[ConceptInfo]
    total: int
    truncated: bool


class Suggestion(_Out):
    concept: str
    name: str
    score: float | None = None


class ResolvePromptOutput(_Out):
    text: str
    concept: str | None
    name: str | None
    score: float
    method: str
    laterality: str | None
    modality: str | None
    answerable: bool = Field(description="the loaded model can segment it")
    used_concepts: list[str]
    reason: str
    suggestions: list[Suggestion]


class Refusal(_Out):
    prompt: str
    reason: str
    suggestions: list[Suggestion]


class StructureOut(_Out):
    prompt: str
    concept: str
    name: str
    used_concepts: list[str]
    laterality: str
    mask_path: str
    stats: Stats


class SegmentOutput(_Out):
    image_path: str
    modality: str
    output_dir: str
    preview_path: str | None
    structures: list[StructureOut]
    refused: list[Refusal]


class MeasureOutput(_Out):
    mask_path: str
    image_path: str | None
    spacing_mm: list[float]
    stats: Stats


class CompareOutput(_Out):
    mask_a: str
    mask_b: str
    volume_a_ml: float
    volume_b_ml: float
    volume_change_ml: float
    volume_change_pct: float | None
    dice: float
    centroid_shift_mm: list[float] | None
    centroid_distance_mm: float | None
    same_grid: bool
    note: str


class Mention(_Out):
    """One anatomical mention in a report; offsets index the original text (``text[start:end]``)."""

    text: str = Field(description="the whole phrase, e.g. '3 cm cyst in the left kidney'")
    start: int
    end: int
    anatomy: str = Field(description="the anatomy words, e.g. 'left kidney'")
    anatomy_start: int
    anatomy_end: int
    sentence: int
    laterality: str | None
    lesion: str | None = Field(description="lesion word attached to the anatomy, e.g. 'cyst'")
    sizes_mm: list[float]
    modifiers: list[str]
    negated: bool
    concept: str | None = Field(description="knowledge-tree concept of the whole phrase")


class KeySlice(_Out):
    plane: Literal["axial", "coronal", "sagittal"]
    axis: int = Field(description="array axis of the image that the slice index runs along")
    index: int
    png_path: str | None


class Finding(_Out):
    mention: Mention
    concept: str = Field(description="concept that was segmented (may be broader than the mention's)")
    name: str
    used_concepts: list[str]
    mask_path: str | None
    empty: bool
    key_slices: list[KeySlice]
    stats: Stats
    note: str


class Unmatched(_Out):
    mention: Mention
    reason: str
    suggestions: list[Suggestion]


class GroundReportOutput(_Out):
    image_path: str
    output_dir: str
    findings: list[Finding]
    unmatched: list[Unmatched]
