"""Beyond the paper: epochs saved by pruning (``planner.prune``) and whether the path changes.

    python -m benchmarks.pruning simulated [--instances 10] [--branches]
    python -m benchmarks.pruning replay RUN [RUN ...] [--race] [--defer] [--branches]

``simulated``: random planning instances (RandomLandscape seeds 0..n-1 on the 3x3x2 extended
graph, T = 10), each planned with and without pruning.

``replay``: a finished plan of a real trainer replayed with pruning on, exactly: every
transition is deterministic given its starting model, so a pruned transition scores the
prefix of its recorded curve. The replay is exact while every state keeps the model it had
in the recorded plan; if pruning would change a state's model (the bound was wrong and a
pruned move would have won), the replay stops and reports that the path changed.
``--race``, ``--defer``, ``--branches`` replay with those switches instead of pruning
(``--branch-margin``: ``planner.branch_margin``); the seconds are the recorded moves'
seconds, prorated by the epochs each keeps.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from opplan.planning import (
    Journal,
    Plan,
    Planner,
    PlannerOptions,
    TrainingState,
    TransitionGraph,
)
from opplan.planning.simulate import RandomLandscape, SimulatedTrainer


class PathChanged(Exception):
    """A state would start from another model than in the recorded plan."""


class RecordedTrainer:
    """Serves the recorded validation curves of a finished plan (Trainer protocol)."""

    def __init__(self, plan: dict, graph: TransitionGraph):
        self.curves = {(t["from"], t["to"]): t["scores"] for t in plan["transitions"]}
        self.models = {
            f"{TrainingState.parse(r['best_from']).slug}__{TrainingState.parse(s).slug}"
            f"/e{r['epochs']:03d}": s
            for s, r in plan["states"].items()
        }
        self.state_of = {s.slug: str(s) for s in graph.states}
        self.edge: tuple[str, str] = ("", "")
        self.epoch = 0

    def start(self, state: TrainingState, from_checkpoint: str | None) -> None:
        if from_checkpoint is None:
            src = "initial"
        elif from_checkpoint in self.models:
            src = self.models[from_checkpoint]
        else:
            raise PathChanged(f"{state} would start from {from_checkpoint}")
        self.edge, self.epoch = (src, str(state)), 0

    def resume(self, state: TrainingState, checkpoint_id: str) -> None:
        """Continue a move (racing pauses moves and resumes them): ``<src>__<dst>/eNNN``."""
        edge, epoch = checkpoint_id.split("/")
        src_slug = edge.split("__")[0]
        self.edge = (self.state_of.get(src_slug, "initial"), str(state))
        self.epoch = int(epoch.lstrip("e"))

    def train_epoch(self) -> None:
        self.epoch += 1

    def evaluate(self) -> float:
        return float(self.curves[self.edge][self.epoch])

    def save(self, checkpoint_id: str) -> None:
        pass

    def release(self, checkpoint_id: str) -> None:
        pass


def replay_plan(
    run: Path, knobs: dict[str, bool], margin: float = 0.02, branch_margin: float = 0.1
) -> tuple[Plan, dict[str, Any], float]:
    """The finished plan in ``run`` replayed exactly with the planner switches ``knobs`` on
    (``prune``, ``race``, ``defer``, ``branches``): ``(replayed plan, recorded plan.json,
    its seconds)``, the seconds being each kept move's recorded seconds prorated by the
    epochs it keeps. Raises :class:`PathChanged` when a state would start from a model the
    recorded plan never made (then only a real run says what the plan would be)."""
    from dataclasses import replace

    from opplan.config import load_config

    config = load_config(run / "config.yaml")
    graph = config.graph.build()
    plan = json.loads((run / "plan.json").read_text())
    with (run / "journal.jsonl").open() as journal_file:  # the options the plan ran with
        recorded = json.loads(journal_file.readline()).get("options", {})
    base = replace(config.planner.options(), eval_count=recorded.get("eval_count", 0))
    options = replace(base, prune_margin=margin, branch_margin=branch_margin, **knobs)
    with tempfile.TemporaryDirectory() as tmp, Journal(Path(tmp) / "j.jsonl") as journal:
        replayed = Planner(graph, RecordedTrainer(plan, graph), journal, options).run()
    recorded_s = {
        (t["from"], t["to"]): (t["seconds"], t["epochs_trained"]) for t in plan["transitions"]
    }
    seconds = sum(
        recorded_s[str(t.src), str(t.dst)][0]
        * t.epochs_trained
        / max(1, recorded_s[str(t.src), str(t.dst)][1])
        for t in replayed.transitions
    )
    return replayed, plan, seconds


def replay(
    run: Path, margin: float, knobs: dict[str, bool] | None = None, branch_margin: float = 0.1
) -> str:
    """One table row: the finished plan in ``run`` replayed with pruning on (or, given
    ``knobs``, with those planner switches on instead: ``race``, ``defer``, ``branches``)."""
    try:
        pruned, plan, seconds = replay_plan(run, knobs or {"prune": True}, margin, branch_margin)
    except PathChanged as err:
        total = json.loads((run / "plan.json").read_text())["cost"]["epochs_total"]
        return f"| {run} | {total} | - | - | path changed: {err} |"
    total = plan["cost"]["epochs_total"]
    same = pruned.to_dict()["path"] == plan["path"]
    cut = ("pruned", "raced", "deferred", "bound")  # skipped moves (deferred, branch) failed
    n = sum(t.reason.startswith(cut) or t.failed for t in pruned.transitions)
    saved = total - pruned.epochs_total
    minutes = f"{plan['cost']['compute_seconds'] / 60:.1f} -> {seconds / 60:.1f} min"
    return (
        f"| {run} | {total} | {pruned.epochs_total} | {saved} ({100 * saved / total:.0f} %), "
        f"{n} cut; {minutes} | {'same path' if same else 'PATH CHANGED'} |"
    )


def simulated(
    instances: int, margin: float, knobs: dict[str, bool] | None = None, branch_margin: float = 0.1
) -> list[str]:
    graph = TransitionGraph.build(
        "extended", ["consecutive", "uniform"], [16, 32, 64], [0.04, 0.004, 0.0004]
    )
    rows = []
    for seed in range(instances):
        plans = {}
        for prune in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                trainer = SimulatedTrainer(Path(tmp) / "ck", RandomLandscape(seed, 0.01))
                on = (knobs or {"prune": True}) if prune else {}
                options = PlannerOptions(
                    delay=10,
                    max_epochs=100,
                    prune_margin=margin,
                    branch_margin=branch_margin,
                    **on,
                )
                with Journal(Path(tmp) / "j.jsonl") as journal:
                    plans[prune] = Planner(graph, trainer, journal, options).run()
        off, on = plans[False], plans[True]
        saved = off.epochs_total - on.epochs_total
        same = on.to_dict()["path"] == off.to_dict()["path"]
        n = sum(t.reason.startswith(("pruned", "branch")) for t in on.transitions)
        verdict = (
            "same path" if same else f"PATH CHANGED (value {off.value:.3f} -> {on.value:.3f})"
        )
        rows.append(
            f"| random seed {seed} | {off.epochs_total} | {on.epochs_total} | "
            f"{saved} ({100 * saved / off.epochs_total:.0f} %), {n} cut | {verdict} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    sim = sub.add_parser("simulated")
    sim.add_argument("--instances", type=int, default=10)
    sim.add_argument("--branches", action="store_true", help="planner.branches, not prune")
    rep = sub.add_parser("replay")
    rep.add_argument("runs", type=Path, nargs="+", help="run directories of finished plans")
    rep.add_argument("--race", action="store_true", help="replay with planner.race instead")
    rep.add_argument("--defer", action="store_true", help="replay with planner.defer instead")
    rep.add_argument("--branches", action="store_true", help="replay with planner.branches")
    for p in (sim, rep):
        p.add_argument("--margin", type=float, default=0.02)
        p.add_argument("--branch-margin", type=float, default=0.1)
    args = parser.parse_args()
    knobs = {k: True for k in ("race", "defer", "branches") if getattr(args, k, False)}
    switched = " + ".join(f"planner.{k}" for k in knobs) or "planner.prune"
    print(f"| plan | epochs (switches off) | epochs ({switched}) | saved | chosen path |")
    print("|---|---|---|---|---|")
    if args.what == "simulated":
        rows = simulated(args.instances, args.margin, knobs or None, args.branch_margin)
    else:
        rows = [replay(run, args.margin, knobs, args.branch_margin) for run in args.runs]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
