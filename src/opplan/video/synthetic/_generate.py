"""Generating a whole synthetic dataset: mp4 files plus train/val/test lists.

The lists use the plain video-list format (``path label``), so the dataset goes through the
same code path as any user's dataset (§5.1 of the paper describes the real ones).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from opplan.errors import ConfigError
from opplan.video.synthetic import _order, _relay, _tempo
from opplan.video.synthetic._scene import SceneConfig
from opplan.video.synthetic._writer import write_mp4

__all__ = ["TASKS", "SyntheticTask", "generate_dataset", "render_video"]

SyntheticTask = Literal["order", "tempo", "relay"]

_RENDER: dict[str, Callable[[np.random.Generator, SceneConfig, int], np.ndarray]] = {
    "order": _order.render_order,
    "tempo": _tempo.render_tempo,
    "relay": _relay.render_relay,
}
_NAMES: dict[str, Callable[[int], str]] = {
    "order": _order.class_name,
    "tempo": _tempo.class_name,
    "relay": _relay.class_name,
}
TASKS: dict[str, int] = {
    "order": len(_order.ORDER_CLASSES),
    "tempo": len(_tempo.TEMPO_CLASSES),
    "relay": len(_relay.RELAY_CLASSES),
}
_TASK_IDS = {"order": 1, "tempo": 2, "relay": 3}
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Manifest:
    task: str
    seed: int
    videos_per_class: int
    num_classes: int
    scene: dict[str, object]
    fps: int
    splits: dict[str, int]


def render_video(
    task: SyntheticTask, label: int, index: int, *, seed: int = 0, scene: SceneConfig | None = None
) -> np.ndarray:
    """Render video ``index`` of class ``label`` as uint8 (T, H, W, 3).

    Every video has its own random stream derived from (seed, task, label, index), so a video
    does not depend on which other videos are generated, nor in which order.
    """
    if task not in _RENDER:
        raise ConfigError(f"unknown synthetic task {task!r}; choose from {sorted(_RENDER)}")
    if not 0 <= label < TASKS[task]:
        raise ConfigError(f"label {label} out of range for task {task!r} ({TASKS[task]} classes)")
    rng = np.random.default_rng([seed, _TASK_IDS[task], label, index])
    return _RENDER[task](rng, scene or SceneConfig(), label)


def _split_of(index: int, videos_per_class: int, fractions: tuple[float, float]) -> str:
    n_train = max(1, round(videos_per_class * fractions[0]))
    n_val = max(1, round(videos_per_class * fractions[1])) if videos_per_class > 2 else 0
    if index < n_train:
        return "train"
    return "val" if index < n_train + n_val else "test"


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def generate_dataset(
    task: SyntheticTask,
    out: str | os.PathLike[str],
    *,
    videos_per_class: int = 40,
    seed: int = 0,
    size: int = 32,
    min_frames: int = 64,
    max_frames: int = 192,
    fps: int = 25,
    fractions: tuple[float, float] = (0.6, 0.2),
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """Write a synthetic dataset to ``out``.

    Layout: ``out/videos/<class>/<index>.mp4``, ``out/{train,val,test}.txt`` (``path label``,
    paths relative to ``out``), ``out/classes.txt`` and ``out/manifest.json``.

    Args:
        task: ``"order"`` (uniform sampling should win), ``"tempo"`` (consecutive should win)
            or ``"relay"`` (needs both: long clips spread over the video).
        out: output directory (created).
        videos_per_class: videos per class, split into train/val/test by ``fractions``.
        seed: the dataset is a deterministic function of the seed and the options.
        size: frame side in pixels (even).
        min_frames: shortest video.
        max_frames: longest video.
        fps: frame rate written in the files.
        fractions: (train, val) fractions; the rest is the test split.
        progress: called with (done, total) after each video.

    Returns:
        Paths of the train, val and test lists by split name.
    """
    if task not in _RENDER:
        raise ConfigError(f"unknown synthetic task {task!r}; choose from {sorted(_RENDER)}")
    if size % 2 or not 16 <= size <= 256:
        raise ConfigError(f"--size must be an even number in [16, 256], got {size}")
    if videos_per_class < 1:
        raise ConfigError(f"--videos-per-class must be >= 1, got {videos_per_class}")
    if not 8 <= min_frames <= max_frames:
        raise ConfigError(f"need 8 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    scene = SceneConfig(size=size, min_frames=min_frames, max_frames=max_frames)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    num_classes = TASKS[task]
    lines: dict[str, list[str]] = {s: [] for s in _SPLITS}
    total, done = num_classes * videos_per_class, 0
    for label in range(num_classes):
        for index in range(videos_per_class):
            rel = f"videos/{label:02d}_{_NAMES[task](label)}/{index:04d}.mp4"
            frames = render_video(task, label, index, seed=seed, scene=scene)
            write_mp4(root / rel, frames, fps=fps)
            lines[_split_of(index, videos_per_class, fractions)].append(f"{rel} {label}")
            done += 1
            if progress is not None:
                progress(done, total)
    paths = {}
    for split in _SPLITS:
        paths[split] = root / f"{split}.txt"
        _write_text(paths[split], "".join(line + "\n" for line in lines[split]))
    names = "".join(f"{_NAMES[task](c)}\n" for c in range(num_classes))
    _write_text(root / "classes.txt", names)
    manifest = _Manifest(
        task=task,
        seed=seed,
        videos_per_class=videos_per_class,
        num_classes=num_classes,
        scene=asdict(scene),
        fps=fps,
        splits={s: len(v) for s, v in lines.items()},
    )
    _write_text(root / "manifest.json", json.dumps(asdict(manifest), indent=2) + "\n")
    return paths
