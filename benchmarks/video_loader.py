"""DataLoader throughput and decode efficiency of the video pipeline (docs/benchmarks.md).

Measures, for consecutive and uniform sampling:
- clips/s of a ``DataLoader`` over the synthetic mp4s (32 px) and over a 720p H.264 file
  encoded here (not committed), with ``--workers`` worker processes;
- frames decoded per frame returned (PyAV reader counters, main process).

Run:
    nice .venv/bin/python -m benchmarks.video_loader --workers 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from opplan.video import (
    PyAVReader,
    TransformConfig,
    VideoClipDataset,
    VideoRecord,
    read_video_list,
)
from opplan.video.sampling import ClipSampler
from opplan.video.synthetic import generate_dataset, write_mp4

__all__ = ["main"]


def _encode_720p(path: Path, num_frames: int) -> None:
    """A 720p H.264 clip with motion everywhere (gradients drifting, a moving box)."""
    height, width = 720, 1280
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]

    def frames():
        for t in range(num_frames):
            image = np.empty((height, width, 3), np.uint8)
            image[..., 0] = (x // 4 + 3 * t) % 256
            image[..., 1] = (y // 3 + 5 * t) % 256
            image[..., 2] = ((x + y) // 8 + 7 * t) % 256
            left = (17 * t) % (width - 100)
            image[300:400, left : left + 100] = 255
            yield image

    write_mp4(path, frames(), fps=30, crf=23, gop=60, bframes=2, preset="veryfast")


def _throughput(records, sampling, clip_length, tcfg, workers, batches) -> float:
    ds = VideoClipDataset(records, sampling=sampling, clip_length=clip_length, transform=tcfg)
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    it = iter(loader)
    next(it)  # start-up (worker spawn) not counted
    start, clips = time.perf_counter(), 0
    for _ in range(batches):
        try:
            clips += len(next(it)[1])
        except StopIteration:
            it = iter(loader)
    return clips / (time.perf_counter() - start)


def _decode_ratio(paths, sampling, clip_length, clips) -> tuple[float, float]:
    """(frames decoded per frame returned, seeks per clip) over random training clips."""
    sampler = ClipSampler(sampling, clip_length)
    rng = np.random.default_rng(0)
    decoded = returned = seeks = 0
    for k in range(clips):
        with PyAVReader(paths[k % len(paths)], threads=1) as reader:
            reader.get_frames(sampler.train(reader.num_frames, rng))
            decoded += reader.stats.frames_decoded
            returned += reader.stats.frames_returned
            seeks += reader.stats.seeks
    return decoded / returned, seeks / clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clip-length", type=int, default=16)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--hd-frames", type=int, default=300)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_dataset("tempo", root / "synth", videos_per_class=6, seed=0)
        synth = read_video_list(root / "synth" / "train.txt", root=root / "synth")
        _encode_720p(root / "hd.mp4", args.hd_frames)
        hd = [VideoRecord(str(root / "hd.mp4"), 0)] * 16
        cases = {
            "synthetic 32px (64-192 frames)": (synth, TransformConfig.scaled(32)),
            f"720p H.264 ({args.hd_frames} frames, g=60, bf=2)": (hd, TransformConfig()),
        }
        print(f"clip_length={args.clip_length} workers={args.workers} batch=8 (train mode)")
        print("| data | sampling | clips/s | frames decoded / returned | seeks / clip |")
        print("|---|---|---|---|---|")
        for name, (records, tcfg) in cases.items():
            paths = sorted({r.path for r in records})
            for sampling in ("consecutive", "uniform"):
                batches = args.batches if "synthetic" in name else max(4, args.batches // 3)
                rate = _throughput(
                    records, sampling, args.clip_length, tcfg, args.workers, batches
                )
                ratio, seeks = _decode_ratio(paths, sampling, args.clip_length, 40)
                print(f"| {name} | {sampling} | {rate:.1f} | {ratio:.2f} | {seeks:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
