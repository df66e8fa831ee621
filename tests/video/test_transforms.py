"""Transforms: sizes, one random draw per clip, flip switch, three crops, normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from opplan.errors import ConfigError
from opplan.video.transforms import TransformConfig, build_transform, three_crop, to_video


def _clip(frames: int = 4, height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return np.repeat(image[None], frames, axis=0)  # identical frames


def test_default_config_is_the_paper():
    cfg = TransformConfig()
    assert cfg.scale_range == (256, 340) and cfg.crop_size == 224
    assert cfg.eval_short_side == 256 and cfg.test_crop_size == 256


def test_scaled_config_for_small_frames():
    cfg = TransformConfig.scaled(32, flip=False)
    assert cfg.scale_range == (37, 49) and cfg.crop_size == 32
    assert cfg.eval_short_side == 37 and cfg.test_crop_size == 37 and cfg.flip is False


def test_train_draws_random_parameters_once_per_clip():
    cfg = TransformConfig(
        scale_range=(40, 60), crop_size=32, eval_short_side=40, test_crop_size=40
    )
    transform = build_transform(cfg, "train")
    outputs = []
    for seed in range(8):
        torch.manual_seed(seed)
        out = transform(_clip())
        assert out.shape == (3, 4, 32, 32) and out.dtype == torch.float32
        # all frames were identical, so one shared crop/scale/flip keeps them identical
        for t in range(1, 4):
            torch.testing.assert_close(out[:, t], out[:, 0])
        outputs.append(out)
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])  # random across clips


def test_flip_can_be_disabled():
    image = np.zeros((2, 32, 32, 3), np.uint8)
    image[:, :, :16] = 255  # left half white
    cfg = TransformConfig(
        scale_range=(32, 32),
        crop_size=32,
        eval_short_side=32,
        test_crop_size=32,
        flip=False,
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    for seed in range(10):
        torch.manual_seed(seed)
        out = build_transform(cfg, "train")(image)
        assert out[0, 0, 0, 0] == 1.0 and out[0, 0, 0, -1] == 0.0
    cfg_flip = TransformConfig(**{**cfg.__dict__, "flip": True})
    flipped = 0
    for seed in range(20):
        torch.manual_seed(seed)
        flipped += int(build_transform(cfg_flip, "train")(image)[0, 0, 0, 0] == 0.0)
    assert 0 < flipped < 20


# no scale jitter, no normalization: outputs are the input pixels / 255
FIXED_48 = TransformConfig(
    scale_range=(48, 48),
    crop_size=32,
    eval_short_side=48,
    test_crop_size=48,
    mean=(0, 0, 0),
    std=(1, 1, 1),
)


def test_plan_eval_is_centre_crop_and_deterministic():
    cfg = FIXED_48
    clip = _clip()
    out = build_transform(cfg, "plan_eval")(clip)
    assert out.shape == (3, 4, 32, 32)
    # short side already 48 -> resize is identity; centre 32 crop of 48x64
    expected = torch.from_numpy(clip[0, 8:40, 16:48]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(out[:, 0], expected)
    torch.testing.assert_close(out, build_transform(cfg, "plan_eval")(clip))


def test_three_crops_cover_the_long_side():
    cfg = FIXED_48
    clip = _clip(2, 48, 64)
    lefts = []
    for index in range(3):
        out = build_transform(cfg, "test", crop_index=index)(clip)
        assert out.shape == (3, 2, 48, 48)
        for left in (0, 8, 16):
            ref = torch.from_numpy(clip[0, :, left : left + 48]).permute(2, 0, 1).float() / 255
            if torch.allclose(out[:, 0], ref):
                lefts.append(left)
    assert lefts == [0, 8, 16]
    video = to_video(_clip(1, 64, 40))  # portrait: crops move along the height
    assert three_crop(video, 40, 2).shape[-2:] == (40, 40)
    torch.testing.assert_close(three_crop(video, 40, 2), video[..., 24:64, :])


def test_normalization_values():
    cfg = TransformConfig(
        scale_range=(8, 8),
        crop_size=8,
        eval_short_side=8,
        test_crop_size=8,
        mean=(0.5, 0.25, 0.0),
        std=(0.5, 0.25, 2.0),
    )
    clip = np.full((3, 8, 8, 3), 255, np.uint8)
    out = build_transform(cfg, "plan_eval")(clip)
    torch.testing.assert_close(out[:, 0, 0, 0], torch.tensor([1.0, 3.0, 0.5]))


def test_bad_configs():
    with pytest.raises(ConfigError, match="crop_size"):
        TransformConfig(scale_range=(100, 120), crop_size=112)
    with pytest.raises(ConfigError, match="scale_range"):
        TransformConfig(scale_range=(300, 256))
    with pytest.raises(ConfigError, match="mode"):
        build_transform(TransformConfig(), "eval")  # type: ignore[arg-type]


def test_transforms_pickle_for_spawned_workers():
    import pickle

    cfg = TransformConfig.scaled(32)
    for mode in ("train", "plan_eval", "test"):
        transform = pickle.loads(pickle.dumps(build_transform(cfg, mode)))
        assert transform(_clip(2, 32, 32)).shape[:2] == (3, 2)
