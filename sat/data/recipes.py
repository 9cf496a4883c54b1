"""Dataset recipes: one YAML per public dataset in ``data_shards/recipes/``.

A recipe says where a dataset's files are (its layout), what each image channel is, which
knowledge-tree concept each source label forms, the split, the licence and the spacing used for
preprocessing. Adapters read the layout; nothing in code is specific to one dataset.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LAYOUTS = ("msd", "nnunet", "totalseg", "generic")


@dataclass
class Recipe:
    """A dataset recipe.

    Attributes:
        name: dataset name used in shards, metrics and sampling weights.
        layout: one of :data:`LAYOUTS`.
        channels: modality of each image channel, e.g. ``["CT"]`` or ``["MR", "MR"]``.
        concepts: concept id -> source label names whose union is that concept's mask. Integer
            label maps are exclusive, so e.g. ``liver: [liver, liver tumour]`` rebuilds the whole
            liver when tumour voxels carry their own label.
        spacing: preprocessing spacing in mm.
        split_file: optional JSON (relative to the dataset folder) with ``{key: {split: [ids]}}``.
        split_key: key into ``split_file`` (defaults to ``name``).
        license: licence note.
        url: where the public dataset comes from (documentation only).
        weight: sampling weight factor when mixing datasets.
    """

    name: str
    layout: str
    channels: list[str]
    concepts: dict[str, list[str]]
    spacing: tuple[float, float, float] = (4.0, 4.0, 4.0)
    split_file: str | None = None
    split_key: str | None = None
    license: str = ""
    url: str = ""
    weight: float = 1.0
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def modality(self) -> str:
        """Modality of the first channel (drives intensity normalisation)."""
        return self.channels[0]

    def validate(self, tree=None) -> None:
        """Raise ``ValueError`` naming the first inconsistency; check concept ids against ``tree``."""
        if self.layout not in LAYOUTS:
            raise ValueError(f"recipe {self.name!r}: layout {self.layout!r} not in {LAYOUTS}")
        if not self.channels:
            raise ValueError(f"recipe {self.name!r}: needs at least one channel modality")
        for cid, labels in self.concepts.items():
            if not labels:
                raise ValueError(f"recipe {self.name!r}: concept {cid!r} maps to no source label")
            if tree is not None and cid not in tree:
                raise ValueError(f"recipe {self.name!r}: concept {cid!r} is not in the knowledge tree")


def recipe_dir() -> Path:
    """``$SAT_RECIPES`` if set, else ``data_shards/recipes`` beside the package."""
    env = os.environ.get("SAT_RECIPES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data_shards" / "recipes"


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a recipe from a YAML path or by name from :func:`recipe_dir`."""
    path = Path(name_or_path)
    if not path.suffix:
        path = recipe_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    known = set(Recipe.__dataclass_fields__)
    extra = {k: raw.pop(k) for k in list(raw) if k not in known}
    concepts = {str(k): [str(x) for x in ([v] if isinstance(v, (str, int)) else v)]
                for k, v in (raw.pop("concepts", None) or {}).items()}
    spacing = tuple(float(s) for s in raw.pop("spacing", (4.0, 4.0, 4.0)))
    recipe = Recipe(concepts=concepts, spacing=spacing, extra=extra, **raw)
    recipe.validate()
    return recipe


def all_recipes() -> list[Recipe]:
    return [load_recipe(p) for p in sorted(recipe_dir().glob("*.yaml"))]
