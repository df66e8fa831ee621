"""Consecutive vs uniform sampling on the built-in synthetic tasks (issue 3, docs/results.md).

For each task (``order``, ``tempo``) a fixed tiny 3D network is trained the same number of
epochs with consecutive and with uniform sampling at equal clip length, for several seeds;
the planning-evaluation top-1 (one centre clip, one centre crop, §5.2) on the validation split
is reported. Expected: uniform wins on ``order``, consecutive wins on ``tempo``.

Run (CPU, one thread, ~1 h for the default settings):
    nice -n 10 .venv/bin/python -m benchmarks.video_sampling_experiment --out runs/sampling-exp
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from opplan.video import (
    ArrayReader,
    TransformConfig,
    VideoClipDataset,
    VideoRecord,
    open_video,
    read_video_list,
)
from opplan.video.synthetic import TASKS, generate_dataset

__all__ = ["TinyNet3D", "main"]


class TinyNet3D(nn.Module):
    """A fixed small 3D ConvNet: four Conv3d-BN-ReLU stages, global pooling, linear head."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        pools = [(1, 2, 2), (2, 2, 2), (2, 2, 2), None]
        layers: list[nn.Module] = []
        for c_in, c_out, pool in zip(chans[:-1], chans[1:], pools, strict=True):
            layers += [nn.Conv3d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm3d(c_out)]
            layers.append(nn.ReLU(inplace=True))
            if pool is not None:
                layers.append(nn.MaxPool3d(pool))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(chans[-1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3, 4)))


def _cache(records: list[VideoRecord]) -> dict[str, np.ndarray]:
    """Decode every video once into memory (the experiment's decoded-clip cache)."""
    cache = {}
    for r in records:
        with open_video(r.path) as reader:
            cache[r.path] = reader.get_frames(np.arange(reader.num_frames))
    return cache


def _run(task: str, root: Path, sampling: str, seed: int, args: argparse.Namespace, cache) -> dict:
    torch.manual_seed(seed)
    train = read_video_list(root / "train.txt", root=root, num_classes=TASKS[task])
    val = read_video_list(root / "val.txt", root=root, num_classes=TASKS[task])
    factory = lambda r: ArrayReader(cache[r.path], path=r.path)  # noqa: E731
    tcfg = TransformConfig.scaled(args.size)
    common = dict(sampling=sampling, clip_length=args.clip_length, transform=tcfg,
                  reader_factory=factory, seed=seed)  # fmt: skip
    train_ds = VideoClipDataset(train, mode="train", **common)
    val_ds = VideoClipDataset(val, mode="plan_eval", **common)
    model = TinyNet3D(TASKS[task], width=args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(args.epochs):
        train_ds.set_epoch(epoch)
        model.train()
        correct = seen = 0
        for clips, labels, _ in DataLoader(train_ds, batch_size=16, shuffle=True, generator=gen):
            logits = model(clips)
            loss = nn.functional.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        sched.step()
        model.eval()
        hits = 0
        with torch.no_grad():
            for clips, labels, _ in DataLoader(val_ds, batch_size=32):
                hits += int((model(clips).argmax(1) == labels).sum())
        history.append(
            {"epoch": epoch + 1, "train_top1": correct / seen, "val_top1": hits / len(val_ds)}
        )
        print(task, sampling, seed, history[-1], flush=True)
    return {"task": task, "sampling": sampling, "seed": seed, "history": history,
            "final_val_top1": history[-1]["val_top1"],
            "best_val_top1": max(h["val_top1"] for h in history)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/sampling-exp"))
    parser.add_argument("--tasks", nargs="+", default=["order", "tempo"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--videos-per-class", type=int, default=50)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--clip-length", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--samplings",
        nargs="+",
        default=["consecutive", "uniform"],
        choices=["consecutive", "uniform"],
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for task in args.tasks:
        root = args.out / "data" / task
        if not (root / "manifest.json").exists():
            generate_dataset(task, root, videos_per_class=args.videos_per_class,
                             seed=args.data_seed, size=args.size)  # fmt: skip
        records = read_video_list(root / "train.txt", root=root) + read_video_list(
            root / "val.txt", root=root
        )
        cache = _cache(records)
        for seed in args.seeds:
            for sampling in args.samplings:
                start = time.time()
                result = _run(task, root, sampling, seed, args, cache)
                result["seconds"] = round(time.time() - start, 1)
                results.append(result)
                (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print("task     sampling     " + " ".join(f"seed{s}" for s in args.seeds) + "  mean")
    for task in args.tasks:
        for sampling in args.samplings:
            accs = [r["final_val_top1"] * 100 for r in results
                    if r["task"] == task and r["sampling"] == sampling]  # fmt: skip
            cells = " ".join(f"{a:5.1f}" for a in accs)
            print(f"{task:8} {sampling:12} {cells}  {np.mean(accs):5.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
