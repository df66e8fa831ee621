"""Planning your own training loop in one call: start a plan, or resume the one in a folder.

:func:`plan` is ``opplan.plan``. A run directory holds one plan: opening it replays its
journal (``journal.jsonl``), so a plan cut by a crash or Ctrl-C continues where it stopped
and never starts over or journals a second plan beside the first. Another graph or other
planner options in the same folder are refused (:class:`~opplan.errors.RunDirError`), as
the CLI refuses another config.

Example:
    >>> import tempfile
    >>> from opplan.planning import TransitionGraph
    >>> from opplan.planning.simulate import SimulatedTrainer
    >>> run = tempfile.mkdtemp()
    >>> graph = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1, 0.01])
    >>> result = plan(graph, SimulatedTrainer(f"{run}/checkpoints"), run, delay=3, max_epochs=30)
    >>> str(result.best_final_state)
    'uniform 16f lr=0.01'
    >>> again = plan(graph, SimulatedTrainer(f"{run}/checkpoints"), run, delay=3, max_epochs=30)
    >>> again.to_dict() == result.to_dict()  # the finished plan, read back, nothing retrained
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opplan.errors import ConfigError, RunDirError
from opplan.planning.executors import Executor, LocalExecutor
from opplan.planning.graph import TransitionGraph
from opplan.planning.journal import Journal, Op, read_journal
from opplan.planning.plan import Plan
from opplan.planning.progress import PlanState
from opplan.planning.protocol import Trainer, unused_axes

if TYPE_CHECKING:
    from opplan.planning.planner import Planner, PlannerCallback, PlannerOptions

__all__ = ["as_executor", "missing_methods", "open_planner", "plan", "plan_identity"]

# options that change no decision of a replayed plan: a resume may change them
_COSMETIC = frozenset({"keep_checkpoints", "max_retries"})
_PROTOCOL = ("start", "resume", "train_epoch", "evaluate", "save", "release")


def plan(
    graph: TransitionGraph,
    runner: Trainer | Executor,
    run_dir: str | os.PathLike[str],
    *,
    callbacks: Sequence[PlannerCallback] = (),
    **options: Any,
) -> Plan:
    """Plan ``graph`` with ``runner`` in ``run_dir``, or continue the plan already there.

    Args:
        graph: the candidate transitions (:meth:`TransitionGraph.build` or ``from_edges``).
        runner: a trainer implementing :class:`~opplan.planning.Trainer` (run here, one
            transition after another), or an executor (e.g.
            :class:`~opplan.planning.executors.RayExecutor`, closed by the caller).
        run_dir: the plan's folder: ``journal.jsonl``, then ``plan.json`` and ``recipe.yaml``.
        callbacks: progress hooks (:class:`~opplan.planning.PlannerCallback`).
        **options: :class:`~opplan.planning.PlannerOptions` fields (``delay=10``, ...).

    Returns:
        The plan (also written to ``run_dir``); a finished plan is read back untouched.
    """
    from opplan.planning.planner import PlannerOptions

    fields = {f.name for f in dataclasses.fields(PlannerOptions)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(
            f"opplan.plan: unknown option {unknown[0]!r} (options: {', '.join(sorted(fields))})"
        )
    with open_planner(
        run_dir, graph, runner, options=PlannerOptions(**options), callbacks=callbacks
    ) as planner:
        result = planner.run()
    result.write(Path(run_dir))
    return result


def open_planner(
    run_dir: str | os.PathLike[str],
    graph: TransitionGraph,
    runner: Trainer | Executor,
    *,
    options: PlannerOptions | None = None,
    callbacks: Sequence[PlannerCallback] = (),
) -> Planner:
    """:meth:`Planner.open`: a planner on ``run_dir``'s journal, replayed if there is one.

    The planner holds the run directory's lock until it is closed (use it in ``with``).
    """
    from opplan.planning.planner import Planner, PlannerOptions

    options = options or PlannerOptions()
    root = Path(run_dir)
    identity = plan_identity(graph, options)
    journal = Journal(root / "journal.jsonl")  # takes the lock, cuts a torn last line
    try:
        events = read_journal(journal.path)
        progress = PlanState.replay(events) if events else PlanState()
        if events:
            _check_same_plan(root, events, identity)
        if not isinstance(runner, Executor):  # an executor's trainers are built elsewhere
            unused = unused_axes(runner, graph.states)
            if unused:
                raise ConfigError(
                    f"trainer {type(runner).__name__} does not act on extra axis {unused[0]!r} "
                    f"of the graph's states (its extra_axes: "
                    f"{sorted(getattr(runner, 'extra_axes', ()))}); it would train the same "
                    "thing under two labels"
                )
        return Planner(
            graph,
            None,
            journal,
            options,
            config_hash=_digest(identity),
            callbacks=callbacks,
            progress=progress,
            executor=as_executor(runner),
            identity={"plan": identity},
        )
    except BaseException:
        journal.close()
        raise


def as_executor(runner: object) -> Executor:
    """An executor as is; a trainer wrapped in a :class:`LocalExecutor`."""
    if isinstance(runner, Executor):
        return runner
    missing = missing_methods(runner)
    if missing:
        raise ConfigError(
            f"runner {type(runner).__name__} is neither an executor nor a trainer: it lacks "
            f"{', '.join(missing)} of the Trainer protocol (opplan.planning.Trainer)"
        )
    assert isinstance(runner, Trainer)
    return LocalExecutor(runner)


def missing_methods(obj: object) -> list[str]:
    """The :class:`Trainer` methods ``obj`` lacks (not callable counts as missing)."""
    return [name for name in _PROTOCOL if not callable(getattr(obj, name, None))]


def plan_identity(graph: TransitionGraph, options: PlannerOptions) -> dict[str, Any]:
    """What a resume must not change: the graph and every option that decides."""
    return {
        "edges": [[str(src), str(dst)] for src, dst in graph.edges],
        "finals": [str(f) for f in graph.finals],
        "options": _decisive_options(options),
    }


def _decisive_options(options: PlannerOptions) -> dict[str, Any]:
    return {k: v for k, v in sorted(options.to_dict().items()) if k not in _COSMETIC}


def _digest(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, allow_nan=True)
    return "api-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check_same_plan(root: Path, events: list[dict[str, Any]], identity: dict[str, Any]) -> None:
    first = next((e for e in events if e["op"] == Op.PLAN_STARTED.value), None)
    if first is None:
        return
    kept = first.get("plan")
    if not isinstance(kept, dict):
        raise RunDirError(
            f"{root} holds a plan started from a config (opplan plan); resume it with "
            "`opplan plan CONFIG --out RUN --resume`, or choose another run_dir"
        )
    if kept.get("edges") != identity["edges"] or kept.get("finals") != identity["finals"]:
        raise RunDirError(
            f"{root} holds a plan of another graph; resume it with the same graph, or "
            "choose another run_dir"
        )
    from opplan.planning.planner import PlannerOptions

    # an option added since the plan started counts at its default
    defaults = _decisive_options(PlannerOptions())
    old, new = {**defaults, **kept.get("options", {})}, identity["options"]
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        what = ", ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} here" for k in changed)
        raise RunDirError(
            f"{root} holds a plan of other options ({what}); resume it with the same options, "
            "or choose another run_dir"
        )
