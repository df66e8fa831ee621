"""FLOPs (2 per multiply-add) and parameters, Table 8."""

from __future__ import annotations

import argparse

import pytest
import torch
import torchvision
from torch import nn

from opplan.cli import _models as cli_models
from opplan.errors import ConfigError
from opplan.models import build_model, count_flops, count_params, model_costs


def test_flops_are_two_per_multiply_add() -> None:
    conv = nn.Conv3d(3, 8, (3, 5, 5), padding=0, bias=False)
    macs = 8 * 3 * 3 * 5 * 5 * (4 - 2) * (10 - 4) * (10 - 4)
    assert count_flops(conv, (4, 10, 10)) == 2 * macs
    assert count_params(conv) == 8 * 3 * 3 * 5 * 5


def test_r2plus1d_matches_torchvision_published_ops() -> None:
    """torchvision lists R(2+1)D-18 at 40.519 G multiply-adds for a 16×112×112 clip."""
    published_gmacs = torchvision.models.video.R2Plus1D_18_Weights.KINETICS400_V1.meta["_ops"]
    (row,) = model_costs(["r2plus1d_18"], (16, 112, 112))
    assert row.gflops == pytest.approx(2 * published_gmacs, rel=1e-3)
    assert row.params == pytest.approx(31.5e6, rel=0.01)


def test_dg_p3d_costs_more_than_g_p3d_which_costs_more_than_p3d() -> None:
    rows = {r.name: r for r in model_costs(["p3d_resnet50", "g_p3d_resnet50", "dg_p3d_resnet50"])}
    p, g, dg = (rows[n] for n in ("p3d_resnet50", "g_p3d_resnet50", "dg_p3d_resnet50"))
    assert p.flops < g.flops < dg.flops
    assert p.params < g.params < dg.params
    # The global context is an MLP on pooled vectors: a negligible share of the FLOPs.
    assert (g.flops - p.flops) / p.flops < 1e-3
    # The spatial head's res5 runs at 1×14×14 = 1/4 the time steps, 4× the pixels of res5.
    assert 0.1 < (dg.flops - g.flops) / g.flops < 0.25


def test_meta_counting_equals_counting_on_real_tensors() -> None:
    net = build_model("dg_p3d_tiny", 5)
    (row,) = model_costs(["dg_p3d_tiny"], (8, 32, 32), num_classes=5)
    assert count_flops(net, (8, 32, 32)) == row.flops
    assert count_params(net) == row.params


def test_too_small_inputs_are_reported_not_raised() -> None:
    (row,) = model_costs(["s3d"], (4, 16, 16))
    assert row.flops is None and row.gflops is None and "too small" in row.error


def test_cli_parses_sizes() -> None:
    assert cli_models.parse_input_size("16x224x224") == (16, 224, 224)
    assert cli_models.parse_input_size("8X112") == (8, 112, 112)
    for bad in ("16x", "224", "0x8x8", "16*112*112"):
        with pytest.raises(ConfigError, match="--input"):
            cli_models.parse_input_size(bad)


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli_models.register(parser.add_subparsers())
    args = parser.parse_args(["models", "--input", "8x32x32", "--pattern", "*_tiny"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "dg_p3d_tiny" in out and "p3d_tiny" in out and "r3d_18" not in out
    assert "2 FLOPs per multiply-add" in out
    args = parser.parse_args(["models", "--pattern", "nothing*"])
    with pytest.raises(ConfigError, match="matches no registered model"):
        args.func(args)


def test_flop_count_does_not_need_real_weights() -> None:
    with torch.device("meta"):
        net = build_model("dg_p3d_resnet152", 400)
    assert count_flops(net, (16, 224, 224)) > 0
