"""Shared scene pieces of the synthetic tasks: textured moving background, distractors, noise.

The distractors make the built-in tasks hard enough that a small 3D network needs tens of
epochs and can overfit (the issue's stand-in for the curves of Fig. 2 in §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SceneConfig", "draw_box", "finish", "render_background", "render_distractors"]


@dataclass(frozen=True)
class SceneConfig:
    """Knobs shared by the synthetic tasks.

    Args:
        size: frame height and width in pixels (even, 32-64 is the intended range).
        min_frames: shortest video.
        max_frames: longest video.
        num_distractors: (min, max) moving distractor objects per video.
        noise_std: standard deviation of the per-pixel Gaussian noise (0-255 scale).
        background_contrast: amplitude of the background texture (0-255 scale).
    """

    size: int = 32
    min_frames: int = 64
    max_frames: int = 192
    num_distractors: tuple[int, int] = (2, 4)
    noise_std: float = 12.0
    background_contrast: float = 45.0

    @property
    def scale(self) -> float:
        """Length scale relative to the 32-pixel reference design."""
        return self.size / 32.0


def _smooth_texture(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A periodic smooth texture in [-1, 1] of shape (size, size, 3)."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells, cells, 3))
    # Periodic bilinear upsampling (wrap) so that the texture can drift without seams.
    pos = np.arange(size) * cells / size
    lo = np.floor(pos).astype(int)
    hi = (lo + 1) % cells
    frac = (pos - lo)[:, None]
    rows = coarse[lo] * (1 - frac[..., None]) + coarse[hi] * frac[..., None]
    cols = rows[:, lo] * (1 - frac[None, :, :]) + rows[:, hi] * frac[None, :, :]
    return cols


def render_background(rng: np.random.Generator, cfg: SceneConfig, num_frames: int) -> np.ndarray:
    """A drifting colour texture, float32 (T, H, W, 3) in 0-255."""
    size = cfg.size
    texture = _smooth_texture(rng, 2 * size, int(rng.integers(4, 9)))
    base = rng.uniform(70, 130, size=3)
    velocity = rng.uniform(-0.6, 0.6, size=2) * cfg.scale
    offset = rng.uniform(0, 2 * size, size=2)
    frames = np.empty((num_frames, size, size, 3), dtype=np.float32)
    for t in range(num_frames):
        dy, dx = (offset + velocity * t).astype(int) % (2 * size)
        rolled = np.roll(texture, (-dy, -dx), axis=(0, 1))[:size, :size]
        frames[t] = base + cfg.background_contrast * rolled
    return frames


def draw_box(
    frame: np.ndarray,
    cy: float,
    cx: float,
    half: float,
    color: np.ndarray,
    wrap: bool,
    alpha: float = 1.0,
) -> None:
    """Blend a filled square centred at (cy, cx) in place (toroidal when ``wrap``)."""
    size = frame.shape[0]
    h = max(1, round(half))
    ys = np.arange(round(cy) - h, round(cy) + h)
    xs = np.arange(round(cx) - h, round(cx) + h)
    if wrap:
        ys, xs = ys % size, xs % size
    else:
        ys, xs = ys[(ys >= 0) & (ys < size)], xs[(xs >= 0) & (xs < size)]
    region = np.ix_(ys, xs)
    frame[region] = alpha * color + (1.0 - alpha) * frame[region]


def render_distractors(rng: np.random.Generator, cfg: SceneConfig, frames: np.ndarray) -> None:
    """Desaturated squares drifting and bouncing over the scene (in place)."""
    num_frames, size = frames.shape[0], cfg.size
    count = int(rng.integers(cfg.num_distractors[0], cfg.num_distractors[1] + 1))
    for _ in range(count):
        grey = rng.uniform(30, 180)
        color = np.clip(grey + rng.uniform(-45, 45, size=3), 0, 255)
        half = rng.uniform(1.5, 3.5) * cfg.scale
        pos = rng.uniform(half, size - half, size=2)
        vel = rng.uniform(-1.0, 1.0, size=2) * cfg.scale
        visible_from = int(rng.integers(0, num_frames // 2))
        visible_to = int(rng.integers(num_frames // 2, num_frames + 1))
        for t in range(num_frames):
            pos = pos + vel
            for axis in range(2):  # bounce on the borders
                if not half <= pos[axis] <= size - half:
                    vel[axis] = -vel[axis]
                    pos[axis] = np.clip(pos[axis], half, size - half)
            if visible_from <= t < visible_to:
                draw_box(frames[t], pos[0], pos[1], half, color, wrap=False, alpha=0.8)


def finish(rng: np.random.Generator, cfg: SceneConfig, frames: np.ndarray) -> np.ndarray:
    """Add sensor noise and quantize to uint8 (T, H, W, 3)."""
    noisy = frames + rng.normal(0.0, cfg.noise_std, size=frames.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)
