"""Grid results as Table 3-style tables: sampling x (length schedule, decay), each cell the
best budget's internal-validation score with its epochs in brackets (rich and Markdown)."""

from __future__ import annotations

from typing import Any

__all__ = ["cell_grid", "grid_markdown", "grid_table"]


def cell_grid(results: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]], dict[Any, Any]]:
    """(samplings, [(lengths, decay)] columns, {(sampling, lengths, decay): cell})."""
    cells = {(c["sampling"], c["lengths"], c["decay"]): c for c in results["cells"]}
    samplings = list(dict.fromkeys(c["sampling"] for c in results["cells"]))
    columns = list(dict.fromkeys((c["lengths"], c["decay"]) for c in results["cells"]))
    return samplings, columns, cells


def _text(cell: dict[str, Any] | None, best: str) -> str:
    if cell is None:
        return "-"
    mark = "*" if cell["best"] == best else ""
    return f"{100 * cell['val_score']:.1f} ({cell['epochs']}){mark}"


def grid_markdown(results: dict[str, Any]) -> str:
    """The cells as a Markdown table; ``*`` marks the grid's best run."""
    samplings, columns, cells = cell_grid(results)
    head = "| sampling | " + " | ".join(f"{lg} {d}" for lg, d in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    for s in samplings:
        row = [_text(cells.get((s, lg, d)), results["best"]) for lg, d in columns]
        lines.append(f"| {s} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def grid_table(results: dict[str, Any]) -> Any:
    """The cells as a ``rich`` table, with the best run's test result in the caption."""
    from rich.table import Table

    samplings, columns, cells = cell_grid(results)
    table = Table(title="hand-tuned grid: internal val top-1 % (epochs), * = best")
    table.add_column("sampling", no_wrap=True)
    for lengths, decay in columns:
        table.add_column(f"{lengths}\n{decay}", justify="right")
    for s in samplings:
        table.add_row(s, *(_text(cells.get((s, lg, d)), results["best"]) for lg, d in columns))
    cost = results["cost"]
    caption = (
        f"{cost['runs']} runs, {cost['epochs']} epochs "
        f"({cost['weighted_epochs']:.0f} weighted by clip length), {cost['wall_seconds']:.0f} s"
    )
    test = results.get("tests", {}).get(results["best"])
    if test is not None:
        caption += (
            f"; best {results['best']}: test top-1 {100 * test['top1']:.1f} % "
            f"({results['views']} views)"
        )
    table.caption = caption
    return table
