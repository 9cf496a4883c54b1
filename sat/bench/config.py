"""Typed benchmark profiles; the numbers live in ``configs/benchmark/*.yaml``.

``sat benchmark phantom --profile quick`` reads ``configs/benchmark/phantom_quick.yaml`` into a
:class:`PhantomProfile`; ``sat benchmark speed --profile full`` reads ``speed_full.yaml`` into a
:class:`SpeedProfile`. A profile may also be given as a YAML path. Relative paths inside a profile
(configs, weights, work and results folders) are resolved against the repository root when used;
paths given on the command line are taken as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sat.errors import InputError
from sat.resources import checkout_root, configs_dir
from sat.yaml_io import read_config

TABLE_SOURCES = ("onehot", "minilm", "knowledge")
PRECISIONS = ("bf16-mixed", "32-true")


def repo_root() -> Path:
    """The source checkout, else the working directory (where results and work folders go)."""
    return checkout_root() or Path.cwd()


def config_dir() -> Path:
    """``configs/benchmark``, packaged or of the checkout (:mod:`sat.resources`)."""
    return configs_dir("benchmark")


def resolve_path(path: str | Path) -> Path:
    """A profile path: absolute as given, relative ones against the repository root."""
    p = Path(path)
    return p if p.is_absolute() else repo_root() / p


@dataclass
class PhantomProfile:
    """Everything the phantom benchmark runs with (no other constants decide its numbers).

    Attributes:
        name: profile name (shown in the report).
        seed: phantom generation, training and sampling seed.
        cases: phantom cases over the three sources (each source holds out 20 %, at least one).
        spacing_scale: phantom voxel-size multiplier (3 gives tiny volumes); shards use the recipes' grid.
        shard_workers: processes building shards.
        threads: torch CPU threads for training and inference.
        loader_workers: data-loader worker processes while training.
        steps: training steps of each universal model; each of the three specialists gets ``steps / 3``.
        batch_size: crops per step (universal and specialists alike).
        patch_size: crop size in voxels at the recipes' spacing.
        lr, warmup_steps: AdamW peak learning rate and linear warm-up, then cosine decay over the
            step budget (both model families).
        precision: ``bf16-mixed`` (CPU/GPU autocast) or ``32-true``, for both model families.
        base_config: LightningCLI experiment the universal models start from.
        fit_overrides: extra LightningCLI ``key: value`` overrides for the universal models
            (e.g. the architecture), applied after the fields above.
        specialist_features: MONAI BasicUNet ``features`` (six widths) of every specialist.
        table_sources: concept tables to train universal models with (text-side ablation):
            ``onehot``, ``minilm`` (raw encoder), ``knowledge`` (knowledge-pretrained encoder).
        universal_table: the table of the study-1 universal model (falls back to ``minilm`` when
            its row is skipped).
        knowledge_weights: knowledge-pretrained encoder weights (``sat text-fit`` output).
        text_fit_config: ``sat text-fit`` config used when ``knowledge_weights`` is missing.
        text_fit_steps: text-fit steps run when ``knowledge_weights`` is missing; 0 skips the
            knowledge row instead (the report says why).
        text_fit_calibrate: calibrate the resolver threshold after that text-fit.
        paraphrase_templates: templated paraphrases; ``{name}`` is the canonical name,
            ``{modality}`` the case's modality.
        modality_template: the modality-qualified prompt, e.g. ``"{name} on {modality}"``.
        work_dir: phantoms, shards and checkpoints (outside the results folder).
        results_dir: where ``phantom_benchmark.md`` and its folder are written.
    """

    name: str = "custom"
    seed: int = 0
    cases: int = 60
    spacing_scale: float = 1.0
    shard_workers: int = 2
    threads: int = 1
    loader_workers: int = 1
    steps: int = 900
    batch_size: int = 2
    patch_size: tuple[int, int, int] = (48, 48, 48)
    lr: float = 3e-3
    warmup_steps: int = 50
    precision: str = "bf16-mixed"
    base_config: str = "configs/experiment/phantom_demo.yaml"
    fit_overrides: dict[str, Any] = field(default_factory=dict)
    specialist_features: tuple[int, ...] = (8, 16, 32, 64, 128, 16)
    table_sources: tuple[str, ...] = TABLE_SOURCES
    universal_table: str = "knowledge"
    knowledge_weights: str = "outputs/text/knowledge_minilm.safetensors"
    text_fit_config: str = "configs/text/knowledge.yaml"
    text_fit_steps: int = 0
    text_fit_calibrate: bool = True
    paraphrase_templates: tuple[str, ...] = ("the {name} in this {modality} scan", "segment the {name}")
    modality_template: str = "{name} on {modality}"
    work_dir: str = "outputs/benchmark/phantom"
    results_dir: str = "docs/results"

    def __post_init__(self) -> None:
        bad = [s for s in self.table_sources if s not in TABLE_SOURCES]
        if bad or not self.table_sources:
            raise InputError(f"table_sources {list(self.table_sources)!r}: expected some of {list(TABLE_SOURCES)}")
        if self.universal_table not in self.table_sources:
            raise InputError(f"universal_table {self.universal_table!r} is not in table_sources "
                             f"{list(self.table_sources)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r}: expected one of {list(PRECISIONS)}")
        if self.steps < 3:
            raise InputError(f"steps must be >= 3 (one per specialist), got {self.steps}")
        if len(self.specialist_features) != 6:
            raise InputError(f"specialist_features needs six widths (MONAI BasicUNet), got "
                             f"{list(self.specialist_features)}")

    @property
    def specialist_steps(self) -> int:
        """Steps of each of the three specialists: together the universal model's budget."""
        return self.steps // 3


