"""Video readers side by side, raw vs prepared vs JPEG frames (docs/benchmarks.md, issue 15).

One process, all readers interleaved clip by clip (the same random training clips for every
reader, so load on a shared machine hits them alike; compare ratios within a run):

- files: a 720p H.264 file with a long GOP, and a Kinetics-like 340x256 file (GOP 250), each
  raw, prepared (``opplan data prepare --short-side 256 --gop 16``: the same code) and as
  JPEG frames (``--frames``); encoded here in a temporary folder, not committed;
- consecutive and uniform sampling (§3.1), 16, 32 and 64 frames;
- readers: PyAV, torchcodec and decord where they load (``--readers``), frames for JPEG;
- columns: clips/s per worker (one decoding thread, as in a DataLoader worker; decode only,
  and with the §5.2 training transform), frames decoded per frame returned and seeks per
  clip (PyAV's counters; the other readers keep none), MB read per clip (``rchar`` of
  /proc/self/io: bytes the process read, page cache included). Every clip opens its file
  afresh, PyAV's per-file index cache cleared (an epoch opens each video once).

Run:
    nice .venv/bin/python -m benchmarks.video_loader [--clips 8] [--frames 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av  # noqa: F401  -- PyAV's FFmpeg before decord's (opplan.video.io._decord)
import numpy as np

from opplan.errors import ConfigError
from opplan.video.io import check_backend, open_video
from opplan.video.io._pyav import _build_index
from opplan.video.prepare import PrepareJob, PrepareOptions, prepare_video
from opplan.video.sampling import ClipSampler
from opplan.video.synthetic import write_mp4
from opplan.video.transforms import TransformConfig, build_transform

__all__ = ["main"]


def _moving(width: int, height: int, num_frames: int):  # type: ignore[no-untyped-def]
    """Frames with motion everywhere (drifting gradients, a moving box)."""
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    for t in range(num_frames):
        image = np.empty((height, width, 3), np.uint8)
        image[..., 0] = (x // 4 + 3 * t) % 256
        image[..., 1] = (y // 3 + 5 * t) % 256
        image[..., 2] = ((x + y) // 8 + 7 * t) % 256
        side = height // 7
        left = (17 * t) % (width - side)
        image[height // 3 : height // 3 + side, left : left + side] = 255
        yield image


def _rchar() -> int:
    with open("/proc/self/io", encoding="ascii") as handle:
        return int(next(line for line in handle if line.startswith("rchar")).split()[1])


def _readers(wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    ok, why = [], {}
    for name in wanted:
        try:
            check_backend(name)
            ok.append(name)
        except ConfigError as err:
            why[name] = str(err)
    return ok, why


def _row(path: Path, backends: list[str], sampling: str, length: int, clips: int,
         transform) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]  # fmt: skip
    """Interleaved: clip k is read by every backend before clip k+1."""
    sampler = ClipSampler(sampling, length)  # type: ignore[arg-type]
    with open_video(path, backend=backends[0], threads=1) as probe:
        n = probe.num_frames
    rng = np.random.default_rng(0)
    plans = [sampler.train(n, rng) for _ in range(clips)]
    acc = {b: {"decode": 0.0, "total": 0.0, "decoded": 0, "returned": 0, "seeks": 0,
               "bytes": 0, "exact": True} for b in backends}  # fmt: skip
    for indices in plans:
        for backend in backends:
            # a training epoch opens each video once: no reader may reuse a cached index
            _build_index.cache_clear()
            before, start = _rchar(), time.perf_counter()
            with open_video(path, backend=backend, threads=1) as reader:  # type: ignore[arg-type]
                frames = reader.get_frames(indices)
                stats, exact = reader.stats, reader.exact_counts
            decoded = time.perf_counter()
            transform(frames)
            a = acc[backend]
            a["decode"] += decoded - start
            a["total"] += time.perf_counter() - start
            a["bytes"] += _rchar() - before
            a["decoded"] += stats.frames_decoded
            a["returned"] += stats.frames_returned
            a["seeks"] += stats.seeks
            a["exact"] = exact
    return {b: {"clips_s": clips / a["decode"], "clips_s_transform": clips / a["total"],
                "ratio": a["decoded"] / a["returned"] if a["exact"] else float("nan"),
                "seeks": a["seeks"] / clips if a["exact"] else float("nan"),
                "mb": a["bytes"] / clips / 1e6} for b, a in acc.items()}  # fmt: skip


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="random clips per row")
    parser.add_argument("--frames", type=int, default=300, help="frames per source file")
    parser.add_argument("--lengths", default="16,32,64")
    parser.add_argument("--readers", default="pyav,torchcodec,decord")
    args = parser.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    encoded, missing = _readers(args.readers.split(","))
    print(f"readers: {', '.join(encoded)}; not available: "
          + ("; ".join(f"{k}: {v}" for k, v in missing.items()) or "none"))  # fmt: skip
    transform = build_transform(TransformConfig(), "train")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = {
            "720p H.264, g=250": (1280, 720),
            "Kinetics-like 340x256, g=250": (340, 256),
        }
        for name, (w, h) in sources.items():
            raw = write_mp4(root / f"{w}.mp4", _moving(w, h, args.frames), fps=30, crf=23,
                            gop=250, bframes=2, preset="veryfast")  # fmt: skip
            prepared = prepare_video(PrepareJob(str(raw), str(root / f"{w}_p.mp4")),
                                     PrepareOptions(short_side=256, gop=16))  # fmt: skip
            jpeg = prepare_video(PrepareJob(str(raw), str(root / f"{w}_f")),
                                 PrepareOptions(short_side=256, frames=True))  # fmt: skip
            variants = {"raw": (raw, encoded), "prepared 256/g16": (Path(prepared.output),
                        encoded), "JPEG frames 256": (Path(jpeg.output), ["frames"])}  # fmt: skip
            for variant, (path, backends) in variants.items():
                size = sum(f.stat().st_size for f in Path(path).rglob("*")) if path.is_dir() \
                    else path.stat().st_size  # fmt: skip
                for sampling in ("consecutive", "uniform"):
                    for length in lengths:
                        row = _row(path, backends, sampling, length, args.clips, transform)
                        for backend, r in row.items():
                            results.append((name, variant, size, sampling, length, backend, r))
                            print(f"{name} | {variant} | {sampling} {length} | {backend} | "
                                  f"{r['clips_s']:.2f} clips/s", flush=True)  # fmt: skip
    print()
    print(f"clips per row: {args.clips}; source files {args.frames} frames at 30 fps")
    print(
        "| file | copy (size) | sampling | T | reader | clips/s per worker (decode) | "
        "clips/s with train transform | decoded / returned | seeks / clip | MB / clip |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, variant, size, sampling, length, backend, r in results:
        print(f"| {name} | {variant} ({size / 1e6:.1f} MB) | {sampling} | {length} | {backend} | "
              f"{r['clips_s']:.2f} | {r['clips_s_transform']:.2f} | {_fmt(r['ratio'])} | "
              f"{_fmt(r['seeks'])} | {r['mb']:.2f} |")  # fmt: skip
    _targets(results)
    return 0


def _targets(results) -> None:  # type: ignore[no-untyped-def]
    """The issue's targets, met or missed, from this run's numbers."""

    def get(name, variant, sampling, length, backend="pyav"):  # type: ignore[no-untyped-def]
        for n, v, _, s, t, b, r in results:
            if n.startswith(name) and v.startswith(variant) and s == sampling and t == length \
                    and b == backend:  # fmt: skip
                return r
        return None

    print()
    for name in ("720p", "Kinetics"):
        ratios = [get(name, "prepared", s, t)["ratio"] for s in ("consecutive", "uniform")
                  for t in (16, 32, 64) if get(name, "prepared", s, t)]  # fmt: skip
        print(f"{name} prepared: max decoded/returned {max(ratios):.2f} (target <= 2)")
        for t in (16, 32, 64):
            u, c = get(name, "prepared", "uniform", t), get(name, "prepared", "consecutive", t)
            if u and c:
                print(f"{name} prepared T={t}: uniform/consecutive clips/s "
                      f"{u['clips_s'] / c['clips_s']:.2f} (target >= 0.7)")  # fmt: skip
    raw, prep = get("Kinetics", "raw", "uniform", 16), get("Kinetics", "prepared", "uniform", 16)
    if raw and prep:
        print(f"Kinetics-like uniform 16: prepared/raw clips/s "
              f"{prep['clips_s'] / raw['clips_s']:.2f} (target >= 3)")  # fmt: skip
    worse = []
    for n, v, _, s, t, b, r in results:
        ref = get(n, v, s, t)
        if b != "pyav" and ref is not None and r["clips_s"] < ref["clips_s"]:
            worse.append(f"{b} {n} {v} {s} {t}: {r['clips_s'] / ref['clips_s']:.2f}x")
    print("rows where a reader is slower than PyAV: " + ("; ".join(worse) or "none"))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
