"""From a validated config to a ready :class:`VideoTrainer` (data, model, initialization).

The parts live by concept in :mod:`~opplan.engine.data_build` (dataset root, transform,
dataset options), :mod:`~opplan.engine.model_init` (the initialization and checkpoint
models) and :mod:`~opplan.engine.decoded_cache`; they are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

from opplan.config import VideoTrainerConfig
from opplan.engine.data import (
    class_names,
    load_lists,
    missing_videos,
    planning_split,
    read_split,
)
from opplan.engine.data_build import dataset_options, ensure_dataset, transform_config
from opplan.engine.decoded_cache import DecodedCache
from opplan.engine.distributed import DistributedContext
from opplan.engine.evaluate import EvalResult, evaluate_views
from opplan.engine.modality import modality_model
from opplan.engine.model_init import checkpoint_model, make_model_factory
from opplan.engine.performance import PerformanceSettings
from opplan.engine.settings import OptimSettings
from opplan.engine.state_axes import state_transform
from opplan.engine.trainer import VideoTrainer
from opplan.errors import ConfigError
from opplan.planning import TrainingState
from opplan.video import DataHealth, check_clip_length

__all__ = [
    "DecodedCache",
    "build_video_trainer",
    "checkpoint_model",
    "class_names",
    "dataset_options",
    "ensure_dataset",
    "evaluate_checkpoint",
    "load_lists",
    "make_model_factory",
    "planning_split",
    "read_split",
    "resolve_device",
    "transform_config",
]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device: cuda requested but no GPU is available")
    return torch.device(device)


def _silent(message: str) -> None:
    pass


def build_video_trainer(
    config: VideoTrainerConfig,
    run_dir: str | Path,
    log: Callable[[str], None] = print,
    purpose: Literal["plan", "train"] = "plan",
    strict: bool = False,
    clip_length: int | None = None,
    dist: DistributedContext | None = None,
) -> VideoTrainer:
    """The trainer for planning (internal split, §5.1) or for training a recipe (the whole
    training list, scored on the original validation list). ``strict``: stop at the first
    unreadable video instead of replacing it (``--strict``). ``clip_length``: the longest
    clip the run samples; refused when it is longer than every training video. ``dist``:
    the torchrun process group of a data-parallel run (rank 0 generates a synthetic
    dataset while the other ranks wait; each rank trains on ``dist.device``)."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    dist = dist or DistributedContext()
    if not dist.is_main:
        log = _silent  # rank 0 reports
    if dist.is_main:
        ensure_dataset(config.data, log)
    dist.barrier()
    if not dist.is_main:
        ensure_dataset(config.data, log)
    missing = missing_videos(config.data)
    if missing:
        log(
            f"data: {len(missing)} listed videos are missing from the download, left out "
            f"(data.missing: skip; listed in RUN/data_health.json), e.g. {missing[0]}"
        )
    if purpose == "plan":
        plan_train, plan_val, num_classes = planning_split(config.data, config.seed)
        names = "internal validation"
    else:
        plan_train, num_classes = load_lists(config.data, "train")
        plan_val = load_lists(config.data, "val")[0]
        names = "original validation"
    if clip_length is not None:
        where = f"data.train_list ({Path(config.data.root) / config.data.train_list})"
        what = "graph.clip_lengths: clip length" if purpose == "plan" else "recipe: clip length"
        check_clip_length(plan_train, clip_length, where=where, what=what)
    log(
        f"data: {len(plan_train)} training / {len(plan_val)} {names} videos, "
        f"{num_classes} classes; model {config.model.name}"
    )
    optim = OptimSettings(**config.optim.model_dump())
    performance = PerformanceSettings(
        precision=config.precision,
        channels_last=config.channels_last,
        compile=config.compile,
        compile_cache=Path(run_dir) / "compile_cache",
        sync_bn=config.sync_bn,
        cudnn_benchmark=config.cudnn_benchmark,
    )
    trainer = VideoTrainer(
        model_factory=make_model_factory(
            modality_model(config.model, config.data), num_classes, log
        ),
        train_records=plan_train,
        val_records=plan_val,
        checkpoint_dir=Path(run_dir) / "checkpoints",
        transform=transform_config(config.data),
        optim=optim,
        seed=config.seed,
        device=dist.device if dist.enabled else resolve_device(config.device),
        num_workers=config.data.num_workers,
        persistent_workers=config.data.persistent_workers,
        prefetch_factor=config.data.prefetch_factor,
        eval_batch=config.eval_batch,
        metric=config.metric,
        dataset_options=dataset_options(config.data),
        health=DataHealth(
            run_dir,
            max_bad_fraction=config.data.max_bad_fraction,
            strict=strict,
            missing=missing,
        ),
        dist=dist,
        performance=performance,
        log=log,
    )
    if clip_length is not None:  # a micro-batch that cannot fit: refused now, not mid-plan
        trainer.check_memory(clip_length)
    return trainer


def evaluate_checkpoint(
    config: VideoTrainerConfig,
    checkpoint: dict[str, Any],
    views: tuple[int, int] = (10, 3),
    split: str = "test",
    *,
    strict: bool = False,
    health_file: str | Path | None = None,
    source: str = "--checkpoint",
) -> tuple[TrainingState, EvalResult]:
    """The final protocol (§5.2: clips × crops, softmax-averaged) of a loaded checkpoint on
    ``split``, in the checkpoint's sampling, clip length and size. Unreadable videos are excluded
    and reported (``health_file``), fatal with ``strict`` or past ``data.max_bad_fraction``;
    ``source`` names the checkpoint in errors."""
    ensure_dataset(config.data)
    records, num_classes = load_lists(config.data, split)
    absent = read_split(config.data, split).missing  # kept in the test list: reported
    state, model = checkpoint_model(
        modality_model(config.model, config.data), checkpoint, num_classes, source
    )
    result = evaluate_views(
        model,
        records,
        sampling=state.sampling,
        clip_length=state.clip_length,
        num_classes=num_classes,
        views=views,
        transform=state_transform(transform_config(config.data), state),  # its size, if any
        batch_size=config.eval_batch,
        num_workers=config.data.num_workers,
        device=resolve_device(config.device),
        dataset_options=dataset_options(config.data),
        strict=strict,
        max_bad_fraction=config.data.max_bad_fraction,
        health_file=health_file,
        class_names=class_names(config.data),
        absent=absent,
    )
    return state, result
