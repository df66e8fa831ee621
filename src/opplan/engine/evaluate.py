"""The final test protocol (§5.2): N clips x M crops per video, softmax scores averaged.

Views are separate dataset items, so memory stays at the level of a one-view batch however
many views there are; scores are summed per video batch by batch.

Beyond the paper: an unreadable test video is excluded, never replaced. Its views come from
the dataset flagged (index ``-1 - video``, see :mod:`opplan.video.datasets`) and get no
weight; top-1/top-5, per-class accuracy and the confusion matrix are over the readable
videos, with the excluded ones counted and listed beside them. ``strict=True`` stops at the
first one; more than ``max_bad_fraction`` of the videos excluded stops the test.

:func:`save_evaluation` writes, for a result file ``OUT.json`` (``opplan evaluate --out``):

- ``OUT.json``: top-1, top-5, ``num_videos`` (the readable, scored ones), ``num_excluded``,
  ``excluded`` (``[{"path", "reason"}]``), per-class accuracy, confusion matrix, and the names
  of the two files below;
- ``OUT.scores.npz`` (numpy, loads without pickle): ``paths`` (str, [V], the list's order),
  ``labels`` (int64 [V]), ``scores`` (float32 [V, num_classes], the view-averaged softmax;
  NaN rows for excluded videos), ``readable`` (bool [V]), ``views`` (int64 [clips, crops]),
  and ``class_names`` (str [num_classes]) when known. Every video of the list has its row, so
  the files of several models on one list line up row by row for offline fusion:
  ``np.nanmean`` over models, or the mean over the rows readable in all;
- ``OUT.data_health.json``: the excluded videos and reasons (``bad_files``), counts and the
  budget; named after ``OUT`` so that it never overwrites a training run's
  ``data_health.json`` next to the checkpoint.

Example:
    >>> import numpy as np
    >>> saved = read_scores("eval_test_10x3.scores.npz")  # doctest: +SKIP
    >>> hit = saved["scores"].argmax(1) == saved["labels"]  # doctest: +SKIP
    >>> top1 = hit[saved["readable"]].mean()  # = OUT.json's top1  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from opplan.engine.metrics import topk_correct
from opplan.fileio import atomic_write_bytes, atomic_write_json
from opplan.models import fuse_heads
from opplan.video import (
    DataHealth,
    DataHealthError,
    TransformConfig,
    VideoClipDataset,
    VideoRecord,
)

__all__ = [
    "EvalResult",
    "evaluate_views",
    "health_path",
    "parse_views",
    "read_scores",
    "save_evaluation",
    "scores_path",
]


def parse_views(text: str) -> tuple[int, int]:
    """``"10x3"`` -> (10 clips, 3 crops)."""
    clips, sep, crops = text.lower().partition("x")
    try:
        result = int(clips), int(crops)
    except ValueError:
        result = (0, 0)
    if not sep or result[0] < 1 or result[1] not in (1, 3):
        raise ValueError(
            f"views must look like '10x3' (clips x crops, crops 1 or 3), got {text!r}"
        )
    return result


@dataclass(frozen=True)
class EvalResult:
    """The final test of one model on one list.

    ``num_videos`` counts the readable (scored) videos; ``excluded`` maps each unreadable
    video's path to its reason. ``video_scores``, ``labels``, ``readable`` and ``paths`` have
    one row per video of the list (NaN scores for excluded videos).
    """

    top1: float
    top5: float
    num_videos: int
    views: tuple[int, int]
    per_class_accuracy: list[float | None]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    video_scores: torch.Tensor
    labels: torch.Tensor
    readable: torch.Tensor
    paths: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)
    class_names: list[str] | None = None

    @property
    def num_excluded(self) -> int:
        return len(self.excluded)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "top1": self.top1,
            "top5": self.top5,
            "num_videos": self.num_videos,
            "num_excluded": self.num_excluded,
            "excluded": [{"path": p, "reason": r} for p, r in self.excluded.items()],
            "views": {"clips": self.views[0], "crops": self.views[1]},
            "per_class_accuracy": self.per_class_accuracy,
            "confusion_matrix": self.confusion,
        }
        if self.class_names is not None:
            out["class_names"] = list(self.class_names)
        return out


@torch.no_grad()
def evaluate_views(
    model: nn.Module,
    records: Sequence[VideoRecord],
    *,
    sampling: str,
    clip_length: int,
    num_classes: int,
    views: tuple[int, int] = (10, 3),
    transform: TransformConfig | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    dataset_options: dict[str, Any] | None = None,
    strict: bool = False,
    max_bad_fraction: float = 1.0,
    health_file: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
    absent: Collection[str] = (),
) -> EvalResult:
    """Score every video of ``records`` with ``views`` (clips, crops), softmax-averaged.

    Args:
        strict: stop at the first unreadable video (``DataHealthError`` naming it).
        max_bad_fraction: stop (``DataHealthError`` listing them) when more than this
            fraction of the videos is unreadable; below it they are excluded and reported.
        health_file: where to write the unreadable videos (also before stopping).
        class_names: carried into the result (``test.json``, ``scores.npz``).
        absent: paths known to be missing from the download (``data.missing: skip``):
            excluded and reported like the unreadable ones, outside the budget.
    """
    with tempfile.TemporaryDirectory(prefix="opplan-eval-", ignore_cleanup_errors=True) as tmp:
        # worker processes append their bad videos under tmp; merged at the end
        health = DataHealth(tmp, max_bad_fraction=max_bad_fraction)
        dataset = VideoClipDataset(
            records,
            # a str checked by TrainingState to be a Sampling
            sampling=sampling,  # type: ignore[arg-type]
            clip_length=clip_length,
            mode="test",
            num_clips=views[0],
            num_crops=views[1],
            transform=transform,
            health=health,
            **(dataset_options or {}),
        )
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
        model.eval().to(device)
        total = torch.zeros(len(records), num_classes)
        bad = torch.zeros(len(records), dtype=torch.bool)
        batches = iter(loader)
        try:
            for clips, _, video in batches:
                keep = video >= 0
                if not keep.all():
                    bad[-1 - video[~keep]] = True  # any unreadable view excludes its video
                    if strict:
                        first = records[int(-1 - video[~keep][0])].path
                        _stop(health, records, bad, health_file, max_bad_fraction, first)
                    if not keep.any():
                        continue
                    clips, video = clips[keep], video[keep]
                probs = fuse_heads(model(clips.to(device))).float().softmax(dim=1).cpu()
                total.index_add_(0, video, probs)  # summed per video, batch by batch
        finally:
            del batches  # stops the workers before their folder goes, even on an error
        reasons = _reasons(health, records, bad)
        for path in set(absent) & set(reasons):
            reasons[path] = f"missing from the download ({reasons[path]})"
        if health_file is not None:
            atomic_write_json(health_file, _health(records, reasons, max_bad_fraction))
        if len(set(reasons) - set(absent)) > max_bad_fraction * (len(records) - len(absent)):
            _stop(health, records, bad, None, max_bad_fraction, None, set(absent))
    readable = ~bad
    scores = total / dataset.views_per_video  # every readable video has all its views
    scores[bad] = float("nan")
    labels = torch.tensor([r.label for r in records])
    good_scores, good_labels = scores[readable], labels[readable]
    n = int(readable.sum())
    top1, top5 = topk_correct(good_scores, good_labels, (1, 5)) if n else (0, 0)
    predicted = good_scores.argmax(dim=1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((good_labels, predicted), torch.ones_like(good_labels), accumulate=True)
    per_class = [
        (float(confusion[c, c]) / float(row.sum())) if row.sum() > 0 else None
        for c, row in enumerate(confusion)
    ]
    return EvalResult(
        top1=top1 / max(n, 1),
        top5=top5 / max(n, 1),
        num_videos=n,
        views=views,
        per_class_accuracy=per_class,
        confusion=confusion.tolist(),
        video_scores=scores,
        labels=labels,
        readable=readable,
        paths=tuple(r.path for r in records),
        excluded=reasons,
        class_names=list(class_names) if class_names is not None else None,
    )


def _reasons(
    health: DataHealth, records: Sequence[VideoRecord], bad: torch.Tensor
) -> dict[str, str]:
    """Path -> reason of each excluded video, in the list's order (the workers' records)."""
    found = health.write()["bad_files"]
    assert isinstance(found, dict)
    paths = [records[int(i)].path for i in bad.nonzero().flatten()]
    return {p: str(found.get(p, "unreadable")) for p in paths}


def _health(
    records: Sequence[VideoRecord], reasons: dict[str, str], max_bad_fraction: float
) -> dict[str, Any]:
    return {
        "scope": "test",
        "num_videos": len(records),
        "num_excluded": len(reasons),
        "max_bad_fraction": max_bad_fraction,
        "bad_files": reasons,
    }


def _stop(
    health: DataHealth,
    records: Sequence[VideoRecord],
    bad: torch.Tensor,
    health_file: str | os.PathLike[str] | None,
    max_bad_fraction: float,
    first: str | None,
    absent: Collection[str] = (),
) -> None:
    """Raise the strict-mode (``first``) or over-budget error, after writing the health file;
    the videos ``absent`` from the download are outside the budget."""
    reasons = _reasons(health, records, bad)
    if health_file is not None:
        atomic_write_json(health_file, _health(records, reasons, max_bad_fraction))
    if first is not None:
        raise DataHealthError(f"unreadable test video (strict mode): {first}: {reasons[first]}")
    reasons = {p: r for p, r in reasons.items() if p not in absent}
    listing = "\n  ".join(f"{p}: {r}" for p, r in reasons.items())
    raise DataHealthError(
        f"{len(reasons)} of {len(records) - len(absent)} test videos unreadable (more than "
        f"{max_bad_fraction:.1%}, data.max_bad_fraction); fix or remove them:\n  {listing}"
    )


def scores_path(out: str | os.PathLike[str]) -> Path:
    """``OUT.json`` -> ``OUT.scores.npz`` (and ``OUT.data_health.json``: ``health_path``)."""
    return Path(out).with_suffix(".scores.npz")


def health_path(out: str | os.PathLike[str]) -> Path:
    return Path(out).with_suffix(".data_health.json")


def save_evaluation(
    out: str | os.PathLike[str], result: EvalResult, header: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``OUT.scores.npz`` then ``OUT.json`` (both atomically); returns the JSON.

    ``header`` (e.g. checkpoint, state, split) goes first in the JSON. The health file is
    written by :func:`evaluate_views` (``health_file=health_path(OUT)``).
    """
    out = Path(out)
    arrays: dict[str, np.ndarray] = {
        "paths": np.array(result.paths, dtype=str),
        "labels": result.labels.numpy().astype(np.int64),
        "scores": result.video_scores.numpy().astype(np.float32),
        "readable": result.readable.numpy().astype(bool),
        "views": np.array(result.views, dtype=np.int64),
    }
    if result.class_names is not None:
        arrays["class_names"] = np.array(result.class_names, dtype=str)
    buffer = io.BytesIO()
    # numpy's stub types savez's **kwds as allow_pickle (bool)
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(scores_path(out), buffer.getvalue())
    payload = {
        **(header or {}),
        **result.to_dict(),
        "scores_file": scores_path(out).name,
        "data_health_file": health_path(out).name,
    }
    atomic_write_json(out, payload)
    return payload


def read_scores(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of an ``OUT.scores.npz`` (no pickle: every array is numeric or str)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
