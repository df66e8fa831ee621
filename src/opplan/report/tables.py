"""Rich tables of a plan, built from the plan.json dictionary (or a partial one)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from opplan.planning.plan import step_state

__all__ = ["caveat_lines", "path_table", "transitions_table"]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def path_table(plan: dict[str, Any]) -> Table:
    """The chosen path: one row per step, with epochs and the value reached."""
    table = Table(title=f"Optimal path -> {plan['best_final_state']}  (value {plan['value']:.4f})")
    known = {"sampling", "clip_length", "lr", "epochs", "value", "from"}
    axes = [k for k in dict.fromkeys(k for step in plan["path"] for k in step) if k not in known]
    for column in ("step", "sampling", "clip", "lr", *axes, "epochs", "value"):
        table.add_column(column, justify="right" if column != "sampling" else "left")
    for k, step in enumerate(plan["path"], start=1):
        table.add_row(
            str(k),
            step["sampling"],
            f"{step['clip_length']}f",
            f"{step['lr']:g}",
            *(str(step.get(axis, "")) for axis in axes),  # extra axes (size=...)
            str(step["epochs"]),
            _fmt(step["value"]),
        )
    cost = plan["cost"]
    table.caption = (
        f"{cost['transitions']} transitions explored, {cost['epochs_total']} epochs, "
        f"{cost['compute_seconds']:.1f} s of training, {cost['wall_seconds']:.1f} s wall time"
    )
    return table


def caveat_lines(plan: dict[str, Any]) -> list[str]:
    """The plan's caveats as rich markup lines, to print under :func:`path_table`."""
    # older plan.json files have no "caveats"
    return [f"[yellow]caveat:[/yellow] {escape(c)}" for c in plan.get("caveats", [])]


def transitions_table(plan: dict[str, Any], chosen: set[tuple[str, str]] | None = None) -> Table:
    """Every explored transition; the ones on the chosen path are marked with *."""
    if chosen is None:
        chosen = {(s["from"], str(step_state(s))) for s in plan.get("path", [])}
    table = Table(title="Explored transitions")
    for column in ("", "from", "to", "epochs", "knee", "value", "observed", "status"):
        table.add_column(column)
    for t in plan["transitions"]:
        table.add_row(
            "*" if (t["from"], t["to"]) in chosen else "",
            t["from"],
            t["to"],
            str(t["epochs_trained"]),
            "-" if t["knee_epoch"] is None else str(t["knee_epoch"]),
            _fmt(t["value"]),
            _fmt(t["observed"]),
            t["status"],
        )
    return table
