"""The ``order`` task: the class is the order of three events spread over the whole video.

Like Something-Something (§5.1, §5.4 of the paper): a short consecutive window sees one event
at best, while uniform sampling (§3.1) covers the whole video and can read the order — so at
equal clip length uniform sampling should win.
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

__all__ = ["ORDER_CLASSES", "render_order"]

# Saturated event colours: red, green, blue, yellow (distractors are desaturated).
_EVENT_COLORS = np.array(
    [[230, 30, 30], [30, 210, 40], [40, 60, 235], [235, 220, 30]], dtype=np.float32
)
_NAMES = "RGBY"

# Ten ordered triples: all orders of R, G, B plus four that bring in yellow, so that no single
# event (what a short window sees) identifies the class.
ORDER_CLASSES: tuple[tuple[int, int, int], ...] = (
    (0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0),
    (3, 0, 1), (0, 3, 2), (1, 2, 3), (2, 3, 0),
)  # fmt: skip


def class_name(label: int) -> str:
    """Human-readable class name, e.g. ``"R-G-B"``."""
    return "-".join(_NAMES[i] for i in ORDER_CLASSES[label])


def render_order(rng: np.random.Generator, cfg: SceneConfig, label: int) -> np.ndarray:
    """Render one video of class ``label`` as uint8 (T, H, W, 3)."""
    num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    frames = render_background(rng, cfg, num_frames)
    render_distractors(rng, cfg, frames)
    # Three slots over the timeline with jittered borders; each event fills part of its slot.
    borders = np.sort(
        rng.uniform(0.28, 0.38, size=1).tolist() + rng.uniform(0.62, 0.72, 1).tolist()
    )
    edges = np.concatenate([[0.0], borders, [1.0]]) * num_frames
    size = cfg.size
    for slot, event in enumerate(ORDER_CLASSES[label]):
        lo, hi = edges[slot], edges[slot + 1]
        length = (hi - lo) * rng.uniform(0.4, 0.85)
        start = lo + rng.uniform(0, hi - lo - length)
        half = rng.uniform(2.0, 3.5) * cfg.scale
        alpha = rng.uniform(0.55, 0.9)
        pos = rng.uniform(half, size - half, size=2)
        vel = rng.uniform(-0.4, 0.4, size=2) * cfg.scale
        color = np.clip(_EVENT_COLORS[event] + rng.uniform(-35, 35, size=3), 0, 255)
        for t in range(int(start), int(start + length)):
            p = np.clip(pos + vel * (t - start), half, size - half)
            draw_box(frames[t], p[0], p[1], half, color, wrap=False, alpha=alpha)
    return finish(rng, cfg, frames)
