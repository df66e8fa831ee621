"""One prepared device check (issue 16): correctness, throughput, loader, end to end.

Run on a lent GPU (about 5 minutes; no download; results in OUT)::

    .venv/bin/python -m benchmarks.device_check --out runs/device_check

    .venv/bin/python -m benchmarks.device_check --device cpu --quick --out /tmp/dc  # < 1 min

Writes ``OUT/device_check.json`` and ``OUT/device_check.md`` (the table for
docs/benchmarks.md). A second run reuses the prepared videos and inductor's cache in OUT
and resumes the end-to-end plan where the first one stopped.

1. Correctness: 30 steps of DG-P3D-R50 (random weights, one fixed synthetic batch of
   16×112² clips) in fp32 (TF32 off), bf16 and fp16: loss curves within a tolerance of
   fp32; frozen BatchNorms (§5.2) unchanged by training; a checkpoint saved on the device
   loads on the CPU and gives the same outputs.
2. Throughput: DG-P3D-R50 and torchvision's R(2+1)D-18 at 16×112² and 16×224² (and
   DG-P3D at 64×112²), eager / channels_last / compile × fp32 / bf16, timed in
   interleaved rounds (one step of every variant per round, with a bf16 matmul probe):
   clips/s, achieved TFLOP/s (``torch.utils.flop_counter``, forward + backward, 2 per
   multiply-add), fraction of the device's dense bf16 peak, peak memory. Compiled
   variants are built while the phase's time lasts, 16×112² first.
3. Loader: clips/s of the real DataLoader (workers = CPU count) on prepared synthetic
   videos at 112 px, against the fastest DG-P3D-R50 step's consumption at 16×112².
4. End to end: the demo config at 112 px on the device, one plan, timed (stopped at the
   budget; the next run resumes it).

``--quick`` swaps in the tiny networks and sizes (and, on CPU, the ``aot_eager`` compile
backend: inductor's C++ build takes minutes there) so every code path runs in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmarks.device_phases import (
    check_correctness,
    measure_loader,
    measure_throughput,
    run_end_to_end,
    start_videos,
)

__all__ = ["main"]


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        dg, r21 = "dg_p3d_tiny", "p3d_tiny"  # torchvision's R(2+1)D costs 30 s here
        return {
            "correctness": {"model": dg, "thw": (4, 16, 16), "batch": 2, "steps": 5},
            "groups": [(dg, (4, 16, 16), 2), (r21, (4, 16, 16), 2)],
            "compile_groups": 1,
            "compile_precisions": ["fp32"],
            "rounds": 2,
            "warmup": 1,
            "data": {"videos_per_class": 3, "size": 32, "min_frames": 16, "max_frames": 24},
            "loader": {"clip_length": 4, "batch": 4, "batches": 3},
        }
    dg, r21 = "dg_p3d_resnet50", "r2plus1d_18"
    return {
        "correctness": {"model": dg, "thw": (16, 112, 112), "batch": 8, "steps": 30},
        "groups": [
            (dg, (16, 112, 112), 16),
            (r21, (16, 112, 112), 16),
            (dg, (16, 224, 224), 4),
            (r21, (16, 224, 224), 4),
            (dg, (64, 112, 112), 4),
        ],
        "compile_groups": 5,
        "compile_precisions": ["bf16", "fp32"],
        "rounds": 8,
        "warmup": 3,
        "data": {"videos_per_class": 10, "size": 112, "min_frames": 64, "max_frames": 192},
        "loader": {"clip_length": 16, "batch": 16, "batches": 40},
    }


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, as same-run ratios."""
    rows = report.get("throughput", {}).get("rows", [])
    (dg, thw, _), (r21, _, _) = report["settings"]["groups"][:2]

    def find(model: str, layout: str, precision: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if (r["model"], tuple(r["thw"]), r["layout"], r["precision"])
                == (model, tuple(thw), layout, precision)
            ),
            None,
        )

    out = []
    fast, slow = find(dg, "channels_last", "bf16"), find(dg, "eager", "fp32")
    if fast and slow:
        ratio = fast["clips_per_s"] / slow["clips_per_s"]
        out.append(
            {"target": f"{dg} bf16+channels_last / fp32 eager clips/s", "want": 2.0, "got": ratio}
        )
    for layout, precision in (("eager", "fp32"), ("channels_last", "bf16")):
        a, b = find(dg, layout, precision), find(r21, layout, precision)
        if a and b:
            out.append(
                {
                    "target": f"{dg} / {r21} TFLOP/s, {layout} {precision}",
                    "want": 1.0,
                    "got": a["tflops"] / b["tflops"],
                }
            )
    loader = report.get("loader", {}).get("rows", [])
    dg_rows = [r for r in rows if r["model"] == dg and tuple(r["thw"]) == tuple(thw)]
    if loader and dg_rows:
        consumption = max(r["clips_per_s"] for r in dg_rows)
        for r in loader:
            out.append(
                {
                    "target": f"loader ({r['sampling']}, {r['workers']} workers) / "
                    f"fastest {dg} step",
                    "want": 1.5,
                    "got": r["clips_per_s"] / consumption,
                }
            )
    for t in out:
        t["met"] = t["got"] >= t["want"]
    return out


