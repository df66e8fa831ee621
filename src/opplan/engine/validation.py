"""The planning score of a model on the internal validation split (§3.3, §5.1, §5.2).

One centre clip and crop per video (the ``plan_eval`` dataset), so two evaluations of one
model agree exactly. An unreadable validation video has no weight (never a stand-in's
score): the score is over the readable videos. Data parallel: each rank scores the fixed
shard ``rank::world`` and the correct counts are summed, so every rank returns the
single-process score.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from opplan.engine.distributed import DistributedContext
from opplan.engine.metrics import PlanMetric, plan_score, topk_correct
from opplan.engine.performance import to_channels_last
from opplan.models import fuse_heads

__all__ = ["validation_score"]


@torch.no_grad()
def validation_score(
    model: nn.Module,
    dataset: Dataset[tuple[torch.Tensor, int, int]],
    *,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager[None]],
    channels_last: bool,
    metric: PlanMetric,
    dist: DistributedContext,
) -> float:
    """Top-1 (or mean top-1/3/5) of ``model`` on ``dataset`` (items ``(clip, label, index)``,
    index < 0 for an unreadable video)."""
    world, rank = dist.world_size, dist.rank
    # torch types Subset's dataset as Dataset[T], not our sized dataset protocol
    shard = Subset(dataset, range(rank, len(dataset), world)) if world > 1 else dataset  # type: ignore[arg-type]
    loader = DataLoader(shard, batch_size=batch_size, num_workers=num_workers)
    model.eval()
    scores, labels = [], []
    for clips, target, index in loader:
        keep = index >= 0  # an unreadable video has no weight, never a stand-in's
        if not keep.all():
            if not keep.any():
                continue
            clips, target = clips[keep], target[keep]
        clips = clips.to(device)
        with autocast():
            out = fuse_heads(model(to_channels_last(clips) if channels_last else clips))
        scores.append(out.float().cpu())
        labels.append(target)
    readable = sum(len(t) for t in labels)  # the score is over the readable videos
    if world == 1 and not labels:
        return 0.0  # every validation video unreadable (within a budget of 100%)
    if world == 1:
        return plan_score(torch.cat(scores), torch.cat(labels), metric)
    ks = (1,) if metric == "top1" else (1, 3, 5)
    hits = topk_correct(torch.cat(scores), torch.cat(labels), ks) if labels else [0] * 3
    *counts, n = dist.all_reduce_sum([*hits[: len(ks)], readable], torch.int64)
    n = max(int(n), 1)  # the same arithmetic as plan_score
    return counts[0] / n if metric == "top1" else sum(counts) / (3 * n)
