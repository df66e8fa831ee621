"""Clip transforms (§5.2 of the paper), built on ``torchvision.transforms.v2``.

- train: short side resized to a random size in ``scale_range`` ([256, 340] in the paper),
  random ``crop_size`` (224) crop, horizontal flip (off for direction-sensitive datasets such
  as Something-Something);
- planning evaluation: short side ``eval_short_side`` (256), one centre ``crop_size`` crop;
- final test: short side ``eval_short_side``, three ``test_crop_size`` (256) crops along the
  long side (the three-crop protocol).

A clip is one ``tv_tensors.Video`` so every random parameter is drawn once per clip and shared
by all its frames. Output: float32 C x T x H x W, normalized with ``mean``/``std``.

Optical flow (``modality="flow"``, §5.5's flow stream): uint8 (T, H, W, 2) x/y frames, the
same resize and crops, normalised around 128 (``FLOW_MEAN``/``FLOW_STD``, MMAction2's); a
horizontal flip mirrors the frames and negates the x channel (``255 - x``, MMAction2's
``iminvert``: the quantised flow is symmetric about 127.5).

Example:
    >>> import numpy as np
    >>> cfg = TransformConfig.scaled(32)  # sizes for the 32-px synthetic data
    >>> clip = np.zeros((8, 32, 32, 3), np.uint8)
    >>> build_transform(cfg, "plan_eval")(clip).shape
    torch.Size([3, 8, 32, 32])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from opplan.errors import ConfigError

__all__ = [
    "FLOW_MEAN",
    "FLOW_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ClipTransform",
    "FlowFlip",
    "Mode",
    "TransformConfig",
    "build_transform",
    "normalize_clips",
    "three_crop",
    "to_video",
]

Mode = Literal["train", "plan_eval", "test"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FLOW_MEAN = (128 / 255, 128 / 255)
FLOW_STD = (128 / 255, 128 / 255)


@dataclass(frozen=True)
class TransformConfig:
    """Spatial sizes and normalization (defaults = the paper's §5.2 settings).

    Args:
        scale_range: (min, max) short side for training, both inclusive.
        crop_size: training and planning-evaluation crop.
        eval_short_side: short side for planning evaluation and final test.
        test_crop_size: crop of the three-crop test protocol.
        flip: random horizontal flip when training.
        mean: per-channel mean (0-1 scale).
        std: per-channel standard deviation (0-1 scale).
        modality: ``"rgb"`` (3 channels) or ``"flow"`` (2: x, y; flip negates x).
        uint8: the transforms end with uint8 (C, T, H, W) clips, a quarter of the bytes to
            move from the DataLoader workers; :func:`normalize_clips` then converts and
            normalizes them on the training device (the same arithmetic, the same bits on
            CPU).
    """

    scale_range: tuple[int, int] = (256, 340)
    crop_size: int = 224
    eval_short_side: int = 256
    test_crop_size: int = 256
    flip: bool = True
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    uint8: bool = False
    modality: Literal["rgb", "flow"] = "rgb"

    def __post_init__(self) -> None:
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ConfigError(f"scale_range must satisfy 0 < min <= max, got {self.scale_range}")
        if self.crop_size > lo or self.crop_size > self.eval_short_side:
            raise ConfigError(
                f"crop_size {self.crop_size} exceeds the smallest short side "
                f"(scale_range {self.scale_range}, eval_short_side {self.eval_short_side})"
            )
        if self.test_crop_size > self.eval_short_side:
            raise ConfigError(
                f"test_crop_size {self.test_crop_size} exceeds eval_short_side "
                f"{self.eval_short_side}"
            )
        if self.modality not in ("rgb", "flow"):
            raise ConfigError(f"modality must be 'rgb' or 'flow', got {self.modality!r}")
        n = self.channels
        if len(self.mean) != n or len(self.std) != n or min(self.std) <= 0:
            raise ConfigError(
                f"mean/std need {n} values ({self.modality}) and std > 0, got {self.mean}, "
                f"{self.std}"
            )

    @property
    def channels(self) -> int:
        """Input channels of a clip: 3 (RGB) or 2 (flow x, y)."""
        return 2 if self.modality == "flow" else 3

    @classmethod
    def scaled(cls, frame_size: int, **overrides: object) -> TransformConfig:
        """The paper's geometry scaled to frames of side ``frame_size`` (crop = frame size).

        For 32-px frames: scale_range (37, 49), crop 32, eval short side 37, test crop 37.
        """
        ratio = frame_size / 224
        short = round(256 * ratio)
        fields: dict[str, Any] = {
            "scale_range": (short, round(340 * ratio)),
            "crop_size": frame_size,
            "eval_short_side": short,
            "test_crop_size": short,
        }
        fields.update(overrides)
        return cls(**fields)


def to_video(frames: np.ndarray | torch.Tensor) -> tv_tensors.Video:
    """uint8 (T, H, W, C) frames -> ``tv_tensors.Video`` (T, C, H, W); C = 3 (RGB) or 2
    (flow x, y)."""
    tensor = torch.as_tensor(frames)
    if tensor.ndim != 4 or tensor.shape[-1] not in (2, 3):
        raise ValueError(
            f"expected frames (T, H, W, 3) or (T, H, W, 2), got {tuple(tensor.shape)}"
        )
    return tv_tensors.Video(tensor.permute(0, 3, 1, 2))


def three_crop(video: torch.Tensor, size: int, index: int) -> torch.Tensor:
    """Crop ``size`` x ``size`` at the start (0), centre (1) or end (2) of the long side."""
    height, width = video.shape[-2:]
    if size > min(height, width):
        raise ValueError(f"crop {size} larger than frames {height}x{width}")
    top, left = (height - size) // 2, (width - size) // 2
    if width >= height:
        left = (0, left, width - size)[index]
    else:
        top = (0, top, height - size)[index]
    return F.crop(video, top, left, size, size)


class FlowFlip(torch.nn.Module):
    """Random horizontal flip of a uint8 flow clip (T, 2, H, W): mirrored, and the x channel
    negated (``255 - x``), so the flow still describes the flipped motion."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() >= self.p:
            return video
        flipped: torch.Tensor = F.horizontal_flip(video)
        flipped[:, 0] = 255 - flipped[:, 0]
        return flipped


class _Finish(torch.nn.Module):
    """uint8 (T, C, H, W) -> normalized float (C, T, H, W)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.steps = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.steps(video).as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


class _Layout(torch.nn.Module):
    """uint8 (T, C, H, W) -> uint8 (C, T, H, W): the float steps are left to the device."""

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


def normalize_clips(
    clips: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 clips (C, T, H, W) or (N, C, T, H, W), on any device -> normalized float32:
    torchvision's ``ToDtype(scale=True)`` then ``Normalize``, operation for operation."""
    shape = (-1, 1, 1, 1) if clips.ndim == 4 else (1, -1, 1, 1, 1)
    out = clips.to(torch.float32).mul_(1.0 / 255)
    m = torch.as_tensor(mean, dtype=torch.float32, device=clips.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=clips.device).view(shape)
    return out.sub_(m).div_(s)


class _ThreeCrop(torch.nn.Module):
    """Short-side resize, then crop ``index`` of the three-crop protocol."""

    def __init__(self, short_side: int, size: int, index: int) -> None:
        super().__init__()
        self.resize = v2.Resize(short_side, antialias=True)
        self.size, self.index = size, index

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return three_crop(self.resize(video), self.size, self.index)


class ClipTransform(torch.nn.Module):
    """uint8 frames (T, H, W, 3) -> float (C, T, H, W); picklable for DataLoader workers."""

    def __init__(self, spatial: torch.nn.Module, finish: torch.nn.Module) -> None:
        super().__init__()
        self.spatial, self.finish = spatial, finish

    def forward(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.finish(self.spatial(to_video(frames)))


def build_transform(cfg: TransformConfig, mode: Mode, *, crop_index: int = 1) -> ClipTransform:
    """The frame transform for ``mode``: uint8 (T, H, W, 3) -> float (C, T, H, W).

    Args:
        cfg: sizes and normalization.
        mode: ``"train"``, ``"plan_eval"`` or ``"test"``.
        crop_index: which of the three test crops (0, 1, 2), for ``mode="test"``.
    """
    spatial: torch.nn.Module
    if mode == "train":
        steps: list[torch.nn.Module] = [
            v2.RandomResize(cfg.scale_range[0], cfg.scale_range[1] + 1, antialias=True),
            v2.RandomCrop(cfg.crop_size),
        ]
        if cfg.flip:
            steps.append(FlowFlip() if cfg.modality == "flow" else v2.RandomHorizontalFlip())
        spatial = v2.Compose(steps)
    elif mode == "plan_eval":
        spatial = v2.Compose(
            [v2.Resize(cfg.eval_short_side, antialias=True), v2.CenterCrop(cfg.crop_size)]
        )
    elif mode == "test":
        if crop_index not in (0, 1, 2):
            raise ConfigError(f"crop_index must be 0, 1 or 2, got {crop_index}")
        spatial = _ThreeCrop(cfg.eval_short_side, cfg.test_crop_size, crop_index)
    else:
        raise ConfigError(f"mode must be 'train', 'plan_eval' or 'test', got {mode!r}")
    return ClipTransform(spatial, _Layout() if cfg.uint8 else _Finish(cfg.mean, cfg.std))
