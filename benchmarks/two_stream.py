"""Two-stream along a planned RGB path (issue 19; §5.5, Table 7 analogue).

    python -m benchmarks.two_stream [--config configs/two-stream-tempo.yaml] [--work runs/2s]
        [--flow-data runs/data/tempo-2s-flow] [--seeds 0,1,2] [--views 10x3] [--flow-plan]

One command for the whole table, each step skipped when its output exists (re-running
resumes): ``opplan plan`` on the RGB config (``WORK/plan``), the TV-L1 flow copy of its data
(``opplan data prepare --flow tvl1``), then per seed S the RGB stream and the flow stream
trained along the SAME planned recipe (the paper's transfer: flow reuses the path found on
RGB), each evaluated on val and test (``--views``), and fused on test with equal weights and
with the flow weight searched on the val scores (``opplan fuse --search``, never on test).
``--flow-plan`` also plans the flow config at the first seed (flow finding its own path),
then trains and tests that path at every seed and fuses it with the same seed's RGB. The
tables (markdown, mean ± sample sd) are printed and every number written to
``WORK/results.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import yaml

from benchmarks.paper_runs import csv_arg

COLUMNS = ("rgb", "flow", "fused", "searched")


def _opplan(argv: list[str]) -> None:
    from opplan.cli import main as opplan

    print("$ opplan " + " ".join(argv), flush=True)
    if opplan(argv) != 0:
        raise SystemExit(f"opplan {' '.join(argv)} failed")


def seeded_config(source: Path, seed: int, target: Path) -> Path:
    """``source`` with ``trainer.seed: seed`` (everything else as written) at ``target``."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    raw["trainer"]["seed"] = seed
    raw["name"] = f"{raw.get('name', source.stem)}-seed{seed}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return target


def plan(config: Path, out: Path) -> dict[str, Any]:
    """Plan ``config`` into ``out`` (resuming a cut plan); its path, value and epochs."""
    if not (out / "recipe.yaml").is_file():
        _opplan(["plan", str(config), "--out", str(out), *(["--resume"] if out.exists() else [])])
    from opplan.planning.plan import step_state

    result = json.loads((out / "plan.json").read_text())
    return {
        "path": [f"{step_state(s)} x{s['epochs']}" for s in result["path"] if s["epochs"]],
        "path_epochs": sum(s["epochs"] for s in result["path"]),
        "epochs_explored": result["cost"]["epochs_total"],
        "transitions": result["cost"]["transitions"],
        "plan_wall_seconds": result["cost"]["wall_seconds"],
        "value": result["value"],
        "recipe": str(out / "recipe.yaml"),
    }


def train_and_evaluate(config: Path, recipe: Path, run: Path, views: str) -> dict[str, Path]:
    """Train ``config`` along ``recipe`` into ``run``, evaluate val and test; their JSONs."""
    if not (run / "model.pt").is_file():
        resume = ["--resume"] if (run / "train_journal.jsonl").exists() else []
        _opplan(["train", str(config), "--recipe", str(recipe), "--out", str(run), *resume])
    results = {}
    for split in ("val", "test"):
        out = run / "final" / f"{split}.json"
        if not out.is_file():
            _opplan(["evaluate", str(config), "--checkpoint", str(run / "model.pt"),
                     "--views", views, "--split", split, "--out", str(out)])  # fmt: skip
        results[split] = out
    return results


def fuse(rgb: dict[str, Path], flow: dict[str, Path], out: Path) -> dict[str, Any]:
    """Test top-1 of RGB, flow, their 1:1 fusion and the val-searched fusion."""
    scores = {k: {s: p.with_suffix(".scores.npz") for s, p in v.items()}
              for k, v in (("rgb", rgb), ("flow", flow))}  # fmt: skip
    equal, searched = out.with_name(out.stem + "-1to1.json"), out.with_name(out.stem + "-val.json")
    test = [str(scores["rgb"]["test"]), str(scores["flow"]["test"])]
    if not equal.is_file():
        _opplan(["fuse", *test, "--out", str(equal)])
    if not searched.is_file():
        val = [str(scores["rgb"]["val"]), str(scores["flow"]["val"])]
        _opplan(["fuse", *test, "--search", *val, "--out", str(searched)])
    top1 = {name: json.loads(path.read_text())["top1"] for name, path in
            (("rgb", rgb["test"]), ("flow", flow["test"]), ("fused", equal),
             ("searched", searched))}  # fmt: skip
    top1["flow_weight"] = json.loads(searched.read_text())["weights"][1]
    return top1


