"""Frozen batch normalisation (paper §5.2).

For long clips (64 and 128 frames) the per-GPU batch is too small for batch statistics, so the
paper "freeze[s] the parameters of all Batch Normalization layers except for the first one".
:func:`freeze_bn` does this for any model (P3D family, torchvision, user networks): each
selected ``BatchNormNd`` is swapped for a :class:`FrozenBatchNorm1d`/``2d``/``3d`` subclass that
keeps the same state-dict keys, always normalises with its running statistics (it ignores
``model.train()``), never updates them, and has ``requires_grad=False`` on its affine
parameters. Checkpoints move freely between frozen and unfrozen models.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = [
    "FrozenBatchNorm1d",
    "FrozenBatchNorm2d",
    "FrozenBatchNorm3d",
    "freeze_bn",
    "frozen_bn_names",
]


class _FrozenMixin:
    """``train(mode)`` always leaves the module in eval mode (running statistics)."""

    def train(self, mode: bool = True) -> Any:
        # a mixin: the nn.Module it is mixed into provides train()
        return super().train(False)  # type: ignore[misc]


class FrozenBatchNorm1d(_FrozenMixin, nn.BatchNorm1d):
    """``BatchNorm1d`` that stays in eval mode; see :func:`freeze_bn`."""


class FrozenBatchNorm2d(_FrozenMixin, nn.BatchNorm2d):
    """``BatchNorm2d`` that stays in eval mode; see :func:`freeze_bn`."""


class FrozenBatchNorm3d(_FrozenMixin, nn.BatchNorm3d):
    """``BatchNorm3d`` that stays in eval mode; see :func:`freeze_bn`."""


_FROZEN: dict[type[nn.Module], type[nn.Module]] = {
    nn.BatchNorm1d: FrozenBatchNorm1d,
    nn.BatchNorm2d: FrozenBatchNorm2d,
    nn.BatchNorm3d: FrozenBatchNorm3d,
}
_FROZEN_TYPES = tuple(_FROZEN.values())


def frozen_bn_names(model: nn.Module) -> list[str]:
    """Qualified names of the frozen BN modules of ``model``, in registration order."""
    return [name for name, m in model.named_modules() if isinstance(m, _FROZEN_TYPES)]


def freeze_bn(model: nn.Module, except_first: bool = True) -> list[str]:
    """Freeze every BatchNorm of ``model`` in place, except the first one by default (§5.2).

    "First" is the first BN in module registration order — the stem's BN for ResNets. Running
    twice is harmless. Call it after loading weights (it does not change any value) and before
    building the optimizer, so the optimizer sees ``requires_grad=False``.

    Args:
        model: the network; modified in place.
        except_first: leave the first BN trainable, as the paper does.

    Returns:
        The qualified names of the modules frozen by this call.

    Example:
        >>> net = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), nn.BatchNorm3d(4))
        >>> freeze_bn(net)
        ['2']
    """
    bns = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if except_first:
        bns = bns[1:]
    frozen: list[str] = []
    for name, bn in bns:
        if isinstance(bn, _FROZEN_TYPES) or type(bn) not in _FROZEN:
            continue  # already frozen, or a BN subclass we do not know how to copy
        # Same Parameter and buffer objects under a frozen class: device, dtype, values and
        # state-dict keys are untouched.
        new = _FROZEN[type(bn)].__new__(_FROZEN[type(bn)])
        new.__dict__.update(bn.__dict__)
        new.requires_grad_(False)
        new.eval()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
        frozen.append(name)
    return frozen
