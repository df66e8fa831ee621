"""The ``relay`` task: the class needs both the order of two events across the video and the
fast motion they share (beyond the paper's tasks; issue 20).

Two saturated boxes, red and green, appear one after the other (the first in the first ~40 %
of the video, the second in the last ~40 %, a gap between them), both moving up or both down
at 2 px/frame (at 32 px), wrapping around the frame. The class is (which colour comes first,
the direction): 4 classes, chance 25 %. A short consecutive window sees a box move but not
which came first (2 of 4 classes left: at most 50 %); a sparse uniform clip sees the order
but the motion aliases (8 frames of a 64-192-frame video are 8-24 frames apart: 16-48 px on
a 32-px wrap; 2 of 4 left). Above 50 % a network has to read both cues, which only long
clips show (32 uniform frames are 2-6 frames apart: 4-12 px) -- so the best strategy has to
grow the clip, and even 32 frames alias the motion of the longest videos (docs/results.md).

In a fraction ``RELAY_STILL`` (30 %) of the videos both boxes stand still: their direction
cannot be seen, as in the ambiguous clips of a real dataset, so even a network that reads
both cues tops out at 1 - 0.3 / 2 = 85 % and the task cannot saturate (an order-only network
still reaches 50 %, a motion-only one 0.7 * 50 + 0.3 * 25 = 42.5 %).
"""

from __future__ import annotations

import numpy as np

from opplan.video.synthetic._scene import (
    SceneConfig,
    draw_box,
    finish,
    render_background,
    render_distractors,
)

__all__ = ["RELAY_CLASSES", "RELAY_SPEED", "RELAY_STILL", "render_relay"]

_COLORS = np.array([[230, 30, 30], [30, 210, 40]], dtype=np.float32)  # red, green
_NAMES = "RG"
_DIRECTIONS = {-1: "up", 1: "down"}
RELAY_SPEED = 2.0  # pixels per frame at 32 px, +-15 % per video
RELAY_STILL = 0.3  # the fraction of videos whose boxes stand still (direction unseen)

# (first colour, direction); direction -1 = up, +1 = down, the same for both boxes
RELAY_CLASSES: tuple[tuple[int, int], ...] = tuple((first, d) for first in (0, 1) for d in (-1, 1))


def class_name(label: int) -> str:
    """Human-readable class name, e.g. ``"R-G-up"``."""
    first, direction = RELAY_CLASSES[label]
    return f"{_NAMES[first]}-{_NAMES[1 - first]}-{_DIRECTIONS[direction]}"


def render_relay(rng: np.random.Generator, cfg: SceneConfig, label: int) -> np.ndarray:
    """Render one video of class ``label`` as uint8 (T, H, W, 3)."""
    num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    frames = render_background(rng, cfg, num_frames)
    render_distractors(rng, cfg, frames)
    first, direction = RELAY_CLASSES[label]
    size = cfg.size
    speed = direction * RELAY_SPEED * rng.uniform(0.85, 1.15) * cfg.scale
    if rng.random() < RELAY_STILL:
        speed = 0.0  # an ambiguous video: the order shows, the direction does not
    slots = ((0.04, rng.uniform(0.40, 0.45)), (rng.uniform(0.55, 0.60), 0.96))
    for slot, colour in enumerate((first, 1 - first)):
        lo, hi = (x * num_frames for x in slots[slot])
        length = (hi - lo) * rng.uniform(0.8, 1.0)
        start = lo + rng.uniform(0, hi - lo - length)
        half = rng.uniform(2.5, 3.5) * cfg.scale
        alpha = rng.uniform(0.7, 0.9)
        pos = rng.uniform(0, size, size=2)
        vel = np.array([speed, rng.uniform(-0.1, 0.1) * cfg.scale])
        color = np.clip(_COLORS[colour] + rng.uniform(-30, 30, size=3), 0, 255)
        for t in range(int(start), int(start + length)):
            p = pos + vel * (t - start)
            draw_box(frames[t], p[0], p[1], half, color, wrap=True, alpha=alpha)
    return finish(rng, cfg, frames)