def table(rows: dict[int, dict[str, Any]]) -> str:
    lines = ["| seed | RGB test top-1 | flow test top-1 | fused (1:1) | fused (searched weight) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for seed, r in rows.items():
        lines.append(f"| {seed} | {r['rgb']:.2f} | {r['flow']:.2f} | {r['fused']:.2f} | "
                     f"{r['searched']:.2f} (flow × {r['flow_weight']:g}) |")  # fmt: skip
    if len(rows) > 1:
        cells = []
        for col in COLUMNS:
            values = [r[col] for r in rows.values()]
            cells.append(f"**{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}**")
        lines.append("| **mean ± sd** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/two-stream-tempo.yaml"))
    parser.add_argument("--work", type=Path, default=Path("runs/2s"))
    parser.add_argument("--flow-data", type=Path, default=Path("runs/data/tempo-2s-flow"))
    parser.add_argument("--seeds", type=csv_arg(int), default=[0, 1, 2])
    parser.add_argument("--views", default="10x3")
    parser.add_argument("--workers", type=int, default=1, help="TV-L1 processes")
    parser.add_argument("--flow-plan", action="store_true", help="plan flow too (first seed)")
    args = parser.parse_args(argv)
    work: Path = args.work
    rgb_plan = plan(args.config, work / "plan")
    recipe = Path(rgb_plan["recipe"])
    flow_source = args.flow_data / "prepared.yaml"
    if not (args.flow_data / "prepare_report.json").is_file():
        _opplan(["data", "prepare", str(args.config), "--flow", "tvl1",
                 "--out", str(args.flow_data), "--workers", str(args.workers)])  # fmt: skip
    rows: dict[int, dict[str, Any]] = {}
    configs = work / "configs"
    for seed in args.seeds:
        rgb_config = seeded_config(args.config, seed, configs / f"rgb-s{seed}.yaml")
        flow_config = seeded_config(flow_source, seed, configs / f"flow-s{seed}.yaml")
        rgb = train_and_evaluate(rgb_config, recipe, work / f"rgb-s{seed}", args.views)
        flow = train_and_evaluate(flow_config, recipe, work / f"flow-s{seed}", args.views)
        rows[seed] = fuse(rgb, flow, work / "fused" / f"s{seed}.json")
    payload: dict[str, Any] = {"rgb_plan": rgb_plan, "seeds": rows, "views": args.views}
    print(f"RGB plan: {' -> '.join(rgb_plan['path'])}; value {rgb_plan['value']:.4f}; "
          f"{rgb_plan['epochs_explored']} epochs explored")  # fmt: skip
    print(table(rows))
    if args.flow_plan:  # planned on flow at the first seed, trained at every seed
        flow_plan = plan(configs / f"flow-s{args.seeds[0]}.yaml", work / "flow-plan")
        own_rows: dict[int, dict[str, Any]] = {}
        for seed in args.seeds:
            own = train_and_evaluate(configs / f"flow-s{seed}.yaml", Path(flow_plan["recipe"]),
                                     work / f"flow-own-s{seed}", args.views)  # fmt: skip
            rgb = {s: work / f"rgb-s{seed}" / "final" / f"{s}.json" for s in ("val", "test")}
            own_rows[seed] = fuse(rgb, own, work / "fused" / f"s{seed}-flow-own.json")
        flow_plan["planned_at_seed"] = args.seeds[0]
        flow_plan["seeds"] = own_rows
        payload["flow_plan"] = flow_plan
        print(
            f"flow plan (seed {args.seeds[0]}): {' -> '.join(flow_plan['path'])}; value "
            f"{flow_plan['value']:.4f}; {flow_plan['epochs_explored']} epochs explored"
        )
        print(table(own_rows))
    (work / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
