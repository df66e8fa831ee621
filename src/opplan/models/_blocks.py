"""Pseudo-3D residual blocks (paper §4 "Pseudo-3D convolution"; Qiu et al., ICCV 2017).

Every 3×3 convolution of a 2D ResNet becomes a 1×3×3 spatial convolution ``S`` and a 3×1×1
temporal convolution ``T`` (:class:`P3DConv`). Three ways of wiring ``S`` and ``T`` are offered,
as in the original P3D paper; the DG-P3D paper uses P3D-A only (§4)::

    P3D-A (cascade)    y = BN_t(T(ReLU(BN_s(S(x)))))
    P3D-B (parallel)   y = BN_s(S(x)) + BN_t(T(x))
    P3D-C (cascade with a shortcut)
                       h = ReLU(BN_s(S(x)));  y = h + BN_t(T(h))

``y`` is returned before the activation that follows the 3×3 convolution in the 2D network,
so the blocks below apply it exactly where the 2D ResNet does. Spatial down-sampling sits in
``S`` (and in ``T`` for P3D-B, whose ``T`` reads the block input), torchvision's "ResNet v1.5"
placement; time is never down-sampled inside the residual stages (Fig. 3: T=4 from res2 to res5).

Module names follow torchvision's ResNet (``conv1``, ``bn1``, ``conv3``, ``bn3``,
``downsample.0/1``) so that :mod:`opplan.models.inflate` maps 2D keys one to one:
the 2D ``convK``/``bnK`` of a 3×3 convolution become ``convK.spatial``/``convK.bn_s``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from torch import Tensor, nn

from opplan.models._global_context import GlobalContext

__all__ = ["BasicBlock", "Bottleneck", "P3DConv", "P3DPattern"]

P3DPattern = Literal["A", "B", "C"]


class P3DConv(nn.Module):
    """A 3×3 convolution factorised into spatial ``S`` (1×3×3) and temporal ``T`` (3×1×1).

    Args:
        in_channels: input channels.
        out_channels: output channels of both ``S`` and ``T``.
        stride: spatial stride (applied by ``S``; also by ``T`` in pattern B).
        pattern: ``"A"``, ``"B"`` or ``"C"`` (see the module docstring).

    Example:
        >>> import torch
        >>> conv = P3DConv(8, 16, stride=2)
        >>> conv(torch.randn(1, 8, 4, 16, 16)).shape
        torch.Size([1, 16, 4, 8, 8])
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, pattern: P3DPattern = "A"
    ) -> None:
        super().__init__()
        if pattern not in ("A", "B", "C"):
            raise ValueError(f"P3D pattern must be 'A', 'B' or 'C', got {pattern!r}")
        self.pattern = pattern
        self.spatial = nn.Conv3d(
            in_channels, out_channels, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False
        )
        self.bn_s = nn.BatchNorm3d(out_channels)
        t_in, t_stride = (in_channels, stride) if pattern == "B" else (out_channels, 1)
        self.temporal = nn.Conv3d(
            t_in, out_channels, (3, 1, 1), (1, t_stride, t_stride), (1, 0, 0), bias=False
        )
        self.bn_t = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.pattern == "B":
            return self.bn_s(self.spatial(x)) + self.bn_t(self.temporal(x))
        h = self.act(self.bn_s(self.spatial(x)))
        y = self.bn_t(self.temporal(h))
        return h + y if self.pattern == "C" else y


def _downsample(
    in_channels: int, out_channels: int, stride: int, avg_down: bool = False
) -> nn.Sequential | None:
    """The projection shortcut: 1×1×1 conv (spatial ``stride``) → BN, or with ``avg_down``
    a 1×2×2 average pool → 1×1×1 conv → BN (ResNet-D, timm's ``avg_down``).

    A strided 1×1×1 conv reads one position in ``stride**2`` and drops the rest; the average
    pool feeds every position to the shortcut. Parameter names (``downsample.0/1``) are the same
    either way, so 2D weights inflate into both.
    """
    if stride == 1 and in_channels == out_channels:
        return None
    conv_stride = (1, stride, stride)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if avg_down and stride > 1:
        layers["pool"] = nn.AvgPool3d(
            conv_stride, conv_stride, ceil_mode=True, count_include_pad=False
        )
        conv_stride = (1, 1, 1)
    layers["0"] = nn.Conv3d(in_channels, out_channels, 1, conv_stride, bias=False)
    layers["1"] = nn.BatchNorm3d(out_channels)
    return nn.Sequential(layers)


class BasicBlock(nn.Module):
    """Two P3D convolutions with an identity (or 1×1×1 projection) shortcut (ResNet-18/34).

    ::

        x ─ conv1 (P3D) ─ ReLU ─ conv2 (P3D) ─┬──────────── + ─ (+ gc(branch)) ─ ReLU
        └──────────── downsample? ────────────┴─────────────┘

    Args:
        in_channels: input channels.
        planes: width of the block (= output channels, ``expansion`` is 1).
        stride: spatial stride of the first convolution.
        pattern: P3D pattern of both convolutions.
        global_context: add the G-P3D global-context residual (§4).
        avg_down: average-pool before the projection shortcut's 1×1×1 conv (ResNet-D).
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        pattern: P3DPattern = "A",
        global_context: bool = False,
        avg_down: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = P3DConv(in_channels, planes, stride, pattern)
        self.conv2 = P3DConv(planes, out_channels, 1, pattern)
        self.gc = GlobalContext(out_channels) if global_context else None
        self.downsample = _downsample(in_channels, out_channels, stride, avg_down)
        self.act = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        """Zero the BN scale(s) closing the residual branch: the block starts as its shortcut."""
        bns = {"A": [self.conv2.bn_t], "B": [self.conv2.bn_s, self.conv2.bn_t]}
        for bn in bns.get(self.conv2.pattern, [self.conv2.bn_s]):
            nn.init.zeros_(bn.weight)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.act(self.conv1(x)))
        if self.gc is not None:
            out = out + self.gc(out)
        return self.act(out + shortcut)


class Bottleneck(nn.Module):
    """1×1×1 reduce → P3D convolution → 1×1×1 expand, with a shortcut (ResNet-50/101/152).

    ::

        x ─ conv1 ─ bn1 ─ ReLU ─ conv2 (P3D) ─ ReLU ─ conv3 ─ bn3 ─┬─ + ─ (+ gc) ─ ReLU
        └──────────────────── downsample? ────────────────────────┴──┘

    Args:
        in_channels: input channels.
        planes: inner width; the output has ``4 * planes`` channels.
        stride: spatial stride of the P3D convolution.
        pattern: P3D pattern.
        global_context: add the G-P3D global-context residual (§4).
        avg_down: average-pool before the projection shortcut's 1×1×1 conv (ResNet-D).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        pattern: P3DPattern = "A",
        global_context: bool = False,
        avg_down: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv3d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = P3DConv(planes, planes, stride, pattern)
        self.conv3 = nn.Conv3d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.gc = GlobalContext(out_channels) if global_context else None
        self.downsample = _downsample(in_channels, out_channels, stride, avg_down)
        self.act = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        """Zero the BN scale closing the residual branch: the block starts as its shortcut."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.conv2(out))
        out = self.bn3(self.conv3(out))
        if self.gc is not None:
            out = out + self.gc(out)
        return self.act(out + shortcut)
