"""The demo (`make demo`) over several trainer seeds, under several planner settings.

    nice -n 10 .venv/bin/python -m benchmarks.demo_seeds [--seeds 0,1,2,3,4]
        [--variants noise,paper-T10] [--work runs/demo_seeds] [--plan-only paper-T10]

Issue 17's demo target: with ``configs/demo.yaml`` over 5 trainer seeds, the noise rule's
test top-1 is >= 95 % in 5/5 and its plan's value is within one validation video of the best
final state found by the paper's rule with T = 10. Each variant is ``configs/demo.yaml``
with ``trainer.seed`` S and the variant's ``planner`` overrides; every run does what
`make demo` does (plan, train the recipe on all training videos, test 10 x 3 views), except
the variants named by ``--plan-only`` (plan alone: the reference values). The videos are the
demo's (data seed 0) for every seed. Runs resume, so a cut table continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import yaml

from benchmarks.paper_runs import csv_arg

VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {},  # the demo as shipped (T = 5)
    "paper-T10": {"delay": 10},
    "noise": {"rule": "noise"},
    # y0 scored in the new state, with precise BN at every move's start (issue 17 item 1)
    "paper-scored": {"score_start": True},
    "noise-scored": {"rule": "noise", "score_start": True},
}
SCORED = {"paper-scored", "noise-scored"}  # also trainer.optim.recalibrate_bn: true


def _config(work: Path, variant: str, seed: int) -> Path:
    config = yaml.safe_load(Path("configs/demo.yaml").read_text())
    config["name"] = f"demo-{variant}-seed{seed}"
    config["planner"] = {**config["planner"], **VARIANTS[variant]}
    config["trainer"]["seed"] = seed
    if variant in SCORED:
        config["trainer"]["optim"] = {**config["trainer"]["optim"], "recalibrate_bn": True}
    config["trainer"]["threads"] = 1
    config["trainer"]["data"]["root"] = str(work / "data" / "demo-order")
    path = work / "configs" / f"{config['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(work: Path, variant: str, seed: int, plan_only: bool) -> dict[str, Any]:
    """Plan (and unless ``plan_only`` train and test) one variant at one seed."""
    from opplan.baselines import plan_cost
    from opplan.cli import main as opplan

    config = _config(work, variant, seed)
    out = work / "runs" / f"{variant}-seed{seed}"
    if opplan(["plan", str(config), "--out", str(out), "--resume"]) != 0:
        raise SystemExit(f"opplan plan {config} failed")
    plan = json.loads((out / "plan.json").read_text())
    row: dict[str, Any] = {
        "value": plan["value"],
        "val": plan["states"][plan["best_final_state"]]["observed"],
        "epochs": plan_cost(out).epochs,
        "path": " → ".join(
            f"{s['sampling']} {s['clip_length']}f lr={s['lr']:g} ({s['epochs']})"
            for s in plan["path"]
            if s["epochs"] > 0
        ),
        "test": None,
    }
    if not plan_only:
        final, test = out / "final", out / "final" / "test.json"
        recipe = str(out / "recipe.yaml")
        if opplan(["train", str(config), "--recipe", recipe, "--out", str(final), "--resume"]):
            raise SystemExit(f"opplan train {config} failed")
        if not test.is_file():
            checkpoint = str(final / "model.pt")
            args = ["evaluate", str(config), "--checkpoint", checkpoint, "--out", str(test)]
            if opplan(args) != 0:
                raise SystemExit(f"opplan evaluate {config} failed")
        row["test"] = json.loads(test.read_text())["top1"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("runs/demo_seeds"))
    parser.add_argument("--seeds", type=csv_arg(int), default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", type=csv_arg(str), default=["noise", "paper-T10"])
    parser.add_argument("--plan-only", type=csv_arg(str), default=["paper-T10"])
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown} (known: {sorted(VARIANTS)})")
    import torch

    torch.set_num_threads(1)
    rows = {
        (v, s): run(args.work, v, s, v in args.plan_only)
        for s in args.seeds
        for v in args.variants
    }
    val_videos = 60  # the demo's internal split: one video is 1/60
    lines = [
        "| seed | " + " | ".join(f"{v}: value / test / epochs" for v in args.variants) + " |",
        "|---|" + "---|" * len(args.variants),
    ]
    for s in args.seeds:
        cells = []
        for v in args.variants:
            r = rows[v, s]
            test = "—" if r["test"] is None else f"{100 * r['test']:.1f}"
            cells.append(f"{r['value']:.3f} / {test} / {r['epochs']}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    for v in args.variants:
        epochs = [rows[v, s]["epochs"] for s in args.seeds]
        tests = [rows[v, s]["test"] for s in args.seeds if rows[v, s]["test"] is not None]
        passed = sum(t >= 0.95 for t in tests)
        lines.append(
            f"\n`{v}`: mean epochs {statistics.mean(epochs):.0f}"
            + (f", test >= 95 % in {passed}/{len(tests)}" if tests else "")
        )
        for s in args.seeds:
            lines.append(f"- seed {s}: {rows[v, s]['path']}")
    if len(args.variants) >= 2:
        a, b = args.variants[:2]
        gaps = [(rows[a, s]["value"] - rows[b, s]["value"]) * val_videos for s in args.seeds]
        within = sum(g >= -1.0 for g in gaps)
        ratio = statistics.mean(rows[a, s]["epochs"] / rows[b, s]["epochs"] for s in args.seeds)
        lines.append(
            f"\n`{a}` vs `{b}`: value within one validation video (or above) in "
            f"{within}/{len(gaps)} (gaps in videos: {', '.join(f'{g:+.1f}' for g in gaps)}); "
            f"explored epochs {ratio:.2f}x"
        )
    text = "\n".join(lines) + "\n"
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "demo_seeds.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
