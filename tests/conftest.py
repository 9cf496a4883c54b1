"""Shared fixtures: tiny phantoms, a tiny random-weight checkpoint, the real CT sample path."""
from __future__ import annotations

import locale
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO.parent / "shared" / "samples" / "totalseg_ct"
PHANTOM_CONCEPTS = ["body", "liver", "spleen", "kidney_left", "kidney_right", "stomach", "pancreas",
                    "aorta", "inferior_vena_cava", "vertebral_column", "lung_left", "lung_right", "heart",
                    "urinary_bladder", "gallbladder", "liver_tumor", "kidney_cyst", "kidneys", "lungs"]


@pytest.fixture(scope="session", autouse=True)
def _hermetic_cache(tmp_path_factory):
    """Concept-embedding caches live in a per-session folder unless the caller chose one."""
    if "SAT_CACHE_DIR" not in os.environ:
        os.environ["SAT_CACHE_DIR"] = str(tmp_path_factory.mktemp("sat_cache"))
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield


@pytest.fixture(autouse=True)
def _keep_locale():
    """Undo a locale switch made inside a test: SimpleITK's DICOM *writer* (GDCM), which tests use
    to make series, sets LC_CTYPE to "C", and every later default-encoding read or write in the
    process becomes ASCII. The project's own readers leave the locale alone (checked)."""
    before = locale.setlocale(locale.LC_CTYPE)
    yield
    if locale.setlocale(locale.LC_CTYPE) != before:
        locale.setlocale(locale.LC_CTYPE, before)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE_DIR / "ct.nii.gz").exists():
        pytest.skip(f"real CT sample not found at {SAMPLE_DIR}")
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def tiny_phantoms(tmp_path_factory) -> Path:
    """Nine small phantom cases (three per source) at coarse spacing."""
    from sat.data.phantoms.generate import PhantomConfig, generate_phantoms

    out = tmp_path_factory.mktemp("phantoms")
    generate_phantoms(out, 9, 0, PhantomConfig(spacing_scale=3.0))
    return out


def tiny_model_config():
    from sat.model.config import BackboneConfig, HeadConfig, ModelConfig

    return ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16, 32), out_channels=8),
                       head=HeadConfig(d_model=32, layers=1, heads=2))


@pytest.fixture(scope="session")
def concept_table():
    """(ids, embeddings) of every tree concept from the default MiniLM encoder (cached)."""
    from sat.knowledge.tree import load_tree
    from sat.text.cache import term_table
    from sat.text.encoder import TextEncoderSpec

    ids, _, emb = term_table(load_tree(), TextEncoderSpec(), kind="names")
    return ids, emb


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, concept_table) -> Path:
    """A random-weight tiny model checkpoint 'trained' on the phantom concepts (for geometry/API tests)."""
    import torch

    from sat.volume.preprocess import PreprocessSpec
    from sat.knowledge.tree import load_tree
    from sat.model.builder import build_model
    from sat.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = tiny_model_config()
    ids, emb = concept_table
    net = build_model(cfg, ids, emb)
    # the real head starts from a uniform background prior (zero mask embedding); a random one gives
    # the geometry and API tests non-empty, prompt-dependent masks to check
    torch.nn.init.normal_(net.head.mask_embed[-1].weight, std=0.5)
    torch.nn.init.constant_(net.head.bias, 0.0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    return save_checkpoint(path, net, model_cfg=cfg, text_spec={"backend": "minilm"},
                           tree_hash=load_tree().hash, preprocess=PreprocessSpec(spacing=(8.0, 8.0, 8.0)).to_dict(),
                           trained_concepts=PHANTOM_CONCEPTS, extra={"patch_size": [32, 32, 32]}, tree=load_tree())
