"""Extra ordered axes of the paper's graphs (beyond the paper): spatial size, dropout, ...

§3.2 plans over sampling, clip length and learning rate. An :class:`ExtraAxis` adds one
more hyper-parameter that training moves through in order, the way it moves to longer
clips: training starts at the first value, a move takes one step to the next value with
everything else unchanged, and the final states hold the last value. With
``decrease_with_lr`` an axis also gets the extended graph's move for clips: one step back
*and* one step lower lr at once (e.g. a smaller crop at the lower learning rate).

Example:
    >>> from opplan.planning.graph import TransitionGraph
    >>> g = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1, 0.01],
    ...                           extra_axes=[ExtraAxis("size", [112, 160])])
    >>> len(g.states), [str(s) for s in g.finals]
    (8, ['uniform 16f lr=0.01 size=160'])
    >>> [str(s) for s in g.successors(g.initial)]
    ['uniform 8f lr=0.1 size=112', 'uniform 16f lr=0.1 size=112']
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opplan.errors import ConfigError
from opplan.planning.state import INITIAL, ExtraValue, TrainingState

__all__ = ["ExtraAxis", "as_axes", "grid_edges"]

_RESERVED = frozenset({"sampling", "clip_length", "lr", "initial"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Edge = tuple[TrainingState, TrainingState]


@dataclass(frozen=True)
class ExtraAxis:
    """One more ordered axis of a built graph.

    Args:
        name: the axis, as it appears in state names (``size`` in ``... size=160``).
        values: in the order training moves through them (the first is where it starts).
        decrease_with_lr: also move one step back together with one step lower lr.
    """

    name: str
    values: tuple[ExtraValue, ...]
    decrease_with_lr: bool = False

    def __init__(
        self, name: str, values: Sequence[ExtraValue], decrease_with_lr: bool = False
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "decrease_with_lr", bool(decrease_with_lr))
        self._check()

    def _check(self) -> None:
        where = f"extra axis {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(f"{where}: a name is letters, digits and '_' (e.g. size)")
        if self.name in _RESERVED:
            raise ConfigError(f"{where}: the name is taken by a state field; choose another")
        if not self.values:
            raise ConfigError(f"{where}: values must not be empty")
        if len(set(self.values)) != len(self.values):
            raise ConfigError(f"{where}: values have duplicates: {list(self.values)}")
        for value in self.values:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ConfigError(f"{where}: value {value!r} is not a number or a word")
            text = str(value)
            if isinstance(value, str) and (not text or " " in text or "=" in text):
                raise ConfigError(f"{where}: value {value!r} must be a word without '='")
            parsed = TrainingState.parse(f"uniform 1f lr=1 {self.name}={text}").extra[0][1]
            if type(parsed) is not type(value) or parsed != value:  # "112" would read as 112
                raise ConfigError(f"{where}: value {value!r} does not read back from its name")


def as_axes(
    extra_axes: Sequence[ExtraAxis] | Mapping[str, Sequence[ExtraValue]],
) -> tuple[ExtraAxis, ...]:
    """``[ExtraAxis, ...]`` or ``{"size": [112, 160]}`` (increase only) as axes."""
    if isinstance(extra_axes, Mapping):
        axes = tuple(ExtraAxis(name, values) for name, values in extra_axes.items())
    else:
        axes = tuple(extra_axes)
    names = [a.name for a in axes]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"extra axis {name!r} is given twice")
    return axes


def grid_edges(
    extended: bool,
    sampling: str,
    lengths: Sequence[int],
    lrs: Sequence[float],
    axes: Sequence[ExtraAxis] = (),
) -> tuple[list[Edge], TrainingState]:
    """The edges of one sampling's grid (§3.2 plus the extra axes) and its final state;
    ``lengths`` ascending, ``lrs`` descending. Without extra axes: the paper's graph."""
    shape = [len(lengths), len(lrs), *(len(a.values) for a in axes)]

    def state(index: tuple[int, ...]) -> TrainingState:
        extra = tuple((a.name, a.values[k]) for a, k in zip(axes, index[2:], strict=True))
        return TrainingState(sampling, lengths[index[0]], lrs[index[1]], extra)

    def step(index: tuple[int, ...], *moves: tuple[int, int]) -> tuple[int, ...] | None:
        out = list(index)
        for dim, delta in moves:
            out[dim] += delta
            if not 0 <= out[dim] < shape[dim]:
                return None
        return tuple(out)

    start = (0,) * len(shape)
    edges: list[Edge] = []
    for i in range(min(2, len(lengths))):  # "high learning rate and short input clips"
        edges.append((INITIAL, state((i, *start[1:]))))
    for index in itertools.product(*(range(n) for n in shape)):
        moves: list[tuple[tuple[int, int], ...]] = [((0, 1),), ((1, 1),)]
        if extended:
            moves.append(((0, -1), (1, 1)))
        for dim, axis in enumerate(axes, start=2):
            moves.append(((dim, 1),))
            if axis.decrease_with_lr:
                moves.append(((dim, -1), (1, 1)))
        for move in moves:
            target = step(index, *move)
            if target is not None:
                edges.append((state(index), state(target)))
    return edges, state(tuple(n - 1 for n in shape))
