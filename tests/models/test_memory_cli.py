"""``opplan models --batch B --device cuda``: peak training memory per clip (issue 16).

No GPU here: the CUDA query is replaced by fixed numbers, so what is tested is the
command's arithmetic and its refusals; benchmarks/device_check.py measures for real."""

from __future__ import annotations

import argparse

import pytest
import torch

import opplan.engine.performance as performance
from opplan.cli import _models as cli_models
from opplan.errors import ConfigError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli_models.register(parser.add_subparsers())
    args = parser.parse_args(["models", *argv])
    return args.func(args)


def test_cpu_says_memory_is_not_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--input", "8x32x32", "--pattern", "dg_p3d_tiny", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    assert "not measured on CPU" in out and "MiB / clip" not in out


def test_cuda_adds_peak_and_per_clip_memory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    calls = []

    def fake(model, *, batch, thw, device, precision, channels_last):
        calls.append((batch, thw, str(device), precision))
        return 3 * 2**30, 2**30  # 3 GiB peak, 1 GiB held: 2 GiB of activations

    monkeypatch.setattr(performance, "training_memory", fake)
    argv = ["--input", "8x32x32", "--pattern", "dg_p3d_tiny", "--batch", "4", "--device", "cuda"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert calls == [(4, (8, 32, 32), "cuda", "bf16")]
    assert "3.00" in out and "512" in out  # 2 GiB / 4 clips = 512 MiB per clip


def test_cuda_without_a_gpu_and_a_bad_batch_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--device: cuda"):
        run(["--pattern", "dg_p3d_tiny", "--batch", "4", "--device", "cuda"])
    with pytest.raises(ConfigError, match="--batch"):
        run(["--pattern", "dg_p3d_tiny", "--batch", "0"])
