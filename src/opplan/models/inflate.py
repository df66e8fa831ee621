"""Initialise a P3D-family network from a 2D ImageNet ResNet (paper §5.5: "pre-trained on
ImageNet"; the P3D recipe of Qiu et al. 2017).

The 2D weights come from a local file in torchvision's ResNet layout (``conv1``, ``bn1``,
``layer1.0.conv2`` ...). Nothing is downloaded: export them once with
``torch.save(torchvision.models.resnet50(weights=...).state_dict(), "resnet50.pth")``.

How each part is set (``layerK`` ↔ ``res{K+1}``)::

    2D conv k×k         -> 3D conv 1×k×k (the 2D kernel, copied)        spatial convs, 1×1 convs
    2D BN               -> the BN that follows it                      running stats included
    3×1×1 temporal conv -> identity: centre tap = I, other taps = 0     P3D-A
                           and the BN after it is the identity (γ=1, β=0, μ=0, σ²=1-eps)
    P3D-B/C temporal    -> same kernel, but its BN has γ=0: the added branch starts at zero
    stem 7×7            -> one tap of the k_t×7×7 kernel (``stem="center"``), others 0;
                           a flow stem (2 inputs) takes the RGB kernel's mean over R, G, B
                           for each input (TSN's cross-modality initialisation)
    layer4              -> res5 and, for DG-P3D, also spatial_res5 (stride 1, same weights)
    fc, heads, global context: not copied (heads are new; the context FC starts at zero)

With ``stem="center"`` the stem looks at exactly one frame per output step (a temporal
sub-sampling), so on a clip that repeats one frame every time step of every stage equals the
2D network's feature map of that frame: for bottleneck depths (50/101/152) exactly, in eval
mode. The ``stem="mean"`` alternative (I3D-style, kernel/k_t on every tap) is equal too when the
stem has no temporal padding. For basic-block depths (18/34) it is an approximation: P3D-A puts
a ReLU between S and T, and the second 3×3 convolution of a 2D basic block has none.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from opplan.errors import ConfigError
from opplan.models._blocks import BasicBlock, P3DConv
from opplan.models._p3d import P3DResNet

__all__ = ["InflationReport", "inflate_from_2d", "load_2d_state_dict"]


@dataclass
class InflationReport:
    """What :func:`inflate_from_2d` did.

    Attributes:
        loaded: 3D keys set from a 2D tensor.
        identity: 3D keys of the temporal convolutions and their BNs, set to the identity.
        missing: 3D keys left as initialised (classifier heads, global context).
        unexpected: 2D keys that were not used (e.g. ``fc.weight``).
    """

    loaded: list[str] = field(default_factory=list)
    identity: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs."""
        return (
            f"inflated {len(self.loaded)} tensors, {len(self.identity)} temporal identity, "
            f"missing {self.missing}, unexpected {self.unexpected}"
        )


