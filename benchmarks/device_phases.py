"""The phases of benchmarks/device_check.py (issue 16): correctness, throughput, loader,
end to end. Each returns a JSON-able dict; see device_check.py for what they measure."""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from opplan.engine.checkpoint import load_checkpoint, save_checkpoint
from opplan.engine.performance import autocast, kernel_guard, make_scaler, to_channels_last
from opplan.models import build_model, freeze_bn, frozen_bn_names, heads_loss

__all__ = [
    "check_correctness",
    "measure_loader",
    "measure_throughput",
    "run_end_to_end",
    "start_videos",
]

ROOT = Path(__file__).resolve().parent.parent
NUM_CLASSES = 10
# dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets
BF16_PEAK = {
    "H200": 989,
    "H100 SXM": 989,
    "H100 PCIe": 756,
    "H100": 989,
    "A100": 312,
    "L40S": 362,
    "L4": 121,
    "A10": 125,
    "RTX 4090": 165,
    "GH200": 989,
    "B200": 2250,
}
# max deviation of a step's loss from fp32's, relative to fp32's first loss (the curve's
# scale: a memorized batch's loss nears 0, where a relative error means nothing)
TOLERANCE = {"bf16": 0.05, "fp16": 0.02}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _dense_bf16_peak(device: torch.device) -> tuple[float | None, str]:
    if device.type != "cuda":
        return None, "cpu"
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAK.items():  # the more specific names come first
        if key in name:
            return float(peak), name
    return None, name


def _matmul_tflops(device: torch.device, dtype: torch.dtype, n: int) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device)
    b = b.to(dtype)
    torch.mm(a, b)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(3):
        torch.mm(a, b)
    _sync(device)
    return 3 * 2 * n**3 / (time.perf_counter() - t0) / 1e12