def markdown(report: dict[str, Any]) -> str:
    r = report
    lines = [
        f"Device check, {r['date']}: {r['device_name']} ({r['device']}), torch "
        f"{r['torch']}, {r['cpus']} CPUs{', --quick' if r['quick'] else ''}; "
        f"{r['seconds']:.0f} s. `{r['command']}`",
        "",
    ]
    c = r.get("correctness")
    if c and "rows" in c:
        lines += [
            f"Correctness ({c['model']}, {c['steps']} steps, batch {c['batch']} of "
            f"{'×'.join(map(str, c['thw']))}): frozen BN unchanged: {c['frozen_bn_ok']}; "
            f"checkpoint on CPU: rel. dev. {c['checkpoint_cpu_rel_dev']:.1e}",
            "",
            "| precision | first loss | last loss | max deviation from fp32 / first loss | "
            "tolerance | ok |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {x['precision']} | {x['first']:.4f} | {x['last']:.4f} | "
            f"{x['max_rel_dev']:.2e} | {x['tolerance']} | {x['ok']} |"
            for x in c["rows"]
        ]
        lines.append("")
    t = r.get("throughput")
    if t and "rows" in t:
        lines += [
            f"Throughput (bf16 peak {t['bf16_peak_tflops']:.3g} TFLOP/s, "
            f"{t['peak_source']}; bf16 matmul measured {t['matmul_bf16_tflops']:.3g}; "
            f"compile backend {t['compile_backend']}):",
            "",
            "| model | clip | batch | layout | precision | clips/s | train GFLOP/clip | "
            "TFLOP/s | of bf16 peak | peak GiB | warm-up s |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for x in t["rows"]:
            mem = f"{x['peak_gib']:.1f}" if x["peak_gib"] is not None else "n/a"
            lines.append(
                f"| {x['model']} | {'×'.join(map(str, x['thw']))} | {x['batch']} | "
                f"{x['layout']} | {x['precision']} | {x['clips_per_s']:.2f} | "
                f"{x['train_gflop_per_clip']:.3g} | {x['tflops']:.3g} | "
                f"{100 * x['fraction_of_peak']:.1f}% | {mem} | {x['warmup_s']:.1f} |"
            )
        lines += [
            f"- not run: {x['model']} {'×'.join(map(str, x['thw']))} {x['layout']} "
            f"{x['precision']} ({x['why']})"
            for x in t["skipped"]
        ]
        lines.append("")
    ld = r.get("loader")
    if ld and "rows" in ld:
        lines += [
            f"Loader ({ld['clip_length']}×{ld['size']}² clips, synthetic videos "
            f"prepared in {r.get('data_seconds', 0):.0f} s): "
            + ", ".join(
                f"{x['sampling']} {x['clips_per_s']:.1f} clips/s ({x['workers']} workers)"
                for x in ld["rows"]
            ),
            "",
        ]
    e = r.get("end_to_end")
    if e and "status" in e:
        lines += [
            f"End to end (demo config at {r['size']} px): {e['status']}, "
            f"{e['seconds']:.0f} s, {e['epochs']} epochs ({e['epochs_total']} in the "
            f"journal), best final state {e['best_final_state']}",
            "",
        ]
    if r.get("targets"):
        lines += ["| target | want | got | met |", "|---|---|---|---|"]
        lines += [
            f"| {x['target']} | ≥ {x['want']} | {x['got']:.2f} | {x['met']} |"
            for x in r["targets"]
        ]
    for phase, err in r["errors"].items():
        lines.append(f"- **{phase} failed**: {err}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cuda, cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: every code path")
    parser.add_argument("--out", type=Path, default=Path("runs/device_check"))
    parser.add_argument("--budget", type=float, default=300.0, help="seconds in all")
    parser.add_argument(
        "--compile-backend", default=None, help="default inductor (aot_eager with --quick on CPU)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 1 with --quick)"
    )
    args = parser.parse_args(argv)
    threads = args.threads or (1 if args.quick else None)
    if threads:  # on shared cores spinning OpenMP threads cost 30x (docs/benchmarks.md)
        torch.set_num_threads(threads)
    start = time.monotonic()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if args.device == "auto"
        else args.device
    )
    if device.type == "cuda" and not torch.cuda.is_available():
        print("device_check: error: --device cuda but no GPU is available", file=sys.stderr)
        return 2
    quick = args.quick
    backend = args.compile_backend or (
        "aot_eager" if quick and device.type == "cpu" else "inductor"
    )
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str((out / "compile_cache").resolve())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    cfg = _settings(quick)
    size = cfg["data"]["size"]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "quick": quick,
        "size": size,
        "command": " ".join(["python -m benchmarks.device_check", *(argv or sys.argv[1:])]),
        "settings": cfg,
        "errors": {},
        "phase_seconds": {},
    }
    # share of the budget per phase (what is left over passes to the next one)
    shares = {"correctness": 0.12, "throughput": 0.5, "loader": 0.13, "end_to_end": 0.25}
    spent = 0.0

    def phase(name: str, fn: Callable[[float], Any]) -> None:
        nonlocal spent
        spent += shares[name]
        deadline = start + spent * args.budget
        print(f"device_check: {name} ({max(deadline - time.monotonic(), 0):.0f} s)", flush=True)
        t0 = time.monotonic()
        try:
            report[name] = fn(deadline)
        except Exception as err:  # one failing phase must not hide the others' numbers
            report["errors"][name] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
            if device.type == "cuda":
                torch.cuda.empty_cache()
        report["phase_seconds"][name] = time.monotonic() - t0

    root, videos_ready = start_videos(out, cfg["data"])  # CPU work beside the device phases
    phase("correctness", lambda _: check_correctness(device, cfg["correctness"], out))
    phase("throughput", lambda d: measure_throughput(device, cfg, backend, d))
    report["data_seconds"] = videos_ready()
    workers = os.cpu_count() or 1
    phase("loader", lambda _: measure_loader(root, cfg["loader"], workers, size))
    phase(
        "end_to_end",
        lambda d: run_end_to_end(root, out, device, quick, size, max(d - time.monotonic(), 20)),
    )
    report["targets"] = targets(report)
    report["seconds"] = time.monotonic() - start
    (out / "device_check.json").write_text(json.dumps(report, indent=1, default=str))
    table = markdown(report)
    (out / "device_check.md").write_text(table)
    print(table)
    correct = report.get("correctness", {}).get("ok", False)
    return 0 if correct and not report["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
