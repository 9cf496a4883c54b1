"""``sat phantoms``: generate the built-in procedural torso datasets.

Case ``i`` goes to source ``i % 3`` (MSD CT, nnU-Net MR, TotalSegmentator CT); within each source
the last 20 % (at least one) of its cases are the held-out test split. Every array is a pure
function of ``(seed, case index, config)``.

    python -m sat.data.phantoms.generate --out data/phantoms --cases 30 --seed 0
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sat.data.phantoms.anatomy import CONCEPTS, build_anatomy, concept_mask
from sat.data.phantoms.layouts import SOURCE_MODALITY, SOURCES, write_case, write_indexes
from sat.data.phantoms.render import render
from sat.data.phantoms.shapes import Grid, smooth_noise
from sat.errors import InputError

TORSO_MM = (340.0, 240.0, 420.0)  # nominal L-R, A-P, S-I extent of the torso


@dataclass
class PhantomConfig:
    """Knobs of the generator; the defaults give the built-in dataset."""

    spacing_scale: float = 1.0                          # multiplies both spacing ranges below
    inplane_mm: tuple[float, float] = (1.5, 3.0)        # in-plane spacing range (x = y)
    slice_mm: tuple[float, float] = (2.5, 5.0)          # slice spacing range (z)
    max_shape: tuple[int, int, int] = (200, 160, 170)   # the field of view is cropped to this
    size_jitter: float = 0.08                           # torso size varies by +- this fraction
    deform_mm: float = 7.0                              # std of the smooth displacement field
    tumor_prob: float = 0.8                             # P(liver holds 1-2 tumours)
    cyst_prob: float = 0.7                              # P(one kidney holds a cyst)
    test_fraction: float = 0.2                          # held-out share of each source

    def __post_init__(self) -> None:
        if not self.spacing_scale > 0:
            raise InputError(f"spacing_scale must be > 0, got {self.spacing_scale}")
        if not 0.0 < self.test_fraction < 1.0:
            raise InputError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


@dataclass
class PhantomCase:
    """One generated case, already in its stored orientation."""

    case_id: str
    index: int
    source: str
    modality: str
    orientation: str                       # "RAS" or "LPS" (the affine's axis codes)
    spacing: tuple[float, float, float]    # mm, along the array axes
    affine: np.ndarray                     # (4, 4) voxel -> RAS+ world mm
    image: np.ndarray = field(repr=False)  # (X, Y, Z) int16
    parts: np.ndarray = field(repr=False)  # (X, Y, Z) uint8 exclusive part map (anatomy.PARTS)

    def mask(self, concept: str) -> np.ndarray:
        """(X, Y, Z) boolean mask of a concept; masks overlap where structures nest."""
        return concept_mask(self.parts, concept)

    def masks(self) -> dict[str, np.ndarray]:
        """Every concept's mask, keyed by concept id."""
        return {c: self.mask(c) for c in CONCEPTS}


def case_id(index: int) -> str:
    """``phantom_0007`` for index 7."""
    return f"phantom_{index:04d}"


def split_cases(n_cases: int, test_fraction: float = 0.2) -> dict[str, dict[str, list[str]]]:
    """Deterministic per-source train/test split of case ids ``0 .. n_cases - 1``."""
    out = {}
    for s, source in enumerate(SOURCES):
        ids = [case_id(i) for i in range(s, n_cases, 3)]
        n_test = max(1, int(round(test_fraction * len(ids)))) if ids else 0
        out[source] = {"train": ids[: len(ids) - n_test], "test": ids[len(ids) - n_test:]}
    return out