def _train_flops_per_clip(name: str, thw: tuple[int, int, int]) -> float:
    """FLOPs of forward + backward of one clip, counted on the meta device."""
    with torch.device("meta"):
        model = build_model(name, NUM_CLASSES).train()
        clips, labels = torch.zeros(2, 3, *thw), torch.zeros(2, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        heads_loss(model(clips), labels).backward()
    return counter.get_total_flops() / 2


class Step:
    """One training setup: model, fixed batch, precision, memory format, compiled or not."""

    def __init__(self, name, thw, batch, device, precision, layout, backend, warmup=3):  # type: ignore[no-untyped-def]
        self.name, self.thw, self.batch, self.device = name, thw, batch, device
        self.precision, self.layout = precision, layout
        torch.manual_seed(0)
        self.model = build_model(name, NUM_CLASSES).to(device).train()
        self.clips = torch.randn(batch, 3, *thw, device=device)
        self.labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
        if layout == "channels_last":
            self.model.to(memory_format=torch.channels_last_3d)
            self.clips = to_channels_last(self.clips)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        self.scaler = make_scaler(precision, device)
        self.forward: Callable[..., Any] = self.model
        if layout == "compile":
            torch._dynamo.reset()
            self.forward = torch.compile(self.model, backend=backend)
        self.times: list[float] = []
        self.peak = 0
        cuda = device.type == "cuda"
        before = torch.cuda.memory_allocated(device) if cuda else 0
        t0 = time.perf_counter()
        for _ in range(warmup):  # compilation, cudnn autotuning, momentum buffers
            self.step()
        _sync(device)
        self.warmup_s = time.perf_counter() - t0
        self.resident = torch.cuda.memory_allocated(device) - before if cuda else 0

    def step(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        with kernel_guard(self.precision, self.device):
            with autocast(self.precision, self.device):
                loss = heads_loss(self.forward(self.clips), self.labels)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return float(loss.detach())

    def timed(self) -> None:
        cuda = self.device.type == "cuda"
        _sync(self.device)
        if cuda:
            base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        self.step()
        _sync(self.device)
        self.times.append(time.perf_counter() - t0)
        if cuda:  # own weights/grads/momentum + this step's activations and workspace
            extra = torch.cuda.max_memory_allocated(self.device) - base
            self.peak = max(self.peak, self.resident + extra)


def check_correctness(device: torch.device, cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    name, thw, batch, steps = cfg["model"], cfg["thw"], cfg["batch"], cfg["steps"]
    curves: dict[str, list[float]] = {}
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    for precision in ("fp32", "bf16", "fp16"):
        exact = precision == "fp32"  # the reference: true fp32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not exact
        torch.manual_seed(0)
        model = build_model(name, NUM_CLASSES).to(device).train()
        clips = torch.randn(batch, 3, *thw, device=device)
        labels = torch.arange(batch, device=device) % NUM_CLASSES
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        scaler = make_scaler(precision, device)
        losses = []
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with kernel_guard(precision, device):
                with autocast(precision, device):
                    loss = heads_loss(model(clips), labels)
                (scaler.scale(loss) if scaler else loss).backward()
            if scaler:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            losses.append(float(loss.detach()))
        curves[precision] = losses
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    rows = []
    for precision, losses in curves.items():
        scale = abs(curves["fp32"][0])
        dev = max(abs(a - b) / scale for a, b in zip(losses, curves["fp32"], strict=True))
        tol = TOLERANCE.get(precision, 0.0)
        ok = all(math.isfinite(v) for v in losses) and dev <= tol
        rows.append(
            {
                "precision": precision,
                "first": losses[0],
                "last": losses[-1],
                "max_rel_dev": dev,
                "tolerance": tol,
                "ok": ok,
            }
        )
    # frozen BN (§5.2): 3 bf16 steps leave every frozen BN's statistics and affine untouched
    torch.manual_seed(0)
    model = build_model(name, NUM_CLASSES)
    frozen = freeze_bn(model, except_first=True)
    model.to(device).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    precision = "bf16" if device.type == "cuda" else "fp32"
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        with kernel_guard(precision, device), autocast(precision, device):
            loss = heads_loss(model(clips), labels)
        loss.backward()
        opt.step()
    after = model.state_dict()
    still = all(torch.equal(before[k], after[k]) for k in before if k.rsplit(".", 1)[0] in frozen)
    first = next(n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm3d))
    moved = not torch.equal(before[f"{first}.running_mean"], after[f"{first}.running_mean"])
    frozen_ok = still and moved and frozen_bn_names(model) == frozen
    # a checkpoint saved on the device loads on the CPU with the same outputs
    path = out / "device_checkpoint.pt"
    save_checkpoint(path, {"model": model.state_dict()})
    cpu = build_model(name, NUM_CLASSES)
    freeze_bn(cpu, except_first=True)
    cpu.load_state_dict(load_checkpoint(path, map_location="cpu")["model"])
    model.eval(), cpu.eval()
    probe = clips[:2]
    with torch.no_grad():
        want = torch.stack(list(_as_tuple(model(probe)))).float().cpu()
        got = torch.stack(list(_as_tuple(cpu(probe.cpu()))))
    ckpt_dev = float((want - got).abs().max() / want.abs().max().clamp_min(1e-12))
    path.unlink()
    ok = all(r["ok"] for r in rows) and frozen_ok and ckpt_dev < 1e-2
    return {
        "model": name,
        "thw": thw,
        "batch": batch,
        "steps": steps,
        "curves": curves,
        "rows": rows,
        "frozen_bn_ok": frozen_ok,
        "frozen_bns": len(frozen),
        "checkpoint_cpu_rel_dev": ckpt_dev,
        "ok": ok,
    }


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)


def _priority(cfg: dict[str, Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    """What to build first while time lasts: the targets' variants at 16×112², then the
    rest at that size, its compiled variants, then the other sizes the same way."""
    first, rest = cfg["groups"][:2], cfg["groups"][2:]
    order = [("eager", "fp32"), ("channels_last", "bf16"), ("eager", "bf16"),
             ("channels_last", "fp32")]  # fmt: skip
    compiled = [("compile", p) for p in cfg["compile_precisions"]]
    items = []
    for groups in (first, rest):
        items += [(g, layout, p) for layout, p in order for g in groups]
        items += [(g, layout, p) for layout, p in compiled for g in groups]
    return items


def measure_throughput(
    device: torch.device, cfg: dict[str, Any], backend: Any, deadline: float
) -> dict[str, Any]:
    """Every (model, size, layout, precision) timed in interleaved rounds (one step of each
    per round, and a bf16 matmul probe), built in :func:`_priority` order while the
    phase's time lasts."""
    steps: list[Step] = []
    skipped: list[dict[str, Any]] = []
    longest = {"eager": 0.0, "channels_last": 0.0, "compile": 0.0}  # slowest warm-up
    for group, layout, precision in _priority(cfg):
        name, thw, batch = group
        if layout == "compile" and not cfg["compile_groups"] > cfg["groups"].index(group):
            continue
        reserve = cfg["rounds"] * sum(s.times[0] for s in steps) + 2  # + FLOP counts
        why = ""
        if deadline - time.monotonic() < reserve + 1.5 * longest[layout]:
            why = "time budget"
        else:
            try:
                step = Step(name, thw, batch, device, precision, layout, backend, cfg["warmup"])
                steps.append(step)
                longest[layout] = max(longest[layout], step.warmup_s)
                step.timed()  # the first timed step: this variant's cost per round
            except torch.cuda.OutOfMemoryError:
                why = "out of memory"
            except Exception as err:  # one broken variant must not cost the others
                why = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:120]}"
            if why and device.type == "cuda":
                torch.cuda.empty_cache()
        if why:
            skipped.append({"model": name, "thw": thw, "layout": layout,
                            "precision": precision, "why": why})  # fmt: skip
    flops = {(s.name, s.thw): 0.0 for s in steps}
    for key in flops:
        flops[key] = _train_flops_per_clip(*key)
    dtype = torch.bfloat16
    n = 8192 if device.type == "cuda" else 512
    probes: list[float] = []
    for _ in range(cfg["rounds"]):
        probes.append(_matmul_tflops(device, dtype, n))
        for s in steps:
            s.timed()
        if time.monotonic() > deadline:
            break
    nominal, device_name = _dense_bf16_peak(device)
    peak = nominal or max(probes)
    rows = []
    for s in steps:
        step_s = statistics.median(s.times)
        per_clip = flops[(s.name, s.thw)]
        tflops = per_clip * s.batch / step_s / 1e12
        rows.append(
            {
                "model": s.name,
                "thw": s.thw,
                "batch": s.batch,
                "layout": s.layout,
                "precision": s.precision,
                "clips_per_s": s.batch / step_s,
                "step_s": step_s,
                "train_gflop_per_clip": per_clip / 1e9,
                "tflops": tflops,
                "fraction_of_peak": tflops / peak,
                "peak_gib": s.peak / 2**30 if s.peak else None,
                "warmup_s": s.warmup_s,
                "rounds": len(s.times),
            }
        )
    return {
        "device": device_name,
        "bf16_peak_tflops": peak,
        "peak_source": "data sheet" if nominal else "measured bf16 matmul",
        "matmul_bf16_tflops": statistics.median(probes),
        "rows": rows,
        "skipped": skipped,
        "compile_backend": str(backend),
    }


def start_videos(out: Path, data: dict[str, Any]) -> tuple[Path, Callable[[], float]]:
    """Generate the demo's synthetic 'order' videos at the check's size into OUT (once), in
    a background process while the device phases run; returns (root, wait -> seconds)."""
    root = out / f"data-order-{data['size']}px"
    if (root / "manifest.json").is_file():
        return root, lambda: 0.0
    code = (
        "import json, sys; from opplan.video.synthetic import generate_dataset; "
        "generate_dataset('order', sys.argv[1], seed=0, **json.loads(sys.argv[2]))"
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(root), json.dumps(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def wait() -> float:
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"generating the videos failed: {err.strip()[-300:]}")
        return time.perf_counter() - t0

    return root, wait


def measure_loader(root: Path, cfg: dict[str, Any], workers: int, size: int) -> dict[str, Any]:
    """Clips/s of the training DataLoader (decode + scale/crop/flip + normalize) per sampling."""
    from opplan.video import TransformConfig, VideoClipDataset, read_video_list

    records = read_video_list(root / "train.txt", root=root)
    rows = []
    for sampling in ("consecutive", "uniform"):
        ds = VideoClipDataset(
            records,
            sampling=sampling,
            clip_length=cfg["clip_length"],
            mode="train",
            transform=TransformConfig.scaled(size),
        )
        loader = DataLoader(
            ds,
            batch_size=cfg["batch"],
            shuffle=True,
            num_workers=workers,
            drop_last=False,
            persistent_workers=False,
        )
        clips, t0, batches = 0, 0.0, iter(_forever(loader))
        next(batches)  # worker start-up and first decode are not throughput
        t0 = time.perf_counter()
        for _ in range(cfg["batches"]):
            clips += len(next(batches)[1])
        rows.append(
            {
                "sampling": sampling,
                "workers": workers,
                "clips_per_s": clips / (time.perf_counter() - t0),
            }
        )
    return {"rows": rows, "clip_length": cfg["clip_length"], "size": size}


def _forever(loader: DataLoader) -> Any:
    while True:
        yield from loader


def run_end_to_end(
    root: Path, out: Path, device: torch.device, quick: bool, size: int, timeout: float
) -> dict[str, Any]:
    """The demo config at the check's size on the device: one plan (resumed if a previous
    check left it unfinished), stopped at ``timeout`` seconds."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    trainer = config["trainer"]
    trainer["device"] = device.type
    trainer["data"].update(root=str(root), frame_size=size)
    trainer["data"]["synthetic"] = None  # prepared by prepare_videos
    if quick:  # one sampling, one clip length, 2 lrs, 2 epochs: every step of a plan
        config["graph"].update(kind="basic", samplings=["uniform"], clip_lengths=[4])
        config["planner"] = {"delay": 1, "max_epochs": 2}
        trainer["threads"] = 1
        trainer["optim"].update(effective_batch=4, base_micro_batch=4, base_clip_length=4)
    path = out / "e2e.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    run = out / "e2e"
    argv = [sys.executable, "-m", "opplan", "plan", str(path), "--out", str(run)]
    before = _epochs(run)
    if (run / "journal.jsonl").is_file():
        argv.append("--resume")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        status = "finished" if proc.returncode == 0 else f"exit {proc.returncode}"
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        status, tail = f"stopped at the {timeout:.0f} s budget (resumes next run)", []
    seconds = time.perf_counter() - t0
    plan = run / "plan.json"
    best = json.loads(plan.read_text()).get("best_final_state") if plan.is_file() else None
    return {
        "status": status,
        "seconds": seconds,
        "epochs": _epochs(run) - before,
        "epochs_total": _epochs(run),
        "best_final_state": best,
        "config": str(path),
        "tail": tail,
    }


def _epochs(run: Path) -> int:
    """Epochs scored in the run's journal (a torn last line is skipped)."""
    journal = run / "journal.jsonl"
    if not journal.is_file():
        return 0
    count = 0
    for line in journal.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a torn last line
            count += json.loads(line).get("op") == "epoch_scored"
    return count
