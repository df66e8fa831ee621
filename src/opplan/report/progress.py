"""Live progress of a plan on the terminal (rich), fed by the planner's journal events.

A bar per epoch (optimizer steps, loss, ETA) while a video trainer trains, one line per
finished transition (from -> to, epochs, knee, value) and per resolved state.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from opplan.planning.progress import PlanState

__all__ = ["RichPlanProgress"]


class RichPlanProgress:
    """Planner callback and trainer ``on_batch`` hook; use as a context manager.

    ``verbose`` adds a line per epoch (score and the current knee estimate).
    """

    def __init__(self, console: Console | None = None, verbose: bool = False):
        self.console = console or Console(highlight=False)
        self.verbose = verbose
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._task: Any = None
        self._title = ""
        self._last = ""

    def __enter__(self) -> RichPlanProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def on_batch(self, step: int, steps: int, metrics: dict[str, float]) -> None:
        info = f"loss {metrics.get('loss', float('nan')):.3f}  {self._last}"
        if self._task is None:
            self._task = self.bar.add_task(self._title, total=steps, info=info)
        self.bar.update(self._task, completed=step, total=steps, info=info)

    def on_event(self, event: dict[str, Any], progress: PlanState) -> None:
        op = event["op"]
        if op in ("transition_started", "epoch_scored"):
            record = progress.transition(event)
            self._title = f"{record.src} -> {record.dst}  epoch {record.epochs_trained + 1}"
            if self._task is not None:
                self.bar.remove_task(self._task)
                self._task = None
        if op == "plan_started" and progress.sessions > 1:
            done = sum(1 for t in progress.transitions.values() if t.finished)
            self.console.print(f"[bold]resuming[/]: {done} transitions already finished")
        elif op == "epoch_scored":
            self._last = f"last score {event['score']:.4f}"
            if self.verbose:
                self.console.print(
                    f"  {event['src']} -> {event['dst']}  epoch {event['epoch']:3d}  "
                    f"score {event['score']:.4f}"
                )
        elif op == "fit" and event["fit"]["success"]:
            self._last += f", knee ~{event['fit']['knee_epoch']}"
        elif op == "transition_finished":
            record = progress.transition(event)
            self.console.print(
                f"{record.src} -> {record.dst}: {record.epochs_trained} epochs, "
                f"knee {event['knee_epoch']}, value {event['value']:.4f}"
                f"  [dim]({event['reason']})[/]"
            )
        elif op == "transition_failed":
            self.console.print(
                f"[red]{event['reason']}[/] {event['src']} -> {event['dst']}: {event['message']}"
            )
        elif op == "state_resolved" and event["checkpoint"] is None:
            self.console.print(f"[red]no model[/] for {event['state']}: every move into it failed")
        elif op == "state_resolved":
            self.console.print(
                f"[green]resolved[/] {event['state']} <- {event['best_src']}"
                f"  value {event['value']:.4f}"
            )
