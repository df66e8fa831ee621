"""Live progress of a plan on the terminal (rich), fed by the planner's journal events."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from opplan.planning.progress import Progress

__all__ = ["RichPlanProgress"]


class RichPlanProgress:
    """One line per finished transition and per resolved state; a status line while training.

    ``verbose`` adds a line per epoch (score and current knee estimate).
    """

    def __init__(self, console: Console | None = None, verbose: bool = False):
        self.console = console or Console(highlight=False)
        self.verbose = verbose

    def on_event(self, event: dict[str, Any], progress: Progress) -> None:
        op = event["op"]
        if op == "plan_started" and progress.sessions > 1:
            done = sum(1 for t in progress.transitions.values() if t.finished)
            self.console.print(f"[bold]resuming[/]: {done} transitions already finished")
        elif op == "epoch_scored" and self.verbose:
            self.console.print(
                f"  {event['src']} -> {event['dst']}  epoch {event['epoch']:3d}  "
                f"score {event['score']:.4f}"
            )
        elif op == "transition_finished":
            record = progress.transition(event)
            self.console.print(
                f"{record.src} -> {record.dst}: {record.epochs_trained} epochs, "
                f"knee {event['knee_epoch']}, value {event['value']:.4f}"
                f"  [dim]({event['reason']})[/]"
            )
        elif op == "state_resolved":
            self.console.print(
                f"[green]resolved[/] {event['state']} <- {event['best_src']}"
                f"  value {event['value']:.4f}"
            )
