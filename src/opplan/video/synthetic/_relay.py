"""The ``relay`` task: the class needs both the order of two events across the video and the
fast motion of each (beyond the paper's tasks; issue 20).

Two saturated boxes, red and green, appear one after the other (the first in the first ~45 %
of the video, the second in the last ~45 %, a gap between them) and each moves fast up or
down, wrapping around the frame. The class is (which colour comes first, the first box's
direction, the second box's direction): 8 classes. A short consecutive window sees one box
move but not which came first (even averaged over the test's clips: 2 of 8 classes left);
a sparse uniform clip sees the order but the motion aliases (frames 8-24 apart see the box
at unrelated places: 4 of 8 left). Only clips that are both long and spread over the video
see both -- so neither sampling saturates with short clips, and the best strategy has to
grow the clip.
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

__all__ = ["RELAY_CLASSES", "render_relay"]

_COLORS = np.array([[230, 30, 30], [30, 210, 40]], dtype=np.float32)  # red, green
_NAMES = "RG"
_SPEED = 2.0  # pixels per frame at 32 px: 16-48 px (aliased) between 8 uniform frames

# (first colour, first direction, second direction); direction -1 = up, +1 = down
RELAY_CLASSES: tuple[tuple[int, int, int], ...] = tuple(
    (first, d1, d2) for first in (0, 1) for d1 in (-1, 1) for d2 in (-1, 1)
)


def class_name(label: int) -> str:
    """Human-readable class name, e.g. ``"R-up_G-down"``."""
    first, d1, d2 = RELAY_CLASSES[label]
    word = {-1: "up", 1: "down"}
    return f"{_NAMES[first]}-{word[d1]}_{_NAMES[1 - first]}-{word[d2]}"


def render_relay(rng: np.random.Generator, cfg: SceneConfig, label: int) -> np.ndarray:
    """Render one video of class ``label`` as uint8 (T, H, W, 3)."""
    num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    frames = render_background(rng, cfg, num_frames)
    render_distractors(rng, cfg, frames)
    first, d1, d2 = RELAY_CLASSES[label]
    size = cfg.size
    slots = ((0.05, rng.uniform(0.40, 0.46)), (rng.uniform(0.54, 0.60), 0.95))
    for slot, (colour, direction) in enumerate(((first, d1), (1 - first, d2))):
        lo, hi = (x * num_frames for x in slots[slot])
        length = (hi - lo) * rng.uniform(0.75, 1.0)
        start = lo + rng.uniform(0, hi - lo - length)
        half = rng.uniform(2.0, 3.0) * cfg.scale
        alpha = rng.uniform(0.6, 0.9)
        pos = rng.uniform(0, size, size=2)
        vel = np.array([direction * _SPEED * rng.uniform(0.85, 1.15), rng.uniform(-0.1, 0.1)])
        vel *= cfg.scale
        color = np.clip(_COLORS[colour] + rng.uniform(-30, 30, size=3), 0, 255)
        for t in range(int(start), int(start + length)):
            p = pos + vel * (t - start)
            draw_box(frames[t], p[0], p[1], half, color, wrap=True, alpha=alpha)
    return finish(rng, cfg, frames)
