"""``benchmarks/device_check.py`` on CPU (issue 16): its phases at the smallest sizes in the
default suite; the whole ``--device cpu --quick`` command, twice, in the slow one (~1 min
on 2 shared cores, which the default suite cannot afford)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import device_check, device_phases

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_correctness_phase_compares_precisions_frozen_bn_and_checkpoint(tmp_path):
    cfg = {"model": "dg_p3d_tiny", "thw": (4, 16, 16), "batch": 2, "steps": 3}
    result = device_phases.check_correctness(CPU, cfg, tmp_path)
    assert [r["precision"] for r in result["rows"]] == ["fp32", "bf16", "fp16"]
    curves = result["curves"]
    assert curves["fp32"][-1] < curves["fp32"][0]  # it trained
    assert curves["bf16"] != curves["fp32"]  # and really in bf16
    assert all(0 < r["max_rel_dev"] <= r["tolerance"] for r in result["rows"][1:])
    assert result["frozen_bn_ok"] and result["frozen_bns"] > 0
    assert result["checkpoint_cpu_rel_dev"] == 0.0 and result["ok"]


@pytest.mark.slow  # ~10 s: the device check's timing phase on CPU
def test_throughput_phase_times_every_variant_interleaved():
    cfg = {
        "groups": [("p3d_tiny", (2, 16, 16), 2), ("dg_p3d_tiny", (2, 16, 16), 2)],
        "compile_groups": 1,
        "compile_precisions": ["fp32"],
        "rounds": 2,
        "warmup": 1,
    }
    import time

    result = device_phases.measure_throughput(CPU, cfg, "eager", time.monotonic() + 120)
    got = {(r["model"], r["layout"], r["precision"]) for r in result["rows"]}
    for model in ("p3d_tiny", "dg_p3d_tiny"):
        for layout in ("eager", "channels_last"):
            assert {(model, layout, "fp32"), (model, layout, "bf16")} <= got
    assert ("p3d_tiny", "compile", "fp32") in got and len(got) == 9
    assert not result["skipped"]
    for r in result["rows"]:
        assert r["rounds"] == 3  # the first timed step plus 2 interleaved rounds
        assert r["clips_per_s"] > 0 and r["train_gflop_per_clip"] > 0
        assert r["tflops"] == pytest.approx(
            r["train_gflop_per_clip"] * r["clips_per_s"] / 1e3, rel=1e-9
        )
    # no time left: everything is reported as skipped rather than silently dropped
    late = device_phases.measure_throughput(CPU, cfg, "eager", time.monotonic() - 1)
    assert {s["why"] for s in late["skipped"]} == {"time budget"} and len(late["skipped"]) == 9


def test_priority_puts_the_targets_first():
    cfg = device_check._settings(quick=False)
    items = device_phases._priority(cfg)
    first = [(g[0], g[1], layout, p) for g, layout, p in items[:4]]
    assert first == [
        ("dg_p3d_resnet50", (16, 112, 112), "eager", "fp32"),
        ("r2plus1d_18", (16, 112, 112), "eager", "fp32"),
        ("dg_p3d_resnet50", (16, 112, 112), "channels_last", "bf16"),
        ("r2plus1d_18", (16, 112, 112), "channels_last", "bf16"),
    ]
    assert len(items) == 5 * 6  # 5 (model, size) groups × 3 layouts × 2 precisions


def test_targets_and_markdown_from_a_report():
    row = {
        "thw": [4, 16, 16],
        "batch": 2,
        "train_gflop_per_clip": 1.0,
        "fraction_of_peak": 0.1,
        "peak_gib": None,
        "warmup_s": 0.1,
        "step_s": 0.1,
        "rounds": 2,
    }
    rows = [
        {
            **row,
            "model": "a",
            "layout": "eager",
            "precision": "fp32",
            "clips_per_s": 10,
            "tflops": 0.01,
        },
        {
            **row,
            "model": "a",
            "layout": "channels_last",
            "precision": "bf16",
            "clips_per_s": 25,
            "tflops": 0.025,
        },
        {
            **row,
            "model": "b",
            "layout": "eager",
            "precision": "fp32",
            "clips_per_s": 5,
            "tflops": 0.02,
        },
    ]
    report = {
        "settings": {"groups": [("a", (4, 16, 16), 2), ("b", (4, 16, 16), 2)]},
        "throughput": {
            "rows": rows,
            "skipped": [],
            "bf16_peak_tflops": 1.0,
            "peak_source": "measured",
            "matmul_bf16_tflops": 1.0,
            "compile_backend": "eager",
        },
        "loader": {
            "rows": [{"sampling": "uniform", "workers": 2, "clips_per_s": 30.0}],
            "clip_length": 4,
            "size": 32,
        },
    }
    got = {t["target"]: (t["got"], t["met"]) for t in device_check.targets(report)}
    assert got["a bf16+channels_last / fp32 eager clips/s"] == (2.5, True)
    assert got["a / b TFLOP/s, eager fp32"] == (0.5, False)
    assert got["loader (uniform, 2 workers) / fastest a step"] == (1.2, False)
    report |= {
        "date": "d",
        "device": "cpu",
        "device_name": "x",
        "torch": "t",
        "cpus": 2,
        "quick": True,
        "seconds": 1.0,
        "command": "c",
        "errors": {},
        "size": 32,
        "targets": device_check.targets(report),
    }
    table = device_check.markdown(report)
    assert "| a | 4×16×16 | 2 | channels_last | bf16 | 25.00 |" in table
    assert "| a bf16+channels_last / fp32 eager clips/s | ≥ 2.0 | 2.50 | True |" in table


@pytest.mark.slow
def test_quick_device_check_runs_every_phase_and_a_second_run_resumes(tmp_path):
    out = tmp_path / "dc"
    argv = [sys.executable, "-m", "benchmarks.device_check", "--device", "cpu", "--quick"]
    first = subprocess.run([*argv, "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    report = json.loads((out / "device_check.json").read_text())
    assert report["errors"] == {} and report["correctness"]["ok"]
    layouts = {(r["layout"], r["precision"]) for r in report["throughput"]["rows"]}
    assert {("eager", "fp32"), ("channels_last", "bf16"), ("compile", "fp32")} <= layouts
    assert all(r["clips_per_s"] > 0 for r in report["loader"]["rows"])
    assert report["end_to_end"]["status"] == "finished"
    assert report["end_to_end"]["best_final_state"] and report["end_to_end"]["epochs"] > 0
    assert len(report["targets"]) == 5
    table = (out / "device_check.md").read_text()
    assert "| target | want | got | met |" in table and "compile" in table
    # a second run: the videos are prepared, the finished plan is not trained again
    second = subprocess.run([*argv, "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    again = json.loads((out / "device_check.json").read_text())
    assert again["data_seconds"] == 0.0 and again["end_to_end"]["epochs"] == 0
    assert again["end_to_end"]["best_final_state"] == report["end_to_end"]["best_final_state"]
