"""Late fusion of two-stream scores (§5.5, Table 7: RGB + flow): a weighted mean of the
per-video softmax scores that ``opplan evaluate`` writes (``OUT.scores.npz``).

The two files must hold the same videos. An RGB list names ``videos/a/0001.mp4`` and its
flow copy ``/data/flow/videos/a/0001``, so a video is known by its path without the file
suffix, compared on the fewest trailing path parts that tell every video of each file apart.
A video excluded (unreadable, NaN scores) in either file is excluded from the fusion.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import torch

from opplan.engine.evaluate import EvalResult, read_scores, scores_path
from opplan.engine.metrics import topk_correct
from opplan.errors import ConfigError

__all__ = ["ScoreFile", "fuse_scores", "load_score_file", "search_weight", "video_keys"]

_REQUIRED = ("paths", "labels", "scores")


@dataclass(frozen=True)
class ScoreFile:
    """One ``scores.npz``: its rows, in the list's order."""

    path: str
    paths: tuple[str, ...]
    labels: np.ndarray  # int64 [V]
    scores: np.ndarray  # float32 [V, classes], NaN rows: excluded
    views: tuple[int, int]
    class_names: list[str] | None


def load_score_file(path: str | os.PathLike[str]) -> ScoreFile:
    """Read an ``OUT.scores.npz``; a missing file or array is a ConfigError naming it."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ConfigError(f"{name}: scores file not found")
    if not zipfile.is_zipfile(name):  # numpy would try it as a pickle and say so
        beside = scores_path(name)
        hint = (
            f"; its scores are in {beside}" if name.endswith(".json") and beside.is_file() else ""
        )
        raise ConfigError(
            f"{name}: not a scores file of `opplan evaluate` (not an .npz archive{hint})"
        )
    try:
        arrays = read_scores(name)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{name}: not a scores file of `opplan evaluate`: {err}") from None
    absent = [key for key in _REQUIRED if key not in arrays]
    if absent:
        raise ConfigError(f"{name}: not a scores file of `opplan evaluate` (no {absent[0]!r})")
    scores = np.asarray(arrays["scores"], dtype=np.float32)
    if scores.ndim != 2 or scores.shape[0] != len(arrays["paths"]):
        raise ConfigError(
            f"{name}: scores {scores.shape} do not match {len(arrays['paths'])} paths"
        )
    views = tuple(int(v) for v in arrays.get("views", np.array([1, 1])))
    names = arrays.get("class_names")
    return ScoreFile(
        path=name,
        paths=tuple(str(p) for p in arrays["paths"]),
        labels=np.asarray(arrays["labels"], dtype=np.int64),
        scores=scores,
        views=(views[0], views[1]),
        class_names=None if names is None else [str(n) for n in names],
    )


def _stem_parts(path: str) -> tuple[str, ...]:
    pure = PurePath(path)
    if pure.suffix and len(pure.suffix) <= 6:  # .mp4, .webm: a file; a flow copy is a folder
        pure = pure.with_suffix("")
    return pure.parts


def video_keys(*files: Sequence[str]) -> list[list[str]]:
    """Each path's key: its last k parts (suffix dropped), the smallest k that keeps the
    videos of every file apart."""
    parts = [[_stem_parts(p) for p in paths] for paths in files]
    longest = max((len(p) for group in parts for p in group), default=1)
    for k in range(1, longest + 1):
        keys = [["/".join(p[-k:]) for p in group] for group in parts]
        if all(len(set(group)) == len(group) for group in keys):
            return keys
    raise ConfigError("a scores file lists the same video twice")


def _aligned(a: ScoreFile, b: ScoreFile) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``b`` in ``a``'s order; refuses another video set, labels or class count."""
    keys_a, keys_b = video_keys(a.paths, b.paths)
    where_b = {key: row for row, key in enumerate(keys_b)}
    for source, keys, other in ((a, keys_a, b), (b, keys_b, a)):
        known = set(keys_b if source is a else keys_a)
        for row, key in enumerate(keys):
            if key not in known:
                raise ConfigError(
                    f"{other.path}: video {source.paths[row]!r} of {source.path} is missing "
                    f"(the two files must score the same videos; {len(a.paths)} vs "
                    f"{len(b.paths)})"
                )
    if a.scores.shape[1] != b.scores.shape[1]:
        raise ConfigError(
            f"{b.path}: {b.scores.shape[1]} classes, {a.path} has {a.scores.shape[1]}"
        )
    order = np.array([where_b[key] for key in keys_a], dtype=np.int64)
    differ = np.flatnonzero(a.labels != b.labels[order])
    if differ.size:
        row = int(differ[0])
        raise ConfigError(
            f"{b.path}: video {a.paths[row]!r} has label {int(b.labels[order][row])}, "
            f"{a.path} says {int(a.labels[row])}"
        )
    return np.arange(len(a.paths)), order


def fuse_scores(files: Sequence[ScoreFile], weights: Sequence[float] | None = None) -> EvalResult:
    """The weighted mean of the files' scores (default: equal weights) and its top-1, top-5,
    per-class accuracy and confusion matrix, over the videos readable in every file."""
    if len(files) < 2:
        raise ConfigError("fusion needs at least two scores files")
    weights = [1.0] * len(files) if weights is None else [float(w) for w in weights]
    if len(weights) != len(files):
        raise ConfigError(f"--weights: {len(weights)} values for {len(files)} scores files")
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"--weights: must be >= 0 with a positive sum, got {weights}")
    base = files[0]
    total = np.zeros_like(base.scores, dtype=np.float64)
    for weight, other in zip(weights, files, strict=True):
        _, order = _aligned(base, other)
        total += weight * other.scores[order].astype(np.float64)
    scores = torch.from_numpy((total / sum(weights)).astype(np.float32))
    readable = ~torch.isnan(scores).any(dim=1)
    labels = torch.from_numpy(base.labels)
    good, good_labels = scores[readable], labels[readable]
    n, classes = int(readable.sum()), scores.shape[1]
    top1, top5 = topk_correct(good, good_labels, (1, min(5, classes))) if n else (0, 0)
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    if n:
        confusion.index_put_((good_labels, good.argmax(dim=1)), torch.ones_like(good_labels),
                             accumulate=True)  # fmt: skip
    per_class = [float(confusion[c, c]) / float(row.sum()) if row.sum() > 0 else None
                 for c, row in enumerate(confusion)]  # fmt: skip
    excluded = {base.paths[i]: "excluded in a fused scores file"
                for i in np.flatnonzero(~readable.numpy())}  # fmt: skip
    return EvalResult(
        top1=top1 / max(n, 1),
        top5=top5 / max(n, 1),
        num_videos=n,
        views=base.views,
        per_class_accuracy=per_class,
        confusion=confusion.tolist(),
        video_scores=scores,
        labels=labels,
        readable=readable,
        paths=base.paths,
        excluded=excluded,
        class_names=base.class_names,
    )


def search_weight(
    a: ScoreFile, b: ScoreFile, grid: Sequence[float] | None = None
) -> tuple[float, float]:
    """The weight of ``b`` (``a`` weighs 1) with the best fused top-1 on ``a``/``b`` (scores
    of a split other than the test's); ties go to the weight nearest 1. Returns (weight,
    top-1)."""
    grid = list(grid) if grid is not None else [0.25 * k for k in range(0, 17)]  # 0 .. 4
    results = [(fuse_scores([a, b], [1.0, w]).top1, -abs(np.log2(w)) if w else -99.0, w)
               for w in grid]  # fmt: skip
    top1, _, weight = max(results)
    return weight, top1
