"""The internal validation split used while planning (§5.1 of the paper).

"The original training set of each dataset is split into two parts for learning the network
weights and validating the performance ... with the same size as the original validation/test
set. The original validation/test set is never exploited in the optimization planning."

The split is deterministic (a function of the seed), stratified by class (largest-remainder
allocation of the validation size over the class frequencies) and returns new lists; the
input lists are never modified. Records with a ``group`` (the source video a clip was cut
from: UCF101's ``gNN``, HMDB51's film, Kinetics' ``youtube_id``) move as a whole: no source
sits on both sides, or the planner would choose on leaked clips. A grouped split fills each
class's quota with whole groups and may miss the requested size by a few videos; when the
groups cannot come within 10 % of it, that is an error saying why.

Example:
    >>> from opplan.video.annotations import VideoRecord
    >>> train = [VideoRecord(f"v{i}.mp4", i % 2) for i in range(10)]
    >>> fit, val = internal_val_split(train, val_size=4, seed=0)
    >>> len(fit), len(val), sorted(r.label for r in val)
    (6, 4, [0, 0, 1, 1])
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from opplan.errors import ConfigError
from opplan.video.annotations import VideoRecord

__all__ = ["internal_val_split"]


def internal_val_split(
    train: Sequence[VideoRecord],
    *,
    val_size: int | None = None,
    original_val: Sequence[VideoRecord] | None = None,
    seed: int = 0,
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Carve a stratified validation split out of the training list.

    Args:
        train: the original training records (left untouched).
        val_size: size of the internal validation split; default ``len(original_val)``.
        original_val: the original validation (or test) list, only used for its size.
        seed: seed of the deterministic choice.

    Returns:
        (planning train records, internal validation records), each in input order.
    """
    if val_size is None:
        if original_val is None:
            raise ConfigError("internal split: give val_size or the original validation list")
        val_size = len(original_val)
    if not 0 < val_size < len(train):
        raise ConfigError(f"internal validation size must be in (0, {len(train)}), got {val_size}")
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, record in enumerate(train):
        by_class[record.label].append(i)
    labels = sorted(by_class)
    counts = np.array([len(by_class[c]) for c in labels], dtype=np.float64)
    cap = np.maximum(counts.astype(int) - 1, 0)  # every class keeps a training video
    if val_size > cap.sum():
        raise ConfigError(
            f"internal validation size {val_size} leaves a class without training videos"
        )
    if any(r.group is not None for r in train):
        return _grouped_split(train, labels, counts, val_size, seed)
    exact = counts * val_size / counts.sum()
    quota = np.minimum(np.floor(exact).astype(int), cap)
    # Largest remainder first (ties by class order, so the result is deterministic); classes
    # at their cap pass their share on.
    order = np.lexsort((np.arange(len(labels)), -(exact - quota)))
    while quota.sum() < val_size:
        for k in order:
            if quota.sum() < val_size and quota[k] < cap[k]:
                quota[k] += 1
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for label, q in zip(labels, quota, strict=True):
        members = by_class[label]
        chosen.update(members[p] for p in rng.permutation(len(members))[:q])
    val = [r for i, r in enumerate(train) if i in chosen]
    fit = [r for i, r in enumerate(train) if i not in chosen]
    return fit, val


def _quotas(counts: np.ndarray, cap: np.ndarray, val_size: int) -> np.ndarray:
    """Largest-remainder allocation of ``val_size`` over the classes, each below its cap."""
    exact = counts * val_size / counts.sum()
    quota = np.minimum(np.floor(exact).astype(int), cap)
    order = np.lexsort((np.arange(len(counts)), -(exact - quota)))
    while quota.sum() < min(val_size, cap.sum()):
        for k in order:
            if quota.sum() < val_size and quota[k] < cap[k]:
                quota[k] += 1
    return quota


def _grouped_split(
    train: Sequence[VideoRecord],
    labels: list[int],
    counts: np.ndarray,
    val_size: int,
    seed: int,
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Whole groups (a record without one is its own) to validation, in a seeded order, each
    taken when it brings its classes closer to their quotas and leaves every class a
    training group."""
    column = {label: k for k, label in enumerate(labels)}
    members: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(train):
        members[record.group if record.group is not None else f"\0{i}"].append(i)
    names = sorted(members)
    per_group = np.zeros((len(names), len(labels)), dtype=int)
    for g, name in enumerate(names):
        for i in members[name]:
            per_group[g, column[train[i].label]] += 1
    # A class must keep at least one group in training: its cap is its size minus its
    # smallest group's share.
    smallest = np.where(per_group > 0, per_group, counts.max() + 1).min(axis=0)
    cap = counts.astype(int) - smallest
    quota = _quotas(counts, cap, val_size)
    taken = np.zeros(len(labels), dtype=int)
    chosen: set[int] = set()
    for g in np.random.default_rng(seed).permutation(len(names)):
        row = per_group[g]
        after = taken + row
        if np.any(after > cap):
            continue
        if np.abs(after - quota)[row > 0].sum() < np.abs(taken - quota)[row > 0].sum():
            taken = after
            chosen.update(members[names[g]])
    size = len(chosen)
    if size == 0 or abs(size - val_size) > max(1, val_size // 10):
        largest = max(len(m) for m in members.values())
        raise ConfigError(
            f"internal validation: {len(names)} source groups (largest {largest} videos) "
            f"cannot make a split of {val_size} videos that keeps every group on one side "
            f"and a training group in every class (closest: {size}); set "
            "data.internal_val_size, or data.group_pattern to finer groups"
        )
    val = [r for i, r in enumerate(train) if i in chosen]
    fit = [r for i, r in enumerate(train) if i not in chosen]
    return fit, val