def generate_case(seed: int, index: int, cfg: PhantomConfig | None = None) -> PhantomCase:
    """Generate case ``index`` of the set drawn with ``seed``.

    Returns:
        the case with its int16 image, boolean concept masks and affine.
    """
    cfg = cfg or PhantomConfig()
    rng = np.random.default_rng([seed, index])
    source = SOURCES[index % 3]
    inplane = rng.uniform(*cfg.inplane_mm) * cfg.spacing_scale
    spacing = np.round([inplane, inplane, rng.uniform(*cfg.slice_mm) * cfg.spacing_scale], 3)
    scale = 1.0 + rng.uniform(-cfg.size_jitter, cfg.size_jitter, 3)
    margin = rng.uniform(20.0, 60.0)
    fov = np.array(TORSO_MM) * scale + [margin, margin, 0.0]
    shape = np.minimum(np.ceil(fov / spacing).astype(int), cfg.max_shape)
    # Body frame: torso centre at the origin; its A-P centre is at y = +10 mm * scale.
    centre = np.array([0.0, 10.0 * scale[1], 0.0]) + rng.uniform(-10.0, 10.0, 3) * [1, 1, 0.5]
    axes = tuple(((np.arange(n) - (n - 1) / 2) * d + c).astype(np.float32)
                 for n, d, c in zip(shape, spacing, centre))
    disp = smooth_noise(rng, axes, 60.0, channels=3) * np.float32(cfg.deform_mm)  # (3, X, Y, Z)
    grid = Grid(*axes, disp)
    owner = build_anatomy(grid, rng, scale, tumor_prob=cfg.tumor_prob, cyst_prob=cfg.cyst_prob)
    del disp, grid
    image = render(owner, SOURCE_MODALITY[source], rng, axes)
    world = np.array([rng.uniform(-20, 20), rng.uniform(-30, 30), rng.uniform(-900, -300)])
    affine = np.diag([*spacing, 1.0])
    if (index // 3 + seed) % 2:  # LPS: flip x and y so the anatomy keeps its world position
        orientation = "LPS"
        affine[:2, :2] *= -1
        affine[:3, 3] = world + [axes[0][-1], axes[1][-1], axes[2][0]]
        image = np.ascontiguousarray(image[::-1, ::-1])
        owner = np.ascontiguousarray(owner[::-1, ::-1])
    else:
        orientation = "RAS"
        affine[:3, 3] = world + [axes[0][0], axes[1][0], axes[2][0]]
    return PhantomCase(case_id(index), index, source, SOURCE_MODALITY[source], orientation,
                       tuple(float(v) for v in spacing), affine, image, owner)


def generate_phantoms(out_dir: Path, cases: int, seed: int = 0,
                      cfg: PhantomConfig | None = None) -> dict:
    """Generate ``cases`` cases and write all three sources, splits.json and phantoms.json.

    Args:
        out_dir: output folder (created).
        cases: number of cases, >= 3 so that every source gets one.
        seed: base seed.
        cfg: generator configuration; defaults to :class:`PhantomConfig`.

    Returns:
        the manifest also written to ``out_dir/phantoms.json``.

    Raises:
        InputError: when ``cases`` < 3, or ``out_dir`` holds source folders but no phantoms.json
            (so it was not written by this generator and is left alone).
    """
    cfg = cfg or PhantomConfig()
    if cases < 3:
        raise InputError(f"--cases must be >= 3 (one per source), got {cases}")
    out_dir = Path(out_dir)
    old = [out_dir / s for s in SOURCES if (out_dir / s).exists()]
    if old and not (out_dir / "phantoms.json").is_file():
        raise InputError(f"{out_dir} holds {old[0].name}/ but no phantoms.json; choose an empty --out")
    for folder in old:  # a previous run of this generator: drop its cases so none go stale
        shutil.rmtree(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = split_cases(cases, cfg.test_fraction)
    split_of = {c: part for s in splits.values() for part, ids in s.items() for c in ids}
    records = []
    for i in range(cases):
        case = generate_case(seed, i, cfg)
        write_case(out_dir, case)
        records.append({"case_id": case.case_id, "source": case.source,
                        "modality": case.modality, "split": split_of[case.case_id],
                        "orientation": case.orientation, "spacing": list(case.spacing),
                        "shape": list(case.image.shape)})
    write_indexes(out_dir, splits)
    manifest = {"generator": "sat.data.phantoms", "seed": seed, "num_cases": cases,
                "config": asdict(cfg), "cases": records}
    (out_dir / "phantoms.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sat phantoms``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="sat phantoms", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--cases", type=int, default=30, help="number of cases (>= 3)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed")
    parser.add_argument("--spacing-scale", type=float, default=1.0,
                        help="multiplies the voxel spacing (3 gives tiny test volumes)")
    args = parser.parse_args(argv)
    cfg = PhantomConfig(spacing_scale=args.spacing_scale)
    t0 = time.perf_counter()
    manifest = generate_phantoms(args.out, args.cases, args.seed, cfg)
    took = time.perf_counter() - t0
    print(f"wrote {manifest['num_cases']} phantom cases to {args.out} "
          f"({took / manifest['num_cases']:.2f} s per case)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
