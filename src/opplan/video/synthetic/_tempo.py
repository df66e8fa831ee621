"""The ``tempo`` task: the class is a fast local motion (speed, direction, blink frequency).

Like Kinetics (§5.4 of the paper): the target moves fast and wraps around the frame, so frames
far apart (sparse uniform sampling, §3.1) see it at unrelated places — the motion aliases —
while a consecutive clip sees it move. Consecutive sampling should win at equal clip length.
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

__all__ = ["TEMPO_CLASSES", "render_tempo"]

# (kind, parameter): "up"/"down"/"horizontal" move at `parameter` pixels per frame (at 32 px);
# "blink" stays nearly still and blinks with a period of `parameter` frames. Horizontal
# motion is left or right at random, so the classes survive a horizontal flip.
TEMPO_CLASSES: tuple[tuple[str, float], ...] = (
    ("up", 1.0), ("up", 2.0), ("up", 3.5),
    ("down", 1.0), ("down", 2.0), ("down", 3.5),
    ("horizontal", 1.0), ("horizontal", 3.0),
    ("blink", 2.0), ("blink", 6.0),
)  # fmt: skip


def class_name(label: int) -> str:
    """Human-readable class name, e.g. ``"up-2px"``."""
    kind, value = TEMPO_CLASSES[label]
    return f"{kind}-{value:g}" + ("f" if kind == "blink" else "px")


def render_tempo(rng: np.random.Generator, cfg: SceneConfig, label: int) -> np.ndarray:
    """Render one video of class ``label`` as uint8 (T, H, W, 3)."""
    num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    frames = render_background(rng, cfg, num_frames)
    render_distractors(rng, cfg, frames)
    kind, value = TEMPO_CLASSES[label]
    size = cfg.size
    half = rng.uniform(2.0, 3.0) * cfg.scale
    color = np.clip(rng.uniform(215, 255) + rng.uniform(-20, 20, size=3), 0, 255)
    alpha = rng.uniform(0.6, 0.9)
    pos = rng.uniform(0, size, size=2)
    jitter = rng.uniform(0.88, 1.12)  # speed / period jitter
    if kind == "blink":
        vel = rng.uniform(-0.15, 0.15, size=2) * cfg.scale
        period = value * jitter
        phase = rng.uniform(0, period)
    else:
        speed = value * jitter * cfg.scale
        sign = -1.0 if kind == "up" or (kind == "horizontal" and rng.random() < 0.5) else 1.0
        axis = 1 if kind == "horizontal" else 0
        vel = np.zeros(2)
        vel[axis] = sign * speed
        vel[1 - axis] = rng.uniform(-0.1, 0.1) * cfg.scale
    for t in range(num_frames):
        if kind == "blink" and ((t + phase) % period) >= period / 2:
            continue
        p = pos + vel * t
        draw_box(frames[t], p[0], p[1], half, color, wrap=True, alpha=alpha)
    return finish(rng, cfg, frames)
