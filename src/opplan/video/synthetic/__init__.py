"""Built-in synthetic video datasets, the embedded default (no download).

Procedurally generated tasks with opposite temporal character, so that the choice between
the paper's two samplings (§3.1) is a real question:

- ``order``: the class is the order of three events over the whole video (like
  Something-Something) — uniform sampling should win at equal clip length;
- ``tempo``: the class is a fast local motion (speed, direction, blink frequency; like
  Kinetics) that sparse uniform sampling aliases — consecutive sampling should win;
- ``relay``: the order of two events and the fast motion they share (beyond the paper) —
  neither sampling saturates with short clips.

Example:
    >>> from opplan.video.synthetic import generate_dataset
    >>> lists = generate_dataset("order", "/tmp/order", videos_per_class=2)  # doctest: +SKIP
"""

from __future__ import annotations

from opplan.video.synthetic._generate import (
    TASKS,
    SyntheticTask,
    generate_dataset,
    render_video,
)
from opplan.video.synthetic._scene import SceneConfig
from opplan.video.synthetic._writer import write_mp4

__all__ = [
    "TASKS",
    "SceneConfig",
    "SyntheticTask",
    "generate_dataset",
    "render_video",
    "write_mp4",
]
