"""Dataset recipes: one YAML per public dataset in ``data_shards/recipes/``.

A recipe says where a dataset's files are (its layout and :class:`SourceSpec`), what each image
channel is, which knowledge-tree concept each source label forms, the split, the licence and the
spacing used for preprocessing. Adapters read the recipe; nothing in code is specific to one
dataset. ``data_shards/README.md`` documents every field with examples.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from sat.resources import recipes_dir as packaged_recipes
from sat.yaml_io import ConfigError, check_keys, read_yaml_mapping

LAYOUTS = ("msd", "nnunet", "totalseg", "generic")
LabelRef = str | int  # a source label: its name, or its integer value in the label map


@dataclass
class SourceSpec:
    """Layout details: where images, labels and label names are inside the dataset folder.

    Attributes:
        images: generic layout: one path pattern per channel, e.g. ``"img/img{case}.nii.gz"``.
            ``{name}`` or ``{name:regex}`` captures part of the path; the first pattern finds
            the cases, the others and ``label`` are filled in from its captures. ``{split}``
            captures the split (renamed through ``split_map``). totalseg: the image file name.
        label: generic: label pattern (a folder of 2D slice images, e.g. CHAOS PNG ground truth,
            is stacked in the file order of the image's DICOM series); totalseg: one multilabel
            file per case (else ``masks``).
        masks: totalseg: folder of per-structure mask files inside each case folder; generic: a
            pattern of that folder filled from the image captures (``"{split}/{case}/segmentations"``),
            used when ``label`` is not set.
        class_map: JSON file (case folder first, then dataset folder) mapping value -> name.
        class_map_key: key of the value -> name mapping inside ``class_map`` (``None``: top level).
        list: generic: a CSV or JSONL listing with ``image``, ``label``, ``case_id``, ``split``
            and ``labels`` (JSON name -> value) columns, used instead of ``images`` patterns.
        case_id: generic: template of the case id from the captures (default ``{case}``).
        include, exclude: regular expressions on case ids (e.g. AMOS CT vs MR ids).
        split_map: source split names (dataset.json sections, ``{split}`` captures) -> our names.
        missing_masks: a per-structure mask file that a case lacks means ``error`` (the case fails)
            or ``unannotated`` (that structure was not contoured for this case: it is neither a
            positive nor a negative there; partial labels, e.g. OpenKBP).
        empty_masks: an all-zero mask file means ``negative`` (annotated and absent, as in
            TotalSegmentator) or ``error`` (the case fails and is reported: a contoured organ
            cannot be empty).
    """

    images: list[str] = field(default_factory=list)
    label: str | None = None
    masks: str = "segmentations"
    class_map: str | None = None
    class_map_key: str | None = None
    list: str | None = None
    case_id: str | None = None
    include: str | None = None
    exclude: str | None = None
    split_map: dict[str, str] = field(default_factory=dict)
    missing_masks: str = "error"
    empty_masks: str = "negative"


MISSING_MASKS = ("error", "unannotated")
EMPTY_MASKS = ("negative", "error")


@dataclass
class Recipe:
    """A dataset recipe.

    Attributes:
        name: dataset name used in shard keys, manifests, metrics and sampling weights.
        layout: one of :data:`LAYOUTS`.
        channels: modality of each image channel, e.g. ``["CT"]`` or ``["MR", "MR"]``.
        concepts: concept id -> source labels (names, or integer values) whose union is that
            concept's mask. Integer label maps are exclusive, so e.g. ``liver: [liver, tumour]``
            rebuilds the whole liver when tumour voxels carry their own label.
        labels: source label name -> value(s) when the dataset ships no name map (or to fix
            one); a list of values is a region (union), ``"55..70"`` an inclusive range.
        spacing: preprocessing spacing in mm (RAS axes).
        source: layout details, see :class:`SourceSpec`.
        channel_names: optional name of each channel (``T1c``, ``FLAIR``, ...), for documentation.
        split_file: optional JSON (``{key: {split: [ids]}}``, ``{split: [ids]}`` or nnU-Net's
            ``splits_final.json`` list of folds) or CSV (columns ``split_columns``) relative to
            the dataset folder.
        split_key: key (or fold number) inside ``split_file`` (defaults to ``name``).
        split_columns: CSV split file: the case id and split column names.
        split_note: the official split in words.
        license, url, citation, notes: documentation.
        weight: sampling weight factor when mixing datasets.
        holdout: fraction of the ``train`` split held out as ``val`` (chosen by a hash of the case
            id, so the same cases every time) when the dataset ships no validation split.
        intensity: :class:`~sat.volume.preprocess.IntensityRule` fields for this recipe's
            modality, replacing the default rule in its shards; the rule is recorded in every
            shard sample and travels into the checkpoint, so inference normalises the same way.
    """

    name: str
    layout: str
    channels: list[str]
    concepts: dict[str, list[LabelRef]]
    labels: dict[str, list[int]] = field(default_factory=dict)
    spacing: tuple[float, float, float] = (1.5, 1.5, 3.0)
    source: SourceSpec = field(default_factory=SourceSpec)
    channel_names: list[str] = field(default_factory=list)
    split_file: str | None = None
    split_key: str | int | None = None
    split_columns: list[str] = field(default_factory=lambda: ["image_id", "split"])
    split_note: str = ""
    license: str = ""
    url: str = ""
    citation: str = ""
    notes: str = ""
    weight: float = 1.0
    holdout: float = 0.0
    intensity: dict = field(default_factory=dict)

    @property
    def modality(self) -> str:
        """Modality of the first channel (drives intensity normalisation)."""
        return self.channels[0]

    def intensity_rule(self):
        """The :class:`~sat.volume.preprocess.IntensityRule` of this recipe's shards (``None`` for a
        modality without a rule: preprocessing then fails case by case, naming it)."""
        from sat.volume.preprocess import IntensityRule, default_rule

        return IntensityRule(**self.intensity) if self.intensity else default_rule(self.modality)

    def rules(self) -> dict:
        """Intensity rule per modality for this recipe's shards: the defaults, with ``intensity``
        replacing the rule of the recipe's modality."""
        from sat.volume.preprocess import default_rules

        rules = default_rules()
        if self.intensity:
            rules[self.modality.upper()] = self.intensity_rule()
        return rules

    def validate(self, tree=None) -> None:
        """Raise ``ValueError`` naming the first inconsistency; check concept ids against ``tree``."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise ValueError(f"recipe name {self.name!r} must use only letters, digits, '_' and '-'")
        if self.layout not in LAYOUTS:
            raise ValueError(f"recipe {self.name!r}: layout {self.layout!r} not in {LAYOUTS}")
        if not self.channels:
            raise ValueError(f"recipe {self.name!r}: needs at least one channel modality")
        if self.channel_names and len(self.channel_names) != len(self.channels):
            raise ValueError(f"recipe {self.name!r}: {len(self.channel_names)} channel_names for "
                             f"{len(self.channels)} channels")
        if len(self.spacing) != 3 or not all(s > 0 for s in self.spacing):
            raise ValueError(f"recipe {self.name!r}: spacing must be three positive mm, got {self.spacing}")
        if self.intensity:
            try:
                self.intensity_rule()
            except TypeError as exc:
                raise ValueError(f"recipe {self.name!r}: intensity: {exc}") from None
        if self.layout == "generic" and not (self.source.images or self.source.list):
            raise ValueError(f"recipe {self.name!r}: generic layout needs source.images or source.list")
        if self.source.images and len(self.source.images) != len(self.channels) and self.layout == "generic":
            raise ValueError(f"recipe {self.name!r}: {len(self.source.images)} image patterns for "
                             f"{len(self.channels)} channels")
        if self.source.missing_masks not in MISSING_MASKS:
            raise ValueError(f"recipe {self.name!r}: source.missing_masks {self.source.missing_masks!r} "
                             f"not in {MISSING_MASKS}")
        if self.source.empty_masks not in EMPTY_MASKS:
            raise ValueError(f"recipe {self.name!r}: source.empty_masks {self.source.empty_masks!r} "
                             f"not in {EMPTY_MASKS}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"recipe {self.name!r}: holdout must be in [0, 1), got {self.holdout}")
        for cid, refs in self.concepts.items():
            if not refs:
                raise ValueError(f"recipe {self.name!r}: concept {cid!r} maps to no source label")
            if tree is not None and cid not in tree:
                raise ValueError(f"recipe {self.name!r}: concept {cid!r} is not in the knowledge tree")


def parse_values(name: str, spec) -> list[int]:
    """Label values from an int, a list of ints, or an inclusive range string ``"55..70"``."""
    items = spec if isinstance(spec, list) else [spec]
    out: list[int] = []
    for item in items:
        if isinstance(item, str) and re.fullmatch(r"\d+\.\.\d+", item.strip()):
            lo, hi = (int(v) for v in item.split(".."))
            out += list(range(lo, hi + 1))
        elif isinstance(item, (int, str)) and str(item).lstrip("-").isdigit():
            out.append(int(item))
        else:
            raise ValueError(f"label {name!r}: value {item!r} is not an integer, list or 'a..b' range")
    return out


def recipe_dir() -> Path:
    """``$SAT_RECIPES`` if set, else the packaged recipes, else the checkout's (:mod:`sat.resources`)."""
    return packaged_recipes()


