"""From a validated config to a ready :class:`VideoTrainer` (data, model, initialization)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from opplan.config import DataConfig, ModelConfig, VideoTrainerConfig
from opplan.engine.data import (
    class_names,
    load_lists,
    missing_videos,
    planning_split,
    read_split,
)
from opplan.engine.distributed import DistributedContext
from opplan.engine.evaluate import EvalResult, evaluate_views
from opplan.engine.modality import modality_model
from opplan.engine.performance import PerformanceSettings
from opplan.engine.settings import OptimSettings
from opplan.engine.trainer import VideoTrainer
from opplan.errors import ConfigError
from opplan.models import build_model, fit_weights, load_weights, read_weights
from opplan.models.foreign import unwrap
from opplan.planning import TrainingState
from opplan.video import (
    ArrayReader,
    DataHealth,
    TransformConfig,
    VideoReader,
    VideoRecord,
    check_clip_length,
    open_video,
)

__all__ = [
    "build_video_trainer",
    "checkpoint_model",
    "class_names",
    "evaluate_checkpoint",
    "load_lists",
    "make_model_factory",
    "planning_split",
    "read_split",
    "resolve_device",
]


def ensure_dataset(data: DataConfig, log: Callable[[str], None] = print) -> Path:
    """The dataset root; a configured synthetic dataset is generated there if missing."""
    root = Path(data.root)
    manifest = root / "manifest.json"
    if data.synthetic is not None and manifest.is_file():
        _check_manifest(data, json.loads(manifest.read_text()))
    if data.synthetic is not None and not (root / data.train_list).exists():
        from opplan.video.synthetic import generate_dataset

        syn = data.synthetic
        log(f"generating the synthetic '{syn.task}' dataset in {root} (seed {syn.seed})")
        generate_dataset(
            syn.task,
            root,
            videos_per_class=syn.videos_per_class,
            seed=syn.seed,
            size=syn.size,
            min_frames=syn.min_frames,
            max_frames=syn.max_frames,
        )
    if not (root / data.train_list).exists():
        raise ConfigError(f"data.train_list: {root / data.train_list} not found")
    return root


def _check_manifest(data: DataConfig, manifest: dict[str, Any]) -> None:
    """A synthetic dataset already in ``data.root`` must be the one the config describes."""
    assert data.synthetic is not None
    syn = data.synthetic
    scene = manifest.get("scene", {})
    found = {
        "task": manifest.get("task"),
        "seed": manifest.get("seed"),
        "videos_per_class": manifest.get("videos_per_class"),
        "size": scene.get("size"),
        "min_frames": scene.get("min_frames"),
        "max_frames": scene.get("max_frames"),
    }
    for key, value in found.items():
        if value != getattr(syn, key):
            raise ConfigError(
                f"data.synthetic.{key}: {data.root} holds a dataset generated with "
                f"{key}={value!r}, the config asks for {getattr(syn, key)!r}; delete "
                f"{data.root} or choose another data.root"
            )


def transform_config(data: DataConfig) -> TransformConfig:
    from opplan.engine.modality import modality_transform

    if data.frame_size is not None:
        return modality_transform(data, TransformConfig.scaled(data.frame_size, flip=data.flip))
    return modality_transform(data, TransformConfig(flip=data.flip))


def make_model_factory(
    model: ModelConfig, num_classes: int, log: Callable[[str], None] | None = None
) -> Callable[[], nn.Module]:
    """A factory of the initialization: random, inflated ImageNet weights, or a video model
    (a checkpoint of opplan, PySlowFast, MMAction2 or torchvision, checked here to fit)."""
    kind, _, path = model.init.partition(":")
    if kind not in ("random", "imagenet", "checkpoint") or (kind != "random") != bool(path):
        raise ConfigError(
            "model.init must be 'random', 'imagenet:PATH' or 'checkpoint:PATH', "
            f"got {model.init!r}"
        )
    if path and not Path(path).is_file():
        raise ConfigError(f"model.init: {path} not found")
    if kind == "imagenet":
        from opplan.models.inflate import load_2d_state_dict

        try:
            load_2d_state_dict(path)
        except ConfigError as err:
            raise ConfigError(f"model.init: {err}") from None
    net = build_model(model.name, num_classes, **model.options)  # fail fast on a bad name
    if kind == "checkpoint":  # fail fast on an unreadable, unsafe or ill-fitting checkpoint
        try:
            _, fit = fit_weights(net, read_weights(path), name=model.name)
        except ConfigError as err:
            raise ConfigError(f"model.init: {err}") from None
        if log is not None:
            log(f"model.init: {path}: {fit.summary()}")

    def factory() -> nn.Module:
        net = build_model(model.name, num_classes, **model.options)
        if kind == "imagenet":
            from opplan.models import inflate_from_2d

            inflate_from_2d(net, path)
        elif kind == "checkpoint":  # another class count: new classifier (§5.5)
            load_weights(net, path, name=model.name)
        return net

    return factory


def checkpoint_model(
    model: ModelConfig, checkpoint: dict[str, Any], num_classes: int
) -> tuple[TrainingState, nn.Module]:
    """The training state and network of a checkpoint opplan wrote (``opplan evaluate``).

    The state (sampling, clip length) sets the test protocol, so a checkpoint without one (a
    bare state dict, PySlowFast, MMAction2) is refused: fine-tune from it with ``model.init:
    checkpoint:PATH`` instead. Another network or class count is refused naming the keys."""
    weights = unwrap(checkpoint, "--checkpoint")
    text = weights.extra.get("state")
    if weights.layout != "opplan" or text is None:
        raise ConfigError(
            f"--checkpoint: a {weights.layout} checkpoint without opplan's training 'state' "
            "(the sampling and clip length to test in); evaluate a model opplan trained "
            "(RUN/final/model.pt), or fine-tune from this one with model.init: checkpoint:PATH"
        )
    try:
        state = TrainingState.parse(text if isinstance(text, str) else repr(text))
    except ValueError as err:
        raise ConfigError(f"--checkpoint: its 'state': {err}") from None
    if state.is_initial:
        raise ConfigError("--checkpoint: its 'state' is 'initial', not a trained state")
    net = build_model(model.name, num_classes, **model.options)
    load_weights(net, weights, new_classifier=False, name=model.name)
    return state, net


class DecodedCache:
    """Reader factory that decodes each video once and keeps its frames in memory.

    For small datasets (the synthetic ones, ~30 MB) where decoding would dominate an epoch.
    Each DataLoader worker fills its own copy.
    """

    def __init__(
        self, backend: str = "auto", frame_template: str = "img_{:05d}.jpg", start: int = 1
    ) -> None:
        self.backend = backend
        self.frame_template, self.frame_start_index = frame_template, start
        self._frames: dict[str, np.ndarray] = {}

    def __call__(self, record: VideoRecord) -> VideoReader:
        if record.path not in self._frames:
            with open_video(
                record.path,
                backend=self.backend,  # type: ignore[arg-type]
                num_frames=record.num_frames,
                frame_template=self.frame_template,
                frame_start_index=self.frame_start_index,
            ) as reader:
                self._frames[record.path] = reader.get_frames(np.arange(reader.num_frames))
        return ArrayReader(self._frames[record.path], path=record.path)


def dataset_options(data: DataConfig) -> dict[str, Any]:
    options: dict[str, Any] = {
        "frame_interval": data.frame_interval,
        "backend": data.backend,
        "frame_template": data.frame_template,
        "frame_start_index": data.frame_start_index,
    }
    if data.cache == "memory":
        options["reader_factory"] = DecodedCache(
            data.backend, data.frame_template, data.frame_start_index
        )
    from opplan.engine.modality import flow_dataset_options

    return flow_dataset_options(data, options)  # flow folders: their own reader


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
) -> tuple[TrainingState, EvalResult]:
    """The final protocol (§5.2: clips × crops, softmax-averaged) of a loaded checkpoint on
    ``split``, in the checkpoint's sampling and clip length. Unreadable videos are excluded
    and reported (``health_file``), fatal with ``strict`` or past ``data.max_bad_fraction``."""
    ensure_dataset(config.data)
    records, num_classes = load_lists(config.data, split)
    absent = read_split(config.data, split).missing  # kept in the test list: reported
    state, model = checkpoint_model(
        modality_model(config.model, config.data), checkpoint, num_classes
    )
    result = evaluate_views(
        model,
        records,
        sampling=state.sampling,
        clip_length=state.clip_length,
        num_classes=num_classes,
        views=views,
        transform=transform_config(config.data),
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
