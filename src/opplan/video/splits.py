"""The internal validation split used while planning (§5.1 of the paper).

"The original training set of each dataset is split into two parts for learning the network
weights and validating the performance ... with the same size as the original validation/test
set. The original validation/test set is never exploited in the optimization planning."

The split is deterministic (a function of the seed), stratified by class (largest-remainder
allocation of the validation size over the class frequencies) and returns new lists; the
input lists are never modified.

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
