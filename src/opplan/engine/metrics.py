"""Validation metrics of the planner (§5.2) and the final test."""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["PlanMetric", "epoch_metrics", "plan_score", "topk_correct"]

PlanMetric = Literal["top1", "mean_top135"]


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...]) -> list[int]:
    """How many rows have their label among the ``k`` best scores, for each ``k``."""
    kmax = min(max(ks), scores.shape[1])
    top = scores.topk(kmax, dim=1).indices
    hits = top.eq(labels.view(-1, 1))
    return [int(hits[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


def plan_score(scores: torch.Tensor, labels: torch.Tensor, metric: PlanMetric) -> float:
    """``top1`` (default) or the reference implementation's mean of top-1/3/5."""
    n = max(len(labels), 1)
    if metric == "top1":
        return topk_correct(scores, labels, (1,))[0] / n
    return sum(topk_correct(scores, labels, (1, 3, 5))) / (3 * n)


def epoch_metrics(totals: dict[str, float], lr: float, ranks: int) -> dict[str, float]:
    """A training epoch's metrics from its ``totals`` (summed loss x clips, clips, data and
    compute seconds)."""
    clips = max(totals["clips"], 1.0)
    data, compute = totals["data_time"], totals["compute_time"]
    return {
        "loss": totals["loss"] / clips,
        "data_time": data,
        "compute_time": compute,
        "clips_per_s": clips / max(data + compute, 1e-9),
        # the state's rates: how fast the loader delivers while the model waits, and how fast
        # the model trains (clips per second of compute)
        "data_clips_per_s": clips / max(data, 1e-9),
        "compute_clips_per_s": clips / max(compute, 1e-9),
        "lr": lr,
        "ranks": float(ranks),  # data-parallel processes that trained this epoch
    }
