"""Registered networks: the P3D family (§4) and torchvision's video models (§5.4).

Names::

    p3d_resnet{18,34,50,101,152}      P3D (P3D-A blocks)
    g_p3d_resnet{18,34,50,101,152}    + global context
    dg_p3d_resnet{18,34,50,101,152}   + dual-head classifier (the paper's network)
    p3d_tiny, g_p3d_tiny, dg_p3d_tiny small CPU-trainable variants for the demo and the tests
    r3d_18, mc3_18, r2plus1d_18, s3d  torchvision.models.video, ``weights=None`` (never downloads)

Every P3D factory accepts the keyword options of :class:`~opplan.models.P3DResNet`
(``block_pattern="ABC"``, ``drop_rate``, ``frozen_bn``, ``widths``, ``layers``, ...), which
override the variant's defaults.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models import video as tv_video

from opplan.models._p3d import P3DResNet
from opplan.models._registry import register_model

__all__: list[str] = []

# depth -> (block, blocks per stage), as in He et al. 2016 / torchvision.
_DEPTHS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
_ARCHS: dict[str, tuple[str, dict[str, bool]]] = {
    "p3d": ("P3D", {"global_context": False, "dual_head": False}),
    "g_p3d": ("G-P3D", {"global_context": True, "dual_head": False}),
    "dg_p3d": ("DG-P3D", {"global_context": True, "dual_head": True}),
}
# The tiny variants: basic blocks, one block per stage, 16..128 channels, geometry for
# 8..16-frame clips of 32..64 px (3×8×32×32 -> stem 16×4×16×16 -> res5 128×4×2×2, spatial head
# 128×1×4×4). The paper's stem (4×7×7, stride 4/2/2, then a 1×3×3 pool) and strided 1×1×1
# shortcuts shrink a 32-px frame to 1×1 at res5 and, with zero-initialised residual branches,
# leave the heads reading ~4% of the pixels at initialisation; on the synthetic ``order`` task
# such a net stays near chance for 20 epochs. Here the stem is a 3×3×3 convolution at full
# resolution followed by a 2×3×3 max pool (stride 2 in time and space), and the projection
# shortcuts average-pool first (ResNet-D, ``avg_down``). See tests/models/test_zoo_tiny.py.
TINY: dict[str, Any] = {
    "block": "basic",
    "layers": (1, 1, 1, 1),
    "widths": (16, 32, 64, 128),
    "stem_width": 16,
    "stem_kernel_t": 3,
    "stem_stride_t": 1,
    "stem_kernel": 3,
    "stem_stride": 1,
    "stem_pool_t": 2,
    "avg_down": True,
}


def _p3d_factory(name: str, title: str, defaults: dict[str, Any]) -> None:
    def factory(num_classes: int = 400, **options: Any) -> nn.Module:
        return P3DResNet(num_classes, **{**defaults, **options})

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"{title}; options override {defaults} (see P3DResNet)."
    min_input = (2, 16, 16) if name.endswith("_tiny") else (4, 32, 32)
    register_model(name, family="p3d", min_input=min_input)(factory)


for _arch, (_title, _flags) in _ARCHS.items():
    for _depth, (_block, _layers) in _DEPTHS.items():
        _p3d_factory(
            f"{_arch}_resnet{_depth}",
            f"{_title} ResNet-{_depth}",
            {"block": _block, "layers": _layers, **_flags},
        )
    _p3d_factory(f"{_arch}_tiny", f"{_title} tiny (CPU demo)", {**TINY, **_flags})


@register_model(family="torchvision", min_input=(4, 32, 32))
def r3d_18(num_classes: int = 400) -> nn.Module:
    """torchvision R3D-18 (Tran et al. 2018), random init."""
    return tv_video.r3d_18(weights=None, num_classes=num_classes)


@register_model(family="torchvision", min_input=(4, 32, 32))
def mc3_18(num_classes: int = 400) -> nn.Module:
    """torchvision MC3-18 (Tran et al. 2018), random init."""
    return tv_video.mc3_18(weights=None, num_classes=num_classes)


@register_model(family="torchvision", min_input=(4, 32, 32))
def r2plus1d_18(num_classes: int = 400) -> nn.Module:
    """torchvision R(2+1)D-18 (Tran et al. 2018), random init."""
    return tv_video.r2plus1d_18(weights=None, num_classes=num_classes)


@register_model(family="torchvision", min_input=(8, 32, 32))
def s3d(num_classes: int = 400, dropout: float = 0.2, global_pool: bool = True) -> nn.Module:
    """torchvision S3D (Xie et al. 2018), random init.

    torchvision pools S3D's last feature map with a fixed 2×7×7 window, so only clips of
    at least 16×224×224 fit. With ``global_pool=True`` (default) that pool becomes a global
    average: identical at 16×224×224 (the map is exactly 2×7×7), and any clip of at least
    8×32×32 fits. ``global_pool=False`` keeps torchvision's module as is.
    """
    model = tv_video.s3d(weights=None, num_classes=num_classes, dropout=dropout)
    if global_pool:
        model.avgpool = nn.AdaptiveAvgPool3d(1)
    return model
