"""Figures of a plan: the transition graph with the chosen path (like Fig. 4) and each
transition's validation curve with its fit and knee (like Fig. 2).

Each figure has a pure data step (``graph_figure_data``, ``curve_panels``) built from the
``plan.json`` dictionary, tested without matplotlib, and a renderer.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opplan.fileio import atomic_write_bytes, atomic_write_text
from opplan.planning.curves import FAMILIES
from opplan.planning.plan import SKIPPED, step_state
from opplan.planning.state import TrainingState

__all__ = [
    "CurvePanel",
    "GraphFigureData",
    "curve_panels",
    "graph_figure_data",
    "render_curves",
    "render_graph",
    "write_report",
]


FINE_STATUSES = ("finished", "running")
_STEP_KEYS = frozenset({"sampling", "clip_length", "lr", "epochs", "value", "from"})


@dataclass(frozen=True)
class GraphFigureData:
    samplings: tuple[str, ...]
    clip_lengths: tuple[int, ...]
    lrs: tuple[float, ...]  # high to low
    nodes: dict[str, tuple[str, int, int]]  # state -> (sampling, column, row)
    edges: tuple[tuple[str, str, bool, int | None], ...]  # from, to, chosen, epochs
    best: str
    values: dict[str, float | None]  # state -> value of its best incoming move (None: no model)
    failed: frozenset[tuple[str, str]] = frozenset()  # diverged / failed / unreachable moves
    # with extra axes (size=...): one column per (clip length, extra values), clip-major
    columns: tuple[str, ...] = ()


def graph_figure_data(plan: dict[str, Any]) -> GraphFigureData:
    states = [TrainingState.parse(s) for s in plan["states"]]
    samplings = tuple(sorted({s.sampling for s in states}))
    lengths = tuple(sorted({s.clip_length for s in states}))
    lrs = tuple(sorted({s.lr for s in states}, reverse=True))
    extras = sorted({s.extra for s in states}, key=_extra_order)
    columns = tuple(f"{c}f" + "".join(f"\n{k}={v}" for k, v in e) for c in lengths for e in extras)
    nodes = {
        str(s): (
            s.sampling,
            lengths.index(s.clip_length) * len(extras) + extras.index(s.extra),
            lrs.index(s.lr),
        )
        for s in states
    }
    chosen = {(step["from"], str(step_state(step))): step["epochs"] for step in plan["path"]}
    edges = tuple(
        (t["from"], t["to"], (t["from"], t["to"]) in chosen, chosen.get((t["from"], t["to"])))
        for t in plan["transitions"]
    )
    values = {name: rec["value"] for name, rec in plan["states"].items()}
    failed = frozenset(
        (t["from"], t["to"]) for t in plan["transitions"] if t["status"] not in FINE_STATUSES
    )
    return GraphFigureData(
        samplings,
        lengths,
        lrs,
        nodes,
        edges,
        plan["best_final_state"],
        values,
        failed,
        columns if extras != [()] else (),
    )


def _extra_order(extra: tuple[tuple[str, Any], ...]) -> tuple[tuple[bool, Any], ...]:
    return tuple((isinstance(v, str), v) for _, v in extra)


def render_graph(data: GraphFigureData, path: str | Path) -> None:
    """One panel per sampling: clip length left to right, learning rate top (high) down."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(data.samplings)
    labels = data.columns or tuple(f"{c}f" for c in data.clip_lengths)
    width = 4.2 * max(1.0, len(labels) / 3)
    fig, axes = plt.subplots(1, n, figsize=(width * n + 0.6, 4.4), squeeze=False)
    for ax, sampling in zip(axes[0], data.samplings, strict=True):
        pos = {name: (c, -r) for name, (s, c, r) in data.nodes.items() if s == sampling}
        start = (-1.0, 0.5)
        for src, dst, chosen, epochs in data.edges:
            if dst not in pos:
                continue
            a = start if src == "initial" else pos[src]
            b = pos[dst]
            ax.annotate(
                "",
                xy=b,
                xytext=a,
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": "#d62728" if chosen else "0.35",
                    "lw": 2.6 if chosen else 1.0,
                    "linestyle": "--" if (src, dst) in data.failed else "-",
                    "shrinkA": 17,
                    "shrinkB": 17,
                    "connectionstyle": "arc3,rad=0.08",
                },
                zorder=3 if chosen else 1,
            )
            if chosen:
                mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12)
                ax.text(
                    *mid,
                    f"{epochs} ep",
                    color="#d62728",
                    ha="center",
                    fontsize=9,
                    fontweight="bold",
                    zorder=4,
                    bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5},
                )
        for name, (x, y) in pos.items():
            best = name == data.best
            ax.scatter(
                [x],
                [y],
                s=780,
                c="#fde0dd" if best else "white",
                edgecolors="#d62728" if best else "black",
                linewidths=1.5,
                zorder=2,
            )
            value = data.values[name]
            label = "failed" if value is None else f"{value:.3f}"
            ax.text(x, y, label, ha="center", va="center", fontsize=7, zorder=5)
        ax.scatter([start[0]], [start[1]], s=780, c="0.85", edgecolors="black", zorder=2)
        ax.text(start[0], start[1] - 0.32, "initial", ha="center", fontsize=9)
        ax.set_xticks(range(len(labels)), labels, fontsize=8 if data.columns else None)
        ax.set_yticks([-r for r in range(len(data.lrs))], [f"lr {lr:g}" for lr in data.lrs])
        ax.set_xlim(-1.6, len(labels) - 0.4)
        ax.set_ylim(-len(data.lrs) + 0.4, 1.1)
        ax.set_title(f"{sampling} sampling")
        ax.set_xlabel("clip length" + (", then the extra axes" if data.columns else ""))
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(
        f"Explored transitions (black{'; dashed: diverged or failed' if data.failed else ''})"
        f"\nand the chosen path (red) -> {data.best}",
        fontsize=10,
    )
    fig.tight_layout()
    _save_atomically(fig, path, dpi=110)
    plt.close(fig)


