"""Optimization settings of the video trainer (SGD as in the paper's reference settings)."""

from __future__ import annotations

import hashlib
import math

from torch import nn

from opplan.config import OptimConfig

__all__ = ["OptimSettings", "classifier_parameters", "derive_seed"]


class OptimSettings(OptimConfig):
    """SGD with momentum and the batch bookkeeping that keeps transitions comparable.

    The fields, their defaults and bounds are the config's ``trainer.optim``
    (:class:`opplan.config.OptimConfig`, defined once there); this adds what the trainer
    derives from them.

    The effective batch stays ``effective_batch`` for every clip length: the micro-batch that
    fits in memory shrinks as clips grow (default: inversely proportional to the clip length,
    ``base_micro_batch`` clips at ``base_clip_length`` frames) and gradients are accumulated.
    Learning rates in the graph are given for ``reference_batch`` and scaled linearly by
    ``effective_batch / reference_batch``.
    """

    def micro_batch_for(self, clip_length: int) -> int:
        if clip_length in self.micro_batch:
            size = self.micro_batch[clip_length]
        else:
            size = math.floor(self.base_micro_batch * self.base_clip_length / clip_length)
        return max(1, min(size, self.effective_batch))

    def accumulation_steps(self, clip_length: int) -> int:
        return math.ceil(self.effective_batch / self.micro_batch_for(clip_length))

    def lr(self, graph_lr: float) -> float:
        """The learning rate actually used: linear scaling to the effective batch."""
        return graph_lr * self.effective_batch / self.reference_batch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (stable across processes and runs)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def classifier_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The classifier's parameters (for ``classifier_lr_mult``); [] if none is found."""
    getter = getattr(model, "get_classifier", None)
    head = getter() if callable(getter) else getattr(model, "fc", None)
    if head is None:
        head = getattr(model, "classifier", None)
    return list(head.parameters()) if isinstance(head, nn.Module) else []
