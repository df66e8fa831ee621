"""Wall time of one plan on the local and Ray executors (issue 7, docs/benchmarks.md).

    python -m benchmarks.executors simulated [--epoch-delay 0.02] [--workers 1,2,4]
    python -m benchmarks.executors video CONFIG [--workers 1,2]

``simulated``: configs/simulated.yaml (3x3x2 extended graph, T = 10) on the simulated
trainer sleeping ``epoch-delay`` s per epoch at 16 frames (scaled by the clip length), so
epochs cost wall time but no CPU and Ray workers can share the 2 cores (``num_cpus`` 0.5).
``video``: a real video config, one CPU per worker. Each run plans into a fresh directory;
every executor must give the same plan (checked). Next to each wall time: what the graph
allows with those transition times -- the list schedule of the planner's dispatch rule on W
workers and the critical path (unlimited workers), from benchmarks.scaling.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.scaling import critical_path, list_schedule
from opplan.config import load_config
from opplan.planning import TrainingState

ROOT = Path(__file__).resolve().parents[1]


def _plan(config: Path, out: Path, executor: str, workers: int, num_cpus: float) -> float:
    data = yaml.safe_load(config.read_text())
    data["executor"] = {"kind": executor, "max_parallel": workers, "num_cpus": num_cpus}
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text(yaml.safe_dump(data))
    tick = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "opplan", "plan", str(cfg), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return time.monotonic() - tick


def _decisions(plan: dict) -> tuple:
    return plan["best_final_state"], [
        (t["from"], t["to"], t["knee_epoch"]) for t in plan["transitions"]
    ]


def run(config: Path, workers: list[int], num_cpus: float) -> None:
    graph = load_config(config).graph.build()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("local", 1)] + [("ray", w) for w in workers]
        rows, reference = [], None
        for kind, w in runs:
            out = Path(tmp) / f"{kind}{w}"
            wall = _plan(config, out, kind, w, num_cpus)
            plan = json.loads((out / "plan.json").read_text())
            if reference is None:
                reference = plan
            same = _decisions(plan) == _decisions(reference)
            seconds = {
                (TrainingState.parse(t["from"]), TrainingState.parse(t["to"])): t["seconds"]
                for t in plan["transitions"]
            }
            bound, _ = list_schedule(graph, seconds, w, priority=lambda e: 0)
            rows.append((kind, w, wall, plan["cost"]["compute_seconds"], bound, same))
        chain, _ = critical_path(graph, seconds)
        print(
            f"\n{config}: {len(reference['transitions'])} transitions, "
            f"{reference['cost']['epochs_total']} epochs; critical path {chain:.1f} s\n"
        )
        print(
            "| executor | workers | wall (s) | sum of transitions (s) "
            "| list-schedule bound (s) | same plan |"
        )
        print("|---|---|---|---|---|---|")
        for kind, w, wall, compute, bound, same in rows:
            print(f"| {kind} | {w} | {wall:.1f} | {compute:.1f} | {bound:.1f} | {same} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    sim = sub.add_parser("simulated")
    sim.add_argument("--epoch-delay", type=float, default=0.02)
    sim.add_argument("--workers", default="1,2,4")
    video = sub.add_parser("video")
    video.add_argument("config", type=Path)
    video.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    if args.what == "simulated":
        data = yaml.safe_load((ROOT / "configs/simulated.yaml").read_text())
        data["trainer"]["epoch_delay"] = args.epoch_delay
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "simulated.yaml"
            config.write_text(yaml.safe_dump(data))
            run(config, workers, num_cpus=0.5)
    else:
        run(args.config.resolve(), workers, num_cpus=1.0)


if __name__ == "__main__":
    main()
