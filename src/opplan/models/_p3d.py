"""P3D, G-P3D and DG-P3D ResNets (paper §4, Fig. 3).

One class, :class:`P3DResNet`, builds the three networks of the paper:

* **P3D** — a ResNet whose 3×3 convolutions are P3D-A blocks (``block_pattern="A"``) or the
  cycle P3D-A/B/C of Qiu et al. 2017 (``block_pattern="ABC"``);
* **G-P3D** — plus a global-context residual in every block (``global_context=True``);
* **DG-P3D** — plus the dual-head classifier (``dual_head=True``).

Data flow for a 3×16×224×224 clip and the ResNet-50 depth (Fig. 3)::

    stem: conv 4×7×7 stride (4,2,2) → BN → ReLU → max pool 1×3×3 stride (1,2,2)   64×4×56×56
    res2                                                                        256×4×56×56
    res3 (spatial stride 2)                                                     512×4×28×28
    res4 (spatial stride 2)                                                    1024×4×14×14
    ├─ temporal head: res5 (spatial stride 2)              2048×4×7×7  → GAP → dropout → FC
    └─ spatial head:  max pool over time (k = s = 4)       1024×1×14×14
                      → spatial_res5 (stride 1)            2048×1×14×14 → GAP → dropout → FC

The output contract (a logits ``Tensor`` or :class:`~opplan.models.DualHeadLogits`) is
described in :mod:`opplan.models`. Module names mirror torchvision's ResNet (``res2`` ↔
``layer1`` …) so that :mod:`opplan.models.inflate` can load 2D ImageNet weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from opplan.models._blocks import BasicBlock, Bottleneck, P3DPattern
from opplan.models._frozen_bn import freeze_bn
from opplan.models._global_context import GlobalContext
from opplan.models._heads import (
    ClassifierHead,
    DualHeadFeatures,
    DualHeadLogits,
    ModelOutput,
)

__all__ = ["P3DResNet", "P3DStem"]

BlockKind = Literal["basic", "bottleneck"]
_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}
STAGE_NAMES = ("res2", "res3", "res4", "res5")


class P3DStem(nn.Module):
    """Stem of Fig. 3: conv k_t×7×7 with temporal stride s_t → BN → ReLU → 1×3×3 max pool.

    Args:
        in_channels: input channels (3 for RGB).
        out_channels: stem width (64 for the ResNets).
        kernel_t: temporal kernel of the conv (4 in the paper).
        stride_t: temporal stride of the conv (4 in the paper).
        stride: spatial stride of the conv (2).
        pool: whether to apply the 1×3×3 max pool with spatial stride 2.
        kernel: spatial kernel of the conv (7 in the paper).
        pool_t: temporal kernel and stride of the max pool (1 in the paper: the pool is 1×3×3).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 64,
        kernel_t: int = 4,
        stride_t: int = 4,
        stride: int = 2,
        pool: bool = True,
        kernel: int = 7,
        pool_t: int = 1,
    ) -> None:
        super().__init__()
        pad_t = max(kernel_t - stride_t, 0) // 2
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            (kernel_t, kernel, kernel),
            (stride_t, stride, stride),
            (pad_t, kernel // 2, kernel // 2),
            bias=False,
        )
        self.bn = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True)
        self.pool = (
            nn.MaxPool3d((pool_t, 3, 3), (pool_t, 2, 2), (0, 1, 1)) if pool else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class P3DResNet(nn.Module):
    """The P3D / G-P3D / DG-P3D ResNet family (§4).

    Args:
        num_classes: classes of the classifier(s); 0 returns pooled features.
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50/101/152).
        layers: blocks per stage res2..res5.
        widths: inner width (planes) per stage; outputs are ``expansion`` times wider.
        stem_width: channels of the stem convolution.
        stem_kernel_t: temporal kernel of the stem convolution (4 in Fig. 3).
        stem_stride_t: temporal stride of the stem convolution (4 in Fig. 3).
        stem_stride: spatial stride of the stem convolution (2).
        stem_pool: apply the stem's 1×3×3 max pool (spatial stride 2).
        stem_kernel: spatial kernel of the stem convolution (7).
        stem_pool_t: temporal kernel and stride of the stem's max pool (1).
        block_pattern: ``"A"`` (the paper) or ``"ABC"`` (cycle P3D-A/B/C over all blocks).
        global_context: G-P3D's global-context residual in every block.
        dual_head: DG-P3D's temporal and spatial heads (otherwise one head after res5).
        spatial_pool_t: kernel and stride of the spatial head's temporal max pool (4); clipped
            to the clip's temporal size at run time, so short clips never pool to zero frames.
        drop_rate: dropout before each FC.
        in_channels: input channels.
        zero_init_last: zero the last BN of every residual branch (blocks start as identity).
        avg_down: ResNet-D projection shortcuts (1×2×2 average pool, then the 1×1×1 conv) instead
            of a strided 1×1×1 conv, which reads a quarter of the positions; the tiny variants
            need it (see :mod:`opplan.models._zoo`).
        frozen_bn: freeze every BN but the first (§5.2), see :func:`opplan.models.freeze_bn`.

    Example:
        >>> import torch
        >>> net = P3DResNet(5, block="basic", layers=(1, 1, 1, 1), widths=(8, 8, 16, 16),
        ...                 stem_width=8, stem_kernel_t=2, stem_stride_t=2, dual_head=True)
        >>> out = net(torch.randn(2, 3, 8, 32, 32))
        >>> out.temporal.shape, out.spatial.shape
        (torch.Size([2, 5]), torch.Size([2, 5]))
    """

    def __init__(
        self,
        num_classes: int = 400,
        *,
        block: BlockKind = "bottleneck",
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_width: int = 64,
        stem_kernel_t: int = 4,
        stem_stride_t: int = 4,
        stem_stride: int = 2,
        stem_pool: bool = True,
        stem_kernel: int = 7,
        stem_pool_t: int = 1,
        block_pattern: Literal["A", "ABC"] = "A",
        global_context: bool = False,
        dual_head: bool = False,
        spatial_pool_t: int = 4,
        drop_rate: float = 0.5,
        in_channels: int = 3,
        zero_init_last: bool = True,
        avg_down: bool = False,
        frozen_bn: bool = False,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {block!r}")
        if block_pattern not in ("A", "ABC"):
            raise ValueError(f"block_pattern must be 'A' or 'ABC', got {block_pattern!r}")
        if len(layers) != 4 or len(widths) != 4 or min(layers) < 1 or min(widths) < 1:
            raise ValueError(
                f"layers and widths need 4 positive entries (res2..res5), got "
                f"layers={tuple(layers)}, widths={tuple(widths)}"
            )
        if spatial_pool_t < 1:
            raise ValueError(f"spatial_pool_t must be >= 1, got {spatial_pool_t}")
        if stem_kernel < 1 or stem_kernel % 2 == 0:
            raise ValueError(f"stem_kernel must be odd and >= 1, got {stem_kernel}")
        if stem_pool_t < 1:
            raise ValueError(f"stem_pool_t must be >= 1, got {stem_pool_t}")
        block_cls = _BLOCKS[block]
        self.block_pattern = block_pattern
        self.global_context = global_context
        self.dual_head = dual_head
        self.spatial_pool_t = spatial_pool_t
        self.drop_rate = drop_rate
        self.avg_down = avg_down
        self.stem = P3DStem(
            in_channels,
            stem_width,
            stem_kernel_t,
            stem_stride_t,
            stem_stride,
            stem_pool,
            stem_kernel,
            stem_pool_t,
        )
        channels = stem_width
        start = 0  # index of the next block in the A/B/C cycle (over the whole network)
        stages: list[nn.Sequential] = []
        for i, (depth, planes) in enumerate(zip(layers[:3], widths[:3], strict=True)):
            stage, channels = self._make_stage(
                block_cls, channels, planes, depth, 1 if i == 0 else 2, start
            )
            stages.append(stage)
            start += depth
        self.res2, self.res3, self.res4 = stages
        self.res5, self.num_features = self._make_stage(
            block_cls, channels, widths[3], layers[3], 2, start
        )
        self.head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.spatial_res5: nn.Sequential | None = None
        self.spatial_head: ClassifierHead | None = None
        if dual_head:
            # §4: the spatial head keeps res4's 14×14 — a second res5 with spatial stride 1.
            self.spatial_res5, _ = self._make_stage(
                block_cls, channels, widths[3], layers[3], 1, start
            )
            self.spatial_head = ClassifierHead(self.num_features, num_classes, drop_rate)
        self.init_weights(zero_init_last=zero_init_last)
        if frozen_bn:
            freeze_bn(self)

    def _make_stage(
        self,
        block_cls: type[BasicBlock] | type[Bottleneck],
        in_channels: int,
        planes: int,
        depth: int,
        stride: int,
        start: int,
    ) -> tuple[nn.Sequential, int]:
        blocks = []
        for j in range(depth):
            pattern: P3DPattern = (
                "A" if self.block_pattern == "A" else ("A", "B", "C")[(start + j) % 3]
            )
            first_stride = stride if j == 0 else 1
            blocks.append(
                block_cls(
                    in_channels, planes, first_stride, pattern, self.global_context, self.avg_down
                )
            )
            in_channels = planes * block_cls.expansion
        return nn.Sequential(*blocks), in_channels

    def init_weights(self, zero_init_last: bool = True) -> None:
        """Kaiming-normal convolutions, unit BN, zero global-context output (§4)."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if zero_init_last and isinstance(m, BasicBlock | Bottleneck):
                m.zero_init_last()
            if isinstance(m, GlobalContext):
                m.reset_parameters()
        self.head.reset(self.head.num_classes)
        if self.spatial_head is not None:
            self.spatial_head.reset(self.spatial_head.num_classes)

    # -- timm-style model contract ------------------------------------------------------------

    def forward_intermediates(self, x: Tensor) -> dict[str, Tensor]:
        """Every stage's output: ``stem``, ``res2``..``res5`` and, for DG-P3D,
        ``spatial_pool`` (res4 max-pooled over time) and ``spatial_res5``."""
        feats: dict[str, Tensor] = {"stem": self.stem(x)}
        h = feats["stem"]
        for name in STAGE_NAMES:
            h = getattr(self, name)(h)
            feats[name] = h
        if self.spatial_res5 is not None:
            res4 = feats["res4"]
            k = min(self.spatial_pool_t, res4.shape[2])
            feats["spatial_pool"] = nn.functional.max_pool3d(res4, (k, 1, 1), (k, 1, 1))
            feats["spatial_res5"] = self.spatial_res5(feats["spatial_pool"])
        return feats

    def forward_features(self, x: Tensor) -> Tensor | DualHeadFeatures:
        """The feature map(s) entering the head(s): res5's output, or both heads' inputs."""
        feats = self.forward_intermediates(x)
        if self.spatial_res5 is None:
            return feats["res5"]
        return DualHeadFeatures(feats["res5"], feats["spatial_res5"])

    def forward_head(
        self, x: Tensor | DualHeadFeatures, pre_logits: bool = False
    ) -> Tensor | DualHeadLogits:
        """Pool → dropout → FC on each head's features (``pre_logits``: pooled features)."""
        if isinstance(x, Tensor):
            return self.head(x, pre_logits)
        assert self.spatial_head is not None, "a single-head model got dual-head features"
        return DualHeadLogits(
            self.head(x.temporal, pre_logits), self.spatial_head(x.spatial, pre_logits)
        )

    def forward(self, x: Tensor) -> ModelOutput:
        """Logits (N, K), or :class:`DualHeadLogits` for DG-P3D (train and eval alike)."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The FC layer(s): one ``Linear``, or a ``ModuleList`` (temporal, spatial)."""
        if self.spatial_head is None:
            return self.head.fc
        return nn.ModuleList([self.head.fc, self.spatial_head.fc])

    def reset_classifier(self, num_classes: int) -> None:
        """Re-initialise every head's FC for ``num_classes`` (fine-tuning to a new dataset)."""
        self.head.reset(num_classes)
        if self.spatial_head is not None:
            self.spatial_head.reset(num_classes)

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def extra_repr(self) -> str:
        return (
            f"block_pattern={self.block_pattern!r}, global_context={self.global_context}, "
            f"dual_head={self.dual_head}"
        )