def _resolve(name_or_path: str | Path, base: Path | None = None) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = (base or recipe_dir()) / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    return path


def _raw(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The YAML mapping with ``extends: other`` merged in (top-level keys override)."""
    if path in seen:
        raise ValueError(f"recipe {path.name}: circular 'extends'")
    raw = read_yaml_mapping(path, "recipe")
    parent = raw.pop("extends", None)
    if parent:
        base = _raw(_resolve(parent, path.parent), (*seen, path))
        base.update(raw)
        raw = base
    return raw


def _refs(cid: str, v) -> list[LabelRef]:
    items = [v] if isinstance(v, (str, int)) else list(v or [])
    if not all(isinstance(x, (str, int)) for x in items):
        raise ValueError(f"concept {cid!r}: source labels must be names or integers, got {v!r}")
    return items


def recipe_from_dict(raw: dict, where: str = "recipe") -> Recipe:
    """Build and validate a :class:`Recipe` from a parsed YAML mapping.

    Raises:
        ConfigError: (a ``ValueError``) unknown or missing fields, a bad value; the message names
            ``where`` (the file) and the problem.
    """
    try:
        return _recipe(raw, where)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(where, "", str(exc)) from None


def _recipe(raw: dict, where: str) -> Recipe:
    raw = check_keys(raw, (f.name for f in fields(Recipe)), where,
                     required=("name", "layout", "channels", "concepts"))
    src = check_keys(raw.pop("source", None) or {}, (f.name for f in fields(SourceSpec)), where, "source")
    if isinstance(src.get("images"), str):
        src["images"] = [src["images"]]
    concepts = {str(k): _refs(str(k), v) for k, v in (raw.pop("concepts", None) or {}).items()}
    labels = {str(k): parse_values(str(k), v) for k, v in (raw.pop("labels", None) or {}).items()}
    spacing = tuple(float(s) for s in raw.pop("spacing", (1.5, 1.5, 3.0)))
    raw["channels"] = [str(c) for c in raw["channels"]]
    recipe = Recipe(concepts=concepts, labels=labels, spacing=spacing,  # type: ignore[arg-type]
                    source=SourceSpec(**src), **raw)
    recipe.validate()
    return recipe


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a recipe from a YAML path or by name from :func:`recipe_dir`.

    Raises:
        FileNotFoundError: no such recipe. ValueError: a malformed recipe (the message names it).
    """
    path = _resolve(name_or_path)
    return recipe_from_dict(_raw(path), str(path))


def all_recipes() -> list[Recipe]:
    """Every recipe in :func:`recipe_dir`, sorted by file name."""
    return [load_recipe(p) for p in sorted(recipe_dir().glob("*.yaml"))]
