"""Does the internal validation split leak clips of one source video? (§5.1, issue 14)

Clips cut from a few source videos share their source's look (background, lighting, camera);
a random internal split puts clips of one source on both sides, so the planner scores
memorised sources, not the class. This benchmark builds such a data set: 2 classes, each
source a strong static background of its own with a faint moving square whose direction is
the class, several clips per source; the test list holds other sources. It plans the same
one-state graph twice — random split (``group_pattern`` unset) and grouped split
(``data.group_pattern`` naming the source) — and evaluates each plan's final checkpoint on
the test list. The gap between internal-validation and test top-1 is the leak.

    python -m benchmarks.group_leak --work runs/group_leak
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml

from opplan.cli import main as opplan
from opplan.video.synthetic import write_mp4


def _source_clips(
    rng: np.random.Generator, label: int, clips: int, frames: int, size: int, signal: float
):
    """Clips of one source: its own smooth background, a faint square moving right (class 0)
    or left (class 1) at a random height and speed."""
    coarse = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
    background = np.kron(coarse, np.ones((size // 4, size // 4, 1)))
    for _ in range(clips):
        video = np.repeat(background[None], frames, axis=0)
        video += rng.normal(0, 6, video.shape)
        y = int(rng.integers(2, size - 8))
        speed = float(rng.uniform(0.8, 1.6))
        for t in range(frames):
            x = int((t * speed) % (size - 6))
            x = x if label == 0 else size - 6 - x
            video[t, y : y + 6, x : x + 6] += signal  # the background is the easy cue
        yield np.clip(video, 0, 255).astype(np.uint8)


def make_data(
    root: Path, *, sources: int, test_sources: int, clips: int, seed: int, signal: float
) -> None:
    rng = np.random.default_rng(seed)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for split, count in (("train", sources), ("test", test_sources)):
        for label in range(2):
            for s in range(count):
                name = f"{split}{label}{s}"
                for c, video in enumerate(_source_clips(rng, label, clips, 16, 32, signal)):
                    path = f"src{name}_clip{c}.mp4"
                    write_mp4(root / path, video)
                    lists[split].append(f"{path} {label}")
    for split, lines in lists.items():
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


def _config(root: Path, grouped: bool, val_size: int, epochs: int) -> dict:
    data = {
        "root": str(root),
        "val_list": None,
        "test_list": "test.txt",
        "internal_val_size": val_size,
        "frame_size": 32,
        "cache": "memory",
    }
    if grouped:
        data["group_pattern"] = r"src(\w+?)_clip"
    return {
        "graph": {
            "kind": "basic",
            "samplings": ["uniform"],
            "clip_lengths": [8],
            "learning_rates": [0.05],
        },
        "planner": {"delay": 3, "max_epochs": epochs, "min_epochs": epochs, "value": "observed"},
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "seed": 0,
            "data": data,
            "optim": {
                "effective_batch": 8,
                "reference_batch": 8,
                "base_micro_batch": 8,
                "base_clip_length": 8,
            },
        },
    }


def run(work: Path, epochs: int, signal: float, seed: int) -> dict:
    data = work / "data"
    if not (data / "test.txt").exists():
        make_data(data, sources=4, test_sources=3, clips=8, seed=seed, signal=signal)
    rows = {}
    for grouped in (False, True):
        name = "grouped" if grouped else "random"
        config = work / f"{name}.yaml"
        config.write_text(yaml.safe_dump(_config(data, grouped, 16, epochs), sort_keys=False))
        run_dir = work / name
        start = time.perf_counter()
        assert opplan(["plan", str(config), "--out", str(run_dir), "--resume"]) == 0
        plan = json.loads((run_dir / "plan.json").read_text())
        checkpoint = run_dir / "checkpoints" / f"{plan['final_checkpoint']}.pt"
        out = run_dir / "test.json"
        argv = ["evaluate", str(config), "--checkpoint", str(checkpoint), "--views", "3x1"]
        assert opplan([*argv, "--out", str(out)]) == 0
        test = json.loads(out.read_text())
        rows[name] = {
            "internal_val_top1": plan["path"][-1]["value"],
            "test_top1": test["top1"],
            "epochs": plan["path"][-1]["epochs"],
            "seconds": round(time.perf_counter() - start, 1),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/group_leak"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--signal", type=float, default=40, help="brightness of the square")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = run(args.work, args.epochs, args.signal, args.seed)
    (args.work / "group_leak.json").write_text(json.dumps(rows, indent=2))
    print("| split | internal val top-1 | test top-1 | gap | epochs |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        gap = r["internal_val_top1"] - r["test_top1"]
        print(f"| {name} | {r['internal_val_top1']:.3f} | {r['test_top1']:.3f} | {gap:+.3f} "
              f"| {r['epochs']} |")  # fmt: skip


if __name__ == "__main__":
    main()
