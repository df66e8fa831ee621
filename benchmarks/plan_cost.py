"""Measured cost of a simulated plan on the paper's 3x3x2 extended graph (§5.2).

    python -m benchmarks.plan_cost [--config configs/simulated.yaml] [--rule paper|noise]

Reports transitions explored and the cost on the footing ``opplan grid`` compares (epochs,
clip-length-weighted epochs, summed per-epoch training seconds -- zero-ish here), then wall
time separately: the planner's own overhead (knee fits, journal fsyncs, checkpoints), the
part that opplan adds to any real training.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from opplan.config import load_config
from opplan.planning import Journal, Planner
from opplan.planning.simulate import DefaultLandscape, SimulatedTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/simulated.yaml")
    parser.add_argument("--rule", choices=["paper", "noise"], default=None)
    args = parser.parse_args()
    config = load_config(args.config)
    graph = config.graph.build()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SimulatedTrainer(
            Path(tmp) / "ck", DefaultLandscape(config.trainer.seed, config.trainer.noise)
        )
        tick = time.perf_counter()
        with Journal(Path(tmp) / "journal.jsonl") as journal:
            options = config.planner_options()
            if args.rule is not None:
                options = replace(options, rule=args.rule)
            plan = Planner(graph, trainer, journal, options).run()
        wall = time.perf_counter() - tick
        journal_bytes = (Path(tmp) / "journal.jsonl").stat().st_size
    n_fits = sum(len(t.fits) for t in plan.transitions)
    print(f"graph: {graph!r}")
    print(
        f"transitions explored: {len(plan.transitions)}; epochs trained: {plan.epochs_total}; "
        f"weighted by clip length: {plan.weighted_epochs:.0f}; "
        f"summed training seconds: {plan.compute_seconds:.2f}"
    )
    print(f"knee fits: {n_fits}; journal: {journal_bytes / 1024:.0f} KiB")
    print(f"planner wall time: {wall:.1f} s ({1000 * wall / plan.epochs_total:.1f} ms/epoch)")
    print(f"best final state: {plan.best_final_state}  value {plan.value:.4f}")
    print("path: " + " -> ".join(f"{s.state} ({s.epochs} ep)" for s in plan.path))
    on_path = sum(s.epochs for s in plan.path)
    print(f"epochs on the path: {on_path} ({on_path / plan.epochs_total:.0%} of those trained)")


if __name__ == "__main__":
    main()
