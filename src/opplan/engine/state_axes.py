"""The extra state axes the video trainer acts on (beyond the paper): ``size``.

``size`` is a state's spatial resolution, the side of its training and planning-evaluation
crop: the paper's 224/256/340 geometry scaled to it (:meth:`TransformConfig.scaled`, as
``data.frame_size`` does for the whole run), so a plan can start on small crops and grow
them the way it grows the clip (PySlowFast's multigrid fixes that schedule by hand; here
the planner chooses it). A state without ``size`` uses the run's transform unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from opplan.errors import ConfigError
from opplan.planning.state import TrainingState
from opplan.video.transforms import TransformConfig

__all__ = ["VIDEO_AXES", "at_size", "check_size", "state_key", "state_transform"]

VIDEO_AXES: tuple[str, ...] = ("size",)


def _size(state: TrainingState) -> int | None:
    value = dict(state.extra).get("size")
    return None if value is None else int(value)


def at_size(state: TrainingState, size: int) -> TrainingState:
    """``state`` with its ``size`` set to ``size`` (every other axis kept)."""
    rest = tuple(kv for kv in state.extra if kv[0] != "size")
    return replace(state, extra=(*rest, ("size", size)))


def state_key(state: TrainingState) -> tuple[str, int, int | None]:
    """What a state's clips depend on: sampling, clip length and size."""
    return state.sampling, state.clip_length, _size(state)


def state_transform(base: TransformConfig, state: TrainingState) -> TransformConfig:
    """``base`` at ``state``'s size: the geometry of :meth:`TransformConfig.scaled`, every
    other field (flip, normalization, modality, uint8) kept."""
    size = _size(state)
    if size is None:
        return base
    geometry = TransformConfig.scaled(size)
    return replace(
        base,
        scale_range=geometry.scale_range,
        crop_size=geometry.crop_size,
        eval_short_side=geometry.eval_short_side,
        test_crop_size=geometry.test_crop_size,
    )


def check_size(states: Iterable[TrainingState], where: str) -> None:
    """A ``size`` that is not a whole number of pixels (at least 8) is refused at start-up."""
    for state in states:
        value = dict(state.extra).get("size")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 8:
            raise ConfigError(
                f"{where}: state '{state}': size must be a whole number of pixels, at least 8, "
                f"got {value!r}"
            )
