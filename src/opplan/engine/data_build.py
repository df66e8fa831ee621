"""The data side of a video trainer: the dataset root (a synthetic one generated on first
use), the transform and the clip dataset's options of a :class:`DataConfig`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opplan.config import DataConfig
from opplan.engine.decoded_cache import DecodedCache
from opplan.errors import ConfigError
from opplan.video import TransformConfig

__all__ = ["dataset_options", "ensure_dataset", "transform_config"]


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
