"""Precise BatchNorm: recompute a model's BN statistics on training clips (issue 17 item 1).

A move that changes the clip length starts from a checkpoint whose BN running statistics were
gathered at the old length; the first evaluation (the curve's epoch 0) then normalizes the new
clips with the old statistics. ``trainer.optim.recalibrate_bn`` recomputes them at the start
of every move from a checkpoint, as PySlowFast's "precise BN" does before evaluation, with
torch's own :func:`torch.optim.swa_utils.update_bn` (each BN's statistics become the
equal-weight average of the micro-batches' statistics). Only BN modules in training mode are
touched: frozen ones (``freeze_bn_from``, §5.2) keep theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import Dataset

__all__ = ["recalibrate_bn", "recalibration_batches"]


def recalibration_batches(
    dataset: Dataset[tuple[torch.Tensor, int, int]],
    *,
    micro_batch: int,
    batches: int,
    seed: int,
    prepare: Callable[[torch.Tensor], torch.Tensor],
) -> Iterator[torch.Tensor]:
    """``batches`` micro-batches of ``micro_batch`` distinct clips drawn (seeded) from
    ``dataset``, each passed through ``prepare`` (to the device, normalized); fewer when the
    dataset runs out."""
    if micro_batch < 1 or batches < 1:
        raise ValueError(f"micro_batch and batches must be >= 1, got {micro_batch}, {batches}")
    order = np.random.default_rng(seed).permutation(len(dataset))  # type: ignore[arg-type]
    for k in range(batches):
        chosen: Sequence[int] = order[k * micro_batch : (k + 1) * micro_batch].tolist()
        if not chosen:
            return
        yield prepare(torch.stack([dataset[i][0] for i in chosen]))


def recalibrate_bn(model: nn.Module, batches: Iterator[torch.Tensor]) -> int:
    """Replace the running statistics of ``model``'s training BatchNorms by those of
    ``batches`` (:func:`torch.optim.swa_utils.update_bn`); returns the number of BN modules
    recalibrated (0: nothing to do, the model untouched). BNs that stay in eval mode under
    ``model.train()`` (frozen) keep their buffers; the model's mode, the BN momenta and the
    global RNG are restored."""
    was_training = model.training
    model.train()
    bns = [m for m in model.modules() if _is_bn(m)]
    live = [m for m in bns if m.training]
    if live:
        frozen = {
            m: {k: b.clone() for k, b in m.named_buffers(recurse=False)}
            for m in bns
            if not m.training
        }
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            update_bn(batches, model)  # resets and re-estimates every BN, in train mode
        for module, buffers in frozen.items():  # update_bn reset them too: put them back
            for name, value in buffers.items():
                getattr(module, name).copy_(value)
    model.train(was_training)
    return len(live)


def _is_bn(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
