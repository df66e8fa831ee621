"""Classifier heads and the model output contract (paper §4, "Dual-head classifier").

Every model built by :func:`opplan.models.build_model` returns from ``forward`` either

* a ``Tensor`` of logits, shape (N, num_classes) — single-head models (P3D, G-P3D,
  torchvision's video models, user factories), or
* a :class:`DualHeadLogits` ``(temporal, spatial)`` — DG-P3D, in train *and* eval mode.

Code that trains or evaluates any of them uses the two functions below and never looks at the
type: :func:`heads_loss` (the training loss, the sum of the heads' cross-entropies) and
:func:`fuse_heads` (the prediction scores, the mean of the heads' logits, i.e. the heads'
"linearly fused" scores). On a plain ``Tensor`` they reduce to cross-entropy and the identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "ClassifierHead",
    "DualHeadFeatures",
    "DualHeadLogits",
    "ModelOutput",
    "fuse_heads",
    "heads_loss",
]


class DualHeadLogits(NamedTuple):
    """Logits of DG-P3D's two heads, each (N, num_classes)."""

    temporal: Tensor
    spatial: Tensor


class DualHeadFeatures(NamedTuple):
    """Feature maps entering DG-P3D's two heads (Fig. 3: 2048×4×7×7 and 2048×1×14×14)."""

    temporal: Tensor
    spatial: Tensor


ModelOutput = Tensor | DualHeadLogits


def heads_loss(
    output: ModelOutput,
    target: Tensor,
    criterion: Callable[[Tensor, Tensor], Tensor] = nn.functional.cross_entropy,
) -> Tensor:
    """Training loss of any model output: the sum of ``criterion`` over its heads (§4).

    Args:
        output: a model's output, logits or :class:`DualHeadLogits`.
        target: class indices (N,) (or whatever ``criterion`` accepts).
        criterion: per-head loss, cross-entropy by default.

    Example:
        >>> out = DualHeadLogits(torch.zeros(2, 3), torch.zeros(2, 3))
        >>> float(heads_loss(out, torch.tensor([0, 1])))  # 2 * ln 3
        2.197...
    """
    if isinstance(output, Tensor):
        return criterion(output, target)
    heads = tuple(output)
    loss = criterion(heads[0], target)
    for head in heads[1:]:
        loss = loss + criterion(head, target)
    return loss


def fuse_heads(output: ModelOutput) -> Tensor:
    """Prediction scores of any model output: the mean of the heads' logits (§4).

    The fusion is linear, so averaging views first and heads second (or the other way round)
    gives the same scores.
    """
    if isinstance(output, Tensor):
        return output
    return torch.stack(tuple(output)).mean(dim=0)


class ClassifierHead(nn.Module):
    """Global average pool → dropout → FC, the head used on each DG-P3D branch (§4).

    Args:
        in_features: channels of the incoming feature map.
        num_classes: classes; 0 gives an identity classifier (pooled features out).
        drop_rate: dropout probability before the FC (0.5 or 0.9 in the paper, Table 2).
    """

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.in_features = in_features
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        """Replace the FC by a freshly initialised one with ``num_classes`` outputs (on the
        device and dtype of the old one)."""
        self.num_classes = num_classes
        old = next(self.fc.parameters(), None) if hasattr(self, "fc") else None
        like: dict[str, Any] = (
            {"device": old.device, "dtype": old.dtype} if old is not None else {}
        )
        if num_classes > 0:
            fc = nn.Linear(self.in_features, num_classes, **like)
            nn.init.normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)
            self.fc = fc
        else:
            self.fc = nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.pool(x), 1)
        if pre_logits:
            return x
        return self.fc(self.drop(x))
