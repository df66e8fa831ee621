"""Training throughput of the P3D family on this CPU (issue 4, "Done when").

Measures, in one run:

* the fp32 matmul peak of this CPU (``torch.mm`` of two 2048×2048 matrices), per thread count;
* training clips/s (forward + heads_loss + backward + SGD step) of
  ``dg_p3d_tiny`` at the demo size, ``dg_p3d_resnet50`` at 16×112×112 and torchvision's
  ``r2plus1d_18`` at 16×112×112 (and the demo size), for several variants:
  thread count, ``channels_last_3d`` memory format, ``torch.compile``;
* achieved FLOP/s = (FLOPs of one training step, counted by FlopCounterMode: forward and
  backward, 2 per multiply-add) × steps/s, and its fraction of the matmul peak.

Run::

    nice python -m benchmarks.models_throughput            # the full table (~10 min)
    nice python -m benchmarks.models_throughput --quick    # the tiny model only (~1 min)

Variants of one model are timed in interleaved rounds (one step of each per round, plus a
matmul probe per round) and the medians reported, so the load that other users put on the
shared CPU falls on every variant and on the peak alike.

The CPU is shared: the script prints ``uptime``'s load average before and after. When the
machine is oversubscribed, run it with ``OMP_WAIT_POLICY=PASSIVE`` too (set before Python
starts: OpenMP reads it once): spinning OpenMP threads are what makes 2 threads slow there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from opplan.models import build_model, heads_loss

__all__ = ["main"]

NUM_CLASSES = 10


@dataclass
class Result:
    model: str
    input_thw: tuple[int, int, int]
    batch: int
    threads: int
    variant: str
    clips_per_s: float
    step_s: float
    train_gflop_per_clip: float
    achieved_gflops: float
    peak_gflops: float
    compile_s: float | None = None

    @property
    def fraction_of_peak(self) -> float:
        return self.achieved_gflops / self.peak_gflops


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 3) -> float:
    """Best-of-``repeats`` fp32 GFLOP/s of an n×n by n×n matmul (2n³ FLOPs)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def train_flops_per_clip(name: str, thw: tuple[int, int, int]) -> float:
    """FLOPs of forward + backward for one clip, counted on the meta device."""
    with torch.device("meta"):
        model = build_model(name, NUM_CLASSES)
        clips = torch.zeros(2, 3, *thw)
        labels = torch.zeros(2, dtype=torch.long)
    model.train()
    with FlopCounterMode(display=False) as counter:
        heads_loss(model(clips), labels).backward()
    return counter.get_total_flops() / 2


class Runner:
    """One training setup (model, input, batch, memory format, compiled or not)."""

    def __init__(
        self, name: str, thw: tuple[int, int, int], batch: int, variant: str, threads: int
    ) -> None:
        self.name, self.thw, self.batch, self.variant, self.threads = (
            name,
            thw,
            batch,
            variant,
            threads,
        )
        torch.manual_seed(0)
        model = build_model(name, NUM_CLASSES).train()
        self.clips = torch.randn(batch, 3, *thw)
        self.labels = torch.randint(0, NUM_CLASSES, (batch,))
        if "channels_last" in variant:
            model = model.to(memory_format=torch.channels_last_3d)
            self.clips = self.clips.contiguous(memory_format=torch.channels_last_3d)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.forward: Callable[[torch.Tensor], object] = (
            torch.compile(model) if "compile" in variant else model
        )
        self.times: list[float] = []
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        self.step()  # warm-up (and compilation)
        self.step()
        self.warmup_s = time.perf_counter() - t0

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        heads_loss(self.forward(self.clips), self.labels).backward()  # type: ignore[arg-type]
        self.optimizer.step()

    def timed_step(self) -> None:
        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        self.step()
        self.times.append(time.perf_counter() - t0)


def run_group(
    name: str, thw: tuple[int, int, int], batch: int, variants: list[tuple[str, int]], rounds: int
) -> list[Result]:
    """Time the variants in interleaved rounds (with a matmul-peak probe in every round), so
    that the other users' load on the shared CPU hits every variant alike."""
    runners = [Runner(name, thw, batch, v, t) for v, t in variants]
    peak_times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for threads, times in peak_times.items():
            times.append(matmul_peak_gflops(threads, repeats=2))
        for runner in runners:
            runner.timed_step()
    flops = train_flops_per_clip(name, thw)
    results = []
    for r in runners:
        step_s = statistics.median(r.times)
        peak = statistics.median(peak_times[r.threads])
        results.append(
            Result(
                name,
                thw,
                batch,
                r.threads,
                r.variant,
                batch / step_s,
                step_s,
                flops / 1e9,
                flops * batch / step_s / 1e9,
                peak,
                r.warmup_s if "compile" in r.variant else None,
            )
        )
    return results


def _plan(quick: bool) -> list[tuple[str, tuple[int, int, int], int, list[tuple[str, int]], int]]:
    demo, big = (16, 64, 64), (16, 112, 112)
    variants = [("eager", 2), ("eager", 1), ("channels_last", 2), ("compile", 2)]
    plan = [("dg_p3d_tiny", demo, 8, variants, 15)]
    if quick:
        return plan
    return [
        *plan,
        ("r2plus1d_18", demo, 8, [("eager", 2), ("eager", 1), ("channels_last", 2)], 3),
        ("dg_p3d_resnet50", big, 2, variants, 4),
        ("r2plus1d_18", big, 2, [("eager", 2), ("eager", 1), ("channels_last", 2)], 3),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the demo-sized model")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        f"load average before: {load_average()}"
    )
    print(
        "| model | clip T×H×W | batch | threads | variant | clips/s | train GFLOP/clip | "
        "achieved GFLOP/s | matmul peak GFLOP/s | fraction of peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for name, thw, batch, variants, rounds in _plan(args.quick):
        for r in run_group(name, thw, batch, variants, rounds):
            results.append(r)
            extra = f" (compile+warm-up {r.compile_s:.0f} s)" if r.compile_s is not None else ""
            print(
                f"| {r.model} | {'×'.join(map(str, r.input_thw))} | {r.batch} | {r.threads} | "
                f"{r.variant}{extra} | {r.clips_per_s:.2f} | {r.train_gflop_per_clip:.2f} | "
                f"{r.achieved_gflops:.1f} | {r.peak_gflops:.0f} | "
                f"{100 * r.fraction_of_peak:.0f}% |",
                flush=True,
            )
    print(f"load average after: {load_average()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [asdict(r) | {"fraction_of_peak": r.fraction_of_peak} for r in results],
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