def load_2d_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Load a 2D ResNet state dict saved with ``torch.save`` (``weights_only=True``).

    A checkpoint that nests it under ``"state_dict"`` or ``"model"`` and a ``"module."``
    prefix (DataParallel) are accepted too.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise ConfigError(f"{path}: cannot load 2D weights: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _target_keys(key2d: str, model: P3DResNet, basic: bool) -> list[str]:
    """3D keys that the 2D ``key2d`` initialises (empty: unused)."""
    if key2d == "conv1.weight":
        return ["stem.conv.weight"]
    if key2d.startswith("bn1."):
        return [f"stem.bn.{key2d.removeprefix('bn1.')}"]
    m = re.fullmatch(r"layer([1-4])\.(\d+)\.(.+)", key2d)
    if m is None:
        return []
    stage, block, rest = int(m[1]), m[2], m[3]
    factorised = ("1", "2") if basic else ("2",)  # the 3×3 convolutions of the 2D block
    c = re.fullmatch(r"(conv|bn)([123])\.(.+)", rest)
    if c is not None and c[2] in factorised:
        rest = f"conv{c[2]}.{'spatial' if c[1] == 'conv' else 'bn_s'}.{c[3]}"
    prefixes = [f"res{stage + 1}"]
    if stage == 4 and model.spatial_res5 is not None:
        prefixes.append("spatial_res5")  # §4: the spatial head's res5 starts from layer4 too
    return [f"{p}.{block}.{rest}" for p in prefixes]


def _identity_temporal(conv: P3DConv) -> None:
    """Temporal conv = centre-tap identity; its BN = identity (A) or zero (B, C)."""
    weight = conv.temporal.weight  # (out, in, 3, 1, 1)
    weight.zero_()
    n = min(weight.shape[0], weight.shape[1])
    centre = weight.shape[2] // 2
    weight[torch.arange(n), torch.arange(n), centre, 0, 0] = 1.0
    bn = conv.bn_t
    bn.weight.fill_(1.0 if conv.pattern == "A" else 0.0)
    bn.bias.zero_()
    if bn.running_mean is not None and bn.running_var is not None:
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(σ² + eps) == x exactly


def _cross_modality(w2d: Tensor, channels: int) -> Tensor:
    """An RGB first kernel for ``channels`` inputs (flow: 2): the mean over R, G, B repeated
    per channel (TSN's cross-modality initialisation, Wang et al. 2016); 3 keeps it."""
    if w2d.shape[1] == channels or w2d.shape[1] != 3:
        return w2d
    return w2d.mean(dim=1, keepdim=True).repeat(1, channels, 1, 1)


def _stem_kernel(w2d: Tensor, kernel_t: int, mode: str) -> Tensor:
    w = w2d.new_zeros(w2d.shape[0], w2d.shape[1], kernel_t, *w2d.shape[2:])
    if mode == "mean":
        w[:] = (w2d / kernel_t).unsqueeze(2)
    else:
        w[:, :, kernel_t // 2] = w2d
    return w


@torch.no_grad()
def inflate_from_2d(
    model: nn.Module,
    state_dict: Mapping[str, Tensor] | str | os.PathLike[str],
    *,
    stem: Literal["center", "mean"] = "center",
) -> InflationReport:
    """Initialise ``model`` (a :class:`P3DResNet`) in place from a 2D torchvision ResNet.

    Args:
        model: a P3D / G-P3D / DG-P3D network of the same depth as the 2D ResNet.
        state_dict: the 2D state dict, or the path of a file holding it.
        stem: ``"center"`` puts the 7×7 kernel on the centre tap of the k_t×7×7 stem;
            ``"mean"`` spreads it evenly over the taps.

    Returns:
        An :class:`InflationReport` (loaded / identity / missing / unexpected keys).

    Raises:
        ConfigError: not a P3D network, a bad ``stem``, or a 2D tensor whose shape does not
            fit (e.g. ResNet-18 weights into a ResNet-50 P3D).

    Example:
        >>> import torchvision
        >>> net = P3DResNet(10)  # P3D ResNet-50
        >>> report = inflate_from_2d(net, torchvision.models.resnet50().state_dict())
        >>> report.unexpected
        ['fc.bias', 'fc.weight']
    """
    if not isinstance(model, P3DResNet):
        raise ConfigError(f"inflation needs a P3D-family network, got {type(model).__name__}")
    if stem not in ("center", "mean"):
        raise ConfigError(f"stem must be 'center' or 'mean', got {stem!r}")
    sd2d = (
        load_2d_state_dict(state_dict)
        if isinstance(state_dict, str | os.PathLike)
        else (dict(state_dict))
    )
    basic = isinstance(model.res2[0], BasicBlock)
    target = model.state_dict(keep_vars=True)
    report = InflationReport()
    errors: list[str] = []
    for key2d, value in sorted(sd2d.items()):
        keys3d = [k for k in _target_keys(key2d, model, basic) if k in target]
        if not keys3d:
            report.unexpected.append(key2d)
            continue
        for key3d in keys3d:
            dest = target[key3d]
            src = value
            if key3d == "stem.conv.weight" and src.dim() == 4:
                src = _stem_kernel(_cross_modality(src, dest.shape[1]), dest.shape[2], stem)
            elif src.dim() == 4 and dest.dim() == 5:
                src = src.unsqueeze(2)  # k×k -> 1×k×k
            if src.shape != dest.shape:
                errors.append(f"{key2d} {tuple(value.shape)} -> {key3d} {tuple(dest.shape)}")
                continue
            dest.copy_(src)
            report.loaded.append(key3d)
    if errors:
        raise ConfigError(
            f"2D weights do not fit {type(model).__name__} (wrong depth?): "
            + "; ".join(errors[:5])
        )
    for name, module in model.named_modules():
        if isinstance(module, P3DConv):
            _identity_temporal(module)
            report.identity.extend(
                f"{name}.{k}"
                for k in (
                    "temporal.weight",
                    *(f"bn_t.{b}" for b in ("weight", "bias", "running_mean", "running_var")),
                )
            )
    done = set(report.loaded) | set(report.identity)
    report.missing = [k for k in target if k not in done and not k.endswith("num_batches_tracked")]
    return report