@dataclass(frozen=True)
class CurvePanel:
    title: str
    epochs: np.ndarray
    scores: np.ndarray
    fit_epochs: np.ndarray
    fit_values: np.ndarray | None
    knee: int | None
    chosen: bool


def curve_panels(plan: dict[str, Any]) -> list[CurvePanel]:
    chosen = {(step["from"], str(step_state(step))) for step in plan["path"]}
    panels = []
    for t in plan["transitions"]:
        if t["status"] in ("unreachable", *SKIPPED):
            continue  # never trained: nothing to draw
        scores = np.asarray(t["scores"], dtype=float)
        epochs = np.arange(len(scores))
        fit_values = None
        fit = t.get("fit")
        if fit and fit.get("params"):
            fit_values = FAMILIES[fit["family"]](np.asarray(fit["params"]), epochs.astype(float))
        panels.append(
            CurvePanel(
                f"{t['from']} ->\n{t['to']}",
                epochs,
                scores,
                epochs,
                fit_values,
                t.get("knee_epoch"),
                (t["from"], t["to"]) in chosen,
            )
        )
    return panels


def render_curves(panels: list[CurvePanel], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, p in zip(axes.flat, panels, strict=False):
        ax.plot(p.epochs, p.scores, "o", ms=2.5, color="0.3", label="observed")
        if p.fit_values is not None:
            ax.plot(p.fit_epochs, p.fit_values, "-", color="#1f77b4", lw=1.5, label="fit")
        if p.knee is not None:
            ax.axvline(p.knee, color="#d62728", ls="--", lw=1, label=f"knee {p.knee}")
        ax.set_title(p.title, fontsize=8, color="#d62728" if p.chosen else "black")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("validation score", fontsize=9)
    fig.tight_layout()
    _save_atomically(fig, path, dpi=100)
    plt.close(fig)


def write_report(plan: dict[str, Any], run_dir: str | Path) -> Path:
    """``RUN/report/{graph.png, curves.png, README.md}``."""
    report = Path(run_dir) / "report"
    report.mkdir(parents=True, exist_ok=True)
    render_graph(graph_figure_data(plan), report / "graph.png")
    render_curves(curve_panels(plan), report / "curves.png")
    axes = [k for k in dict.fromkeys(k for s in plan["path"] for k in s) if k not in _STEP_KEYS]
    steps = "\n".join(
        f"| {k} | {s['sampling']} | {s['clip_length']}f | {s['lr']:g} | "
        + "".join(f"{s.get(a, '')} | " for a in axes)
        + f"{s['epochs']} | {s['value']:.4f} |"
        for k, s in enumerate(plan["path"], start=1)
    )
    head = "| step | sampling | clip | lr | " + "".join(f"{a} | " for a in axes)
    cost = plan["cost"]
    failed = [t for t in plan["transitions"] if t["status"] not in FINE_STATUSES]
    failures = "".join(
        f"- {t['from']} -> {t['to']}: **{t['status']}** ({t['reason']})\n" for t in failed
    )
    if failures:
        failures = (
            "\nMoves that diverged, failed or were skipped on a bound (deferred, branch; "
            "value -inf, never on a path):\n\n" + failures
        )
    caveats = "".join(f"\n**Caveat:** {c}.\n" for c in plan.get("caveats", []))
    atomic_write_text(
        report / "README.md",
        f"# Plan report\n\nBest final state: **{plan['best_final_state']}** "
        f"(value {plan['value']:.4f}).\n\n"
        f"{head}epochs | value |\n|{'---|' * (6 + len(axes))}\n"
        f"{steps}\n\nCost: {cost['transitions']} transitions, {cost['epochs_total']} epochs, "
        f"{cost['compute_seconds']:.1f} s of training, {cost['wall_seconds']:.1f} s wall time.\n"
        f"{failures}{caveats}\n"
        "![transition graph](graph.png)\n\n`graph.png`: explored transitions in black, the "
        "chosen path in red with its epochs (Fig. 4 of the paper).\n\n"
        "![curves](curves.png)\n\n`curves.png`: each transition's validation scores, the "
        "fitted Table 1 curve and the knee (Fig. 2); titles in red are on the path.\n",
    )
    return report


def _save_atomically(fig: Any, path: str | Path, dpi: int) -> None:
    """A crash mid-write never leaves a truncated PNG (temp file, then ``os.replace``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    atomic_write_bytes(path, buffer.getvalue())
