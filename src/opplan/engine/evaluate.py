"""The final test protocol (§5.2): N clips x M crops per video, softmax scores averaged.

Views are separate dataset items, so memory stays at the level of a one-view batch however
many views there are; scores are accumulated per video with ``average_view_scores``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from opplan.engine.metrics import topk_correct
from opplan.models import fuse_heads
from opplan.video import TransformConfig, VideoClipDataset, VideoRecord

__all__ = ["EvalResult", "evaluate_views", "parse_views"]


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
    top1: float
    top5: float
    num_videos: int
    views: tuple[int, int]
    per_class_accuracy: list[float | None]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    video_scores: torch.Tensor

    def to_dict(self) -> dict[str, Any]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "num_videos": self.num_videos,
            "views": {"clips": self.views[0], "crops": self.views[1]},
            "per_class_accuracy": self.per_class_accuracy,
            "confusion_matrix": self.confusion,
        }


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
) -> EvalResult:
    dataset = VideoClipDataset(
        records,
        sampling=sampling,  # type: ignore[arg-type]
        clip_length=clip_length,
        mode="test",
        num_clips=views[0],
        num_crops=views[1],
        transform=transform,
        **(dataset_options or {}),
    )
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    model.eval().to(device)
    total = torch.zeros(len(records), num_classes)
    for clips, _, video in loader:
        probs = fuse_heads(model(clips.to(device))).float().softmax(dim=1).cpu()
        total.index_add_(0, video, probs)  # summed per video, batch by batch
    scores = total / dataset.views_per_video  # every video has the same number of views
    labels = torch.tensor([r.label for r in records])
    top1, top5 = topk_correct(scores, labels, (1, 5))
    predicted = scores.argmax(dim=1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = [
        (float(confusion[c, c]) / float(row.sum())) if row.sum() > 0 else None
        for c, row in enumerate(confusion)
    ]
    n = len(records)
    return EvalResult(top1 / n, top5 / n, n, views, per_class, confusion.tolist(), scores)