@dataclass
class SpeedProfile:
    """Sizes of ``sat benchmark speed``.

    Attributes:
        name: profile name. threads: torch CPU threads for the in-process parts.
        checkpoint: a trained checkpoint to time (e.g. ``outputs/demo/model.ckpt``); when it is unset
            or missing, a random-weight model of ``checkpoint_preset`` is timed instead.
        checkpoint_preset: :func:`sat.bench.segment_speed.build_random_checkpoint` preset of the timed model.
        prompt_counts: prompts per call for the prompt-scaling table.
        prompt_shape, prompt_spacing: synthetic CT used for the prompt-scaling table.
        volume_sizes: ``[X, Y, Z, sx, sy, sz]`` synthetic CTs for the volume-size table.
        size_prompts: prompts per call in the volume-size table. repeats: timings per cell (median).
        variants: model variants (``configs/model``) to time; empty = all.
        train_patch, train_steps: CPU training-step timing (patch raised where a variant needs it).
        overhead_variant, overhead_classes, overhead_patch, overhead_steps: text queries vs BasicUNet.
        data_cases, data_samples, data_patch, data_spacing, data_phantom_scale: shard vs NIfTI+MONAI.
        memory_shape, memory_prompts: peak-memory run (fresh process).
        gpu_patch, gpu_steps: GPU training-step timing (bf16), when CUDA is present.
        results_dir: where ``speed.md`` is written.
    """

    name: str = "custom"
    threads: int = 2
    checkpoint: str | None = None
    checkpoint_preset: str = "demo"
    prompt_counts: tuple[int, ...] = (1, 5, 20, 100)
    prompt_shape: tuple[int, int, int] = (256, 256, 200)
    prompt_spacing: tuple[float, float, float] = (1.5, 1.5, 2.5)
    volume_sizes: tuple[tuple[float, ...], ...] = ((128, 128, 100, 3.0, 3.0, 5.0),
                                                    (256, 256, 200, 1.5, 1.5, 2.5))
    size_prompts: int = 5
    repeats: int = 3
    variants: tuple[str, ...] = ()
    train_patch: int = 32
    train_steps: int = 3
    overhead_variant: str = "nano"
    overhead_classes: int = 16
    overhead_patch: int = 48
    overhead_steps: int = 4
    data_cases: int = 4
    data_samples: int = 12
    data_patch: int = 96
    data_spacing: tuple[float, float, float] = (1.5, 1.5, 3.0)
    data_phantom_scale: float = 0.5
    memory_shape: tuple[int, int, int] = (512, 512, 400)
    memory_prompts: int = 20
    gpu_patch: int = 128
    gpu_steps: int = 5
    results_dir: str = "docs/results"


def load_profile(kind: str, name_or_path: str | Path):
    """Read ``configs/benchmark/<kind>_<name>.yaml`` (or a YAML path) into its dataclass.

    Args:
        kind: ``phantom`` or ``speed``. name_or_path: ``quick``, ``full`` or a YAML file.

    Raises:
        InputError: unknown profile, unreadable YAML or unknown fields.
    """
    from sat.bench.real_profile import RealProfile

    cls = {"phantom": PhantomProfile, "speed": SpeedProfile, "real": RealProfile}.get(kind)
    if cls is None:
        raise InputError(f"unknown benchmark {kind!r}; expected phantom, speed or real")
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir() / f"{kind}_{name_or_path}.yaml"
    if not path.is_file():
        names = sorted(p.stem.split("_", 1)[1] for p in config_dir().glob(f"{kind}_*.yaml"))
        raise InputError(f"unknown {kind} profile {str(name_or_path)!r}; expected a YAML path or one of {names}")
    return read_config(path, cls, f"{kind} profile")
