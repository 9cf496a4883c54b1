"""``sat shards verify``: prove a shard folder is intact and consistent, and draw a preview.

Checks, in order: the manifest exists; every shard it lists exists with the recorded sha256 and
sample count, and no tar is unlisted; every sample decodes; its metadata agrees with its arrays
(shape, channel count, voxel counts, presence, boxes, axis-aligned affine at the stated spacing);
its concepts exist in the knowledge tree; every case in the manifest is found exactly once.

Shards may come from elsewhere, so reading them is bounded: a malformed manifest or sample is one
error line, shard names must be plain ``.tar`` file names in the folder (regular files, never a
FIFO), and a tar member larger than ``max_member_bytes`` (default :data:`MAX_MEMBER_BYTES`; a
600 KB tar can declare a 20 GiB sparse member) is refused before a byte of it is read.
"""
from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sat.volume.geometry import spacing_of
from sat.data.label_codes import code_stats
from sat.data.manifest import read_manifest, sha256_file
from sat.data.shard_format import ShardCase, decode_case
from sat.errors import InputError
from sat.safe_open import Limits, check_file

MAX_MEMBER_BYTES = 4 * 2**30  # one sample file (image, code map or JSON) inside a shard

_META_FIELDS = ("case_id", "dataset", "modality", "spacing", "shape", "concepts", "annotated",
                "voxels", "present", "bbox", "affine")


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_shards`; ``ok`` when ``errors`` is empty."""

    shards: int = 0
    samples: int = 0
    errors: list[str] = field(default_factory=list)
    preview: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"ok": self.ok, "shards": self.shards, "samples": self.samples,
                "errors": len(self.errors), "preview": self.preview}


class MemberTooLarge(ValueError):
    """A tar member that declares more bytes than the limit (read nothing of it)."""


def iter_tar_samples(source, max_member_bytes: int = MAX_MEMBER_BYTES):
    """Raw WebDataset samples (``{"__key__", ext: bytes}``) of one tar, in file order.

    Args:
        source: a local tar path, or a binary stream (read sequentially).
        max_member_bytes: largest member accepted (its declared, expanded size).

    Raises:
        MemberTooLarge: a member larger than the limit.
    """
    opened = tarfile.open(source) if isinstance(source, (str, Path)) else tarfile.open(fileobj=source, mode="r|*")
    with opened as tf:
        current: dict = {}
        for member in tf:
            if not member.isfile():
                continue
            if member.size > max_member_bytes:
                raise MemberTooLarge(f"member {member.name!r} declares {member.size} bytes, more than the "
                                     f"{max_member_bytes} byte limit per member")
            key, _, ext = Path(member.name).name.partition(".")
            if current and key != current["__key__"]:
                yield current
                current = {}
            current["__key__"] = key
            current[ext] = tf.extractfile(member).read()
        if current:
            yield current


def check_sample(s: ShardCase, tree, n_channels: int | None = None) -> list[str]:
    """Consistency problems of one decoded sample (empty when it is sound)."""
    try:
        return _check_sample(s, tree, n_channels)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:  # malformed metadata
        return [f"{s.key}: malformed sample ({type(exc).__name__}: {str(exc)[:200]})"]


def _check_sample(s: ShardCase, tree, n_channels: int | None = None) -> list[str]:
    m, key, errs = s.meta, s.key, []
    if not isinstance(m, dict):
        return [f"{key}: metadata is not a JSON object"]
    missing = [f for f in _META_FIELDS if f not in m]
    if missing:
        return [f"{key}: metadata lacks {missing}"]
    shape, k = tuple(m["shape"]), len(m["concepts"])
    if s.image.shape[1:] != shape or (n_channels and s.image.shape[0] != n_channels):
        errs.append(f"{key}: image shape {s.image.shape} vs metadata shape {list(shape)}")
    if not np.all(np.isfinite(s.image)):
        errs.append(f"{key}: image holds NaN/Inf")
    codes, lut = s.labels.codes, s.labels.lut
    if codes.shape != shape or lut.shape[0] != k:
        return errs + [f"{key}: labels {codes.shape} x {lut.shape[0]} channels vs {k} concepts x {list(shape)}"]
    if codes.size and int(codes.max()) >= lut.shape[1]:
        return errs + [f"{key}: code map holds code {int(codes.max())} but the table has {lut.shape[1]} codes"]
    voxels, boxes = code_stats(codes, lut)
    if voxels != list(m["voxels"]) or [bool(v) for v in voxels] != list(m["present"]):
        errs.append(f"{key}: voxel counts / presence disagree with the masks")
    if boxes != list(m["bbox"]):
        errs.append(f"{key}: bounding boxes disagree with the masks")
    unknown = [c for c in m["concepts"] if tree is not None and c not in tree]
    if unknown:
        errs.append(f"{key}: concepts not in the knowledge tree: {unknown}")
    if not set(m["annotated"]) <= set(m["concepts"]):
        errs.append(f"{key}: annotated concepts without a mask channel")
    aff = np.asarray(m["affine"], dtype=float)
    if not (np.allclose(spacing_of(aff), m["spacing"], atol=1e-4)
            and np.allclose(aff[:3, :3], np.diag(m["spacing"]), atol=1e-4)):
        errs.append(f"{key}: affine is not the axis-aligned RAS grid at spacing {m['spacing']}")
    return errs


def _preview_tile(s: ShardCase) -> tuple[np.ndarray, np.ndarray, str]:
    """Axial slice through the largest present structure: (image 2D, label 2D, title)."""
    vox = s.meta["voxels"]
    k = int(np.argmax(vox)) if len(vox) else -1
    z = (int(np.flatnonzero(s.labels.masks([k])[0].any((0, 1))).mean()) if k >= 0 and vox[k]
         else s.image.shape[-1] // 2)
    plane = s.labels.codes[:, :, z]
    label = np.zeros(plane.shape, dtype=np.int32)
    for i in np.argsort(vox)[::-1]:  # small structures painted last, on top
        label[s.labels.lut[i][plane]] = i + 1
    # RAS (X, Y) -> rows anterior-up, patient's right on the viewer's left (radiological)
    image = s.image[0, :, :, z].astype(np.float32)
    return image.T[::-1, ::-1], label.T[::-1, ::-1], f"{s.key}\nz={z}"


def save_preview(tiles: list[tuple[np.ndarray, np.ndarray, str]], path: Path, cols: int = 4) -> Path:
    """Write a PNG grid of (image, label, title) tiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(tiles) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, lab, title) in zip(axes.ravel(), tiles):
        ax.imshow(img, cmap="gray")
        ax.imshow(np.ma.masked_equal(lab, 0), cmap="tab20", alpha=0.45, interpolation="nearest")
        ax.set_title(title, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _manifest_problem(manifest) -> str | None:
    """Why a manifest cannot be verified against, or None when its shape is sound."""
    if not isinstance(manifest, dict):
        return f"manifest.json must be a JSON object, got {type(manifest).__name__}"
    shards, cases = manifest.get("shards"), manifest.get("cases")
    if not isinstance(shards, dict) or not isinstance(cases, dict):
        return "manifest.json needs a 'shards' object and a 'cases' object"
    for name, info in shards.items():
        if Path(name).name != name or not name.endswith(".tar") or name.startswith("."):
            return f"manifest.json lists shard {name[:80]!r}, not a plain .tar file name in the folder"
        if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
            return f"manifest.json entry of {name!r} lacks its sha256"
    if not isinstance(manifest.get("datasets", {}), dict):
        return "manifest.json 'datasets' must be an object"
    return None


def verify_shards(folder: str | Path, tree=None, preview: str | Path | None = None,
                  n_preview: int = 8, seed: int = 0, max_member_bytes: int = MAX_MEMBER_BYTES) -> VerifyReport:
    """Verify a shard folder against its ``manifest.json``.

    Args:
        tree: knowledge tree for concept checks (``None``: the default tree).
        preview: PNG path for the preview grid (``None``: ``<folder>/preview.png``).
        n_preview: number of random samples in the preview.
    """
    from sat.knowledge.tree import load_tree

    folder, rep = Path(folder), VerifyReport()
    tree = tree if tree is not None else load_tree()
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError as exc:
        return VerifyReport(errors=[str(exc)])
    except (OSError, ValueError) as exc:
        return VerifyReport(errors=[f"manifest.json: unreadable ({type(exc).__name__}: {str(exc)[:200]})"])
    problem = _manifest_problem(manifest)
    if problem:
        return VerifyReport(errors=[problem])
    listed, on_disk = manifest["shards"], {p.name for p in folder.glob("*.tar")}
    rep.errors += [f"{n}: shard on disk but not in the manifest" for n in sorted(on_disk - set(listed))]
    keys = sorted(manifest["cases"])
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(keys, size=min(n_preview, len(keys)), replace=False).tolist()) if keys else set()
    seen: dict[str, str] = {}
    tiles = []
    channels = {n: len(d["channels"]) for n, d in manifest.get("datasets", {}).items()
                if isinstance(d, dict) and isinstance(d.get("channels"), list)}
    for name, info in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            rep.errors.append(f"{name}: listed in the manifest but missing")
            continue
        try:
            check_file(path, Limits())  # a regular file: never block on a FIFO
        except InputError as exc:
            rep.errors.append(str(exc))
            continue
        rep.shards += 1
        if sha256_file(path) != info["sha256"]:
            rep.errors.append(f"{name}: sha256 differs from the manifest (corrupt or rewritten)")
        n = 0
        try:
            for raw in iter_tar_samples(path, max_member_bytes):
                n += 1
                try:
                    s = decode_case(raw)
                except Exception as exc:
                    rep.errors.append(f"{name}/{raw['__key__']}: does not decode ({type(exc).__name__}: {exc})")
                    continue
                problems = check_sample(s, tree, channels.get(s.meta.get("dataset")))
                rep.errors += problems
                if s.key in seen:
                    rep.errors.append(f"{s.key}: duplicated in {seen[s.key]} and {name}")
                seen[s.key] = name
                if s.key in chosen and not problems:
                    tiles.append(_preview_tile(s))
        except MemberTooLarge as exc:
            rep.errors.append(f"{name}: {exc}")
        except (tarfile.TarError, OSError, EOFError) as exc:
            rep.errors.append(f"{name}: unreadable tar ({type(exc).__name__}: {exc})")
        rep.samples += n
        if n != info.get("samples", n):
            rep.errors.append(f"{name}: {n} samples, manifest says {info['samples']}")
    rep.errors += [f"{k}: in the manifest but in no shard" for k in keys if k not in seen]
    rep.errors += [f"{k}: in shard {v} but not in the manifest" for k, v in seen.items() if k not in manifest["cases"]]
    if tiles:
        rep.preview = str(save_preview(tiles, Path(preview) if preview else folder / "preview.png"))
    return rep


def verify_main(folder: str, preview: str | None, n_preview: int, seed: int,
                max_member_bytes: int = MAX_MEMBER_BYTES) -> int:
    """CLI body: print a JSON summary (errors on stderr); 1 when any check fails."""
    import sys

    rep = verify_shards(folder, preview=preview, n_preview=n_preview, seed=seed, max_member_bytes=max_member_bytes)
    for err in rep.errors[:200]:
        print(f"error: {err}", file=sys.stderr)
    print(json.dumps(rep.to_dict()))
    return 0 if rep.ok else 1
