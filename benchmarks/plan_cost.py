"""Measured cost of a simulated plan on the paper's 3x3x2 extended graph (§5.2).

    python -m benchmarks.plan_cost [--config configs/simulated.yaml]

Reports transitions explored, epochs trained, the chosen path, and wall time split into
the simulated training (zero here) and the planner's own overhead (knee fits, journal
fsyncs, checkpoints) -- the part that opplan adds to any real training.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from opplan.config import load_config
from opplan.planning import Journal, Planner
from opplan.planning.simulate import DefaultLandscape, SimulatedTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/simulated.yaml")
    args = parser.parse_args()
    config = load_config(args.config)
    graph = config.graph.build()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SimulatedTrainer(
            Path(tmp) / "ck", DefaultLandscape(config.trainer.seed, config.trainer.noise)
        )
        tick = time.perf_counter()
        with Journal(Path(tmp) / "journal.jsonl") as journal:
            plan = Planner(graph, trainer, journal, config.planner.options()).run()
        wall = time.perf_counter() - tick
        journal_bytes = (Path(tmp) / "journal.jsonl").stat().st_size
    n_fits = sum(len(t.fits) for t in plan.transitions)
    print(f"graph: {graph!r}")
    print(f"transitions explored: {len(plan.transitions)}; epochs trained: {plan.epochs_total}")
    print(f"knee fits: {n_fits}; journal: {journal_bytes / 1024:.0f} KiB")
    print(f"planner wall time: {wall:.1f} s ({1000 * wall / plan.epochs_total:.1f} ms/epoch)")
    print(f"best final state: {plan.best_final_state}  value {plan.value:.4f}")
    print("path: " + " -> ".join(f"{s.state} ({s.epochs} ep)" for s in plan.path))
    on_path = sum(s.epochs for s in plan.path)
    print(f"epochs on the path: {on_path} ({on_path / plan.epochs_total:.0%} of those trained)")


if __name__ == "__main__":
    main()
