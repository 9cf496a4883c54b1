"""The shard manifest: what a shard folder holds, merged over build parts.

``manifest.json`` has:

* ``datasets``: name -> spacing, channels, splits, recipe licence note;
* ``cases``: sample key -> case id, dataset, split, shard file, shape, present concepts;
* ``concepts``: concept id -> ``annotated`` (cases), ``present`` (cases), ``ml`` (total volume);
* ``failures``: ``dataset/case`` -> reason;
* ``shards``: tar file -> sha256, bytes, samples;
* ``n_cases``, ``n_failures``, ``parts`` (finished part files).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sat.atomic import write_text_atomic
from sat.data.recipes import Recipe

MANIFEST = "manifest.json"
FORMAT = "sat-shards/2"  # shard folders whose samples are sat-sample/2 (code maps)
LABELS = "codes+occupancy"  # parts whose samples also hold the occupancy band (soft targets)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rule_record(recipe: Recipe) -> dict | None:
    """The intensity rule a recipe's shards are normalised with, as recorded in build parts."""
    rule = recipe.intensity_rule()
    return asdict(rule) if rule is not None else None


def new_part(recipe: Recipe, split: str | None, part: int, num_parts: int, spacing) -> dict:
    """An empty record of one build part."""
    return {"format": FORMAT, "dataset": recipe.name, "split": split, "part": part,
            "num_parts": num_parts, "spacing": list(spacing), "channels": recipe.channels,
            "intensity": rule_record(recipe), "labels": LABELS,
            "license": recipe.license, "cases": {}, "failures": {}, "concepts": {}, "shards": {}}


def add_sample(part: dict, sample: dict, shard: str) -> None:
    """Account one written sample (its ``json`` metadata) in a part record."""
    meta = json.loads(sample["json"])
    vox_ml = float(np.prod(meta["spacing"])) / 1000.0
    part["cases"][sample["__key__"]] = {
        "case_id": meta["case_id"], "dataset": meta["dataset"], "split": meta.get("split"),
        "shard": shard, "shape": meta["shape"],
        "present": [c for c, p in zip(meta["concepts"], meta["present"]) if p]}
    for cid, n, present in zip(meta["concepts"], meta["voxels"], meta["present"]):
        entry = part["concepts"].setdefault(cid, {"annotated": 0, "present": 0, "ml": 0.0})
        entry["annotated"] += 1
        entry["present"] += int(present)
        entry["ml"] = round(entry["ml"] + n * vox_ml, 4)


def write_manifest(out: Path) -> dict:
    """Merge every finished part (``*.done.json``) in ``out`` into ``manifest.json`` (atomically)."""
    manifest: dict = {"format": FORMAT, "parts": [], "datasets": {}, "n_cases": 0, "n_failures": 0,
                      "cases": {}, "failures": {}, "concepts": {}, "shards": {}}
    for done in sorted(Path(out).glob("*.done.json")):
        part = json.loads(done.read_text())
        name = part["dataset"]
        manifest["parts"].append(done.name)
        ds = manifest["datasets"].setdefault(name, {"spacing": part["spacing"], "channels": part["channels"],
                                                    "license": part.get("license", ""), "splits": []})
        if part["split"] not in ds["splits"]:
            ds["splits"].append(part["split"])
        manifest["cases"].update(part["cases"])
        manifest["failures"].update({f"{name}/{k}": v for k, v in part["failures"].items()})
        manifest["shards"].update(part["shards"])
        for cid, e in part["concepts"].items():
            m = manifest["concepts"].setdefault(cid, {"annotated": 0, "present": 0, "ml": 0.0})
            m["annotated"] += e["annotated"]
            m["present"] += e["present"]
            m["ml"] = round(m["ml"] + e["ml"], 4)
    manifest["n_cases"] = len(manifest["cases"])
    manifest["n_failures"] = len(manifest["failures"])
    write_text_atomic(Path(out) / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: Path) -> dict:
    """The manifest of a shard folder; ``FileNotFoundError`` naming the folder if absent."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {MANIFEST} (build the shards with `sat shards build`)")
    return json.loads(path.read_text())
