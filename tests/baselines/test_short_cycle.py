"""Multigrid's short cycle (Wu et al. 2020, PySlowFast's ``ShortCycleBatchSampler``): its
sides, batches and order, the schedule's epoch split and weights, a tiny
``opplan baseline --schedule multigrid --short-cycle`` run whose micro-batches, steps and lrs
are the cycle's, a cut run that resumes bit for bit, and long-cycle recipes unchanged."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import RandomSampler

import opplan.engine.trainer as trainer_module
from opplan.baselines import MultigridSchedule
from opplan.engine import VideoTrainer
from opplan.engine.checkpoint import load_checkpoint
from opplan.engine.distributed import DistributedContext
from opplan.engine.recipe import RecipeStep, read_recipe, recipe_hash
from opplan.engine.settings import OptimSettings
from opplan.engine.short_cycle import (
    SHORT_CYCLE_FACTORS,
    ShortCycle,
    ShortCycleBatchSampler,
    epoch_steps,
)
from opplan.planning.state import TrainingState

from .conftest import Interrupt, write_video_config


def test_sides_and_batches_follow_pyslowfasts_rounding():
    assert SHORT_CYCLE_FACTORS == (0.5, 2**-0.5)
    # the full shape: sides round(0.5 * 224), round(0.7071 * 224) = 158 (158.39), 224;
    # batches B * round((224 / (f * 224))**2) = 4B, 2B, then B
    full = ShortCycle(default=224, crop=224, batch=8)
    assert (full.sides, full.multiples, full.batch_sizes) == (
        (112, 158, 224),
        (4, 2, 1),
        (32, 16, 8),
    )
    # a long-cycle shape at 0.707 of the side (158 px): its smaller sides are still of the
    # default side; batches round((158/112)**2) = 2 (1.99), round((158/158.39)**2) = 1
    coarse = ShortCycle(default=224, crop=158, batch=8)
    assert (coarse.sides, coarse.batch_sizes) == ((112, 158, 158), (16, 8, 8))
    assert ShortCycle(32, 23, 62).sides == (16, 23, 23)
    assert ShortCycle(15, 15, 1).sides == (8, 11, 15)  # round(7.5) = 8, Python's rounding
    with pytest.raises(ValueError, match="at least 8"):
        ShortCycle(14, 14, 1)
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        ShortCycle(32, 32, 0)


def test_the_sampler_cycles_batch_sizes_and_tells_the_crop_of_each_batch():
    cycle = ShortCycle(default=32, crop=32, batch=2)  # batches 8, 4, 2
    sampler = ShortCycleBatchSampler(range(20), cycle, num_items=20)
    batches = list(sampler)
    # item = cycle index * 20 + clip: clips 0-7 at 16 px, 8-11 at 23 px, 12-13 at 32 px,
    # then the cycle again (index 0) with the 6 clips left (the last batch is kept)
    assert batches == [
        list(range(8)),
        [20 + i for i in range(8, 12)],
        [40 + i for i in range(12, 14)],
        list(range(14, 20)),
    ]
    assert len(sampler) == 4 and cycle.sequence(20) == [(8, 0), (4, 1), (2, 2), (6, 0)]
    dropped = ShortCycleBatchSampler(range(20), cycle, num_items=20, drop_last=True)
    assert len(dropped) == 3 and list(dropped) == batches[:3]


@given(
    num_clips=st.integers(1, 200),
    batch=st.integers(1, 9),
    default=st.integers(15, 96),
    shrink=st.sampled_from([1.0, 2**-0.5]),
    seed=st.integers(0, 2**32),
)
def test_every_epoch_is_one_pass_in_cycle_order(num_clips, batch, default, shrink, seed):
    cycle = ShortCycle(default, round(default * shrink), batch)
    order = list(RandomSampler(range(num_clips), generator=torch.Generator().manual_seed(seed)))
    batches = list(ShortCycleBatchSampler(order, cycle, num_clips))
    assert [b % num_clips for batch_ in batches for b in batch_] == order
    assert [(len(b), k % 3) for k, b in enumerate(batches)] == cycle.sequence(num_clips)
    assert all({i // num_clips for i in b} == {k % 3} for k, b in enumerate(batches))
    assert all(len(b) == cycle.batch_sizes[k % 3] for k, b in enumerate(batches[:-1]))
    assert len(ShortCycleBatchSampler(order, cycle, num_clips)) == len(batches)


def test_an_optimizer_step_is_one_short_cycle_batch_in_micro_batches():
    # batch 4 at 8 frames, micro-batches of 2 (accumulate 2): a batch m times as large is cut
    # into micro-batches m times as large, 2 per step, divided by the step's clips
    optim = OptimSettings(effective_batch=4, reference_batch=4, micro_batch={8: 2})
    state = TrainingState("uniform", 8, 0.1, (("size", 32),))
    cycle = ShortCycle(32, 32, 4)  # 16, 8, 4 clips
    steps, divisors = epoch_steps(30, 7, optim, state, DistributedContext(), cycle)
    sizes = [[len(b) for b in step[0]] for step in steps]
    assert sizes == [[8, 8], [4, 4], [2, 2], [2]]  # 16 + 8 + 4, then the 2 clips left
    assert divisors == [16, 8, 4, 16]
    assert [{i // 30 for b in s[0] for i in b} for s in steps] == [{0}, {1}, {2}, {0}]
    # the same order as without the short cycle (DataLoader(shuffle=True), seeded)
    plain, plain_divisors = epoch_steps(30, 7, optim, state, DistributedContext())
    flat = [i for step in plain for b in step[0] for i in b]
    assert [i % 30 for s in steps for b in s[0] for i in b] == flat
    assert plain_divisors == [4] * 8


def test_the_schedule_averages_the_short_cycle_batches_as_pyslowfast():
    s = MultigridSchedule(16, 32, 16, "uniform", 24, (0.1, 0.01, 0.001), short_cycle=True)
    # shape (4, 23, 124): short-cycle batches from B*T*S^2 = 16*16*32^2 at the unrounded
    # sides 16 and 22.63: 16*16*1024 / (4 * 256) = 256 and / (4 * 512) = 128
    assert s.batch_factors() == pytest.approx(
        [(124 + 256 + 128) / 48, (62 + 128 + 64) / 48, (32 + 128 + 64) / 48, (16 + 64 + 32) / 48]
    )
    assert s.shapes() == MultigridSchedule(16, 32, 16, "uniform", 24, (0.1, 0.01, 0.001)).shapes()
    runs = s.expand()
    f = s.batch_factors()
    # 2 x 8 epochs in long cycles, shape i taking 8 f_i / sum(f); iterations 8 / sum(f) per
    # shape; the fine-tuning stage saves as much: 8 / saving * f_last; rescaled to 24 epochs
    saving = 16 / (2 * 4 * 8 / sum(f))
    scale = 24 / (16 + 8 / saving * f[-1])
    assert [e.epochs for e in runs if e.stage == 0] == pytest.approx(
        [8 * scale * x / sum(f) for x in f], abs=1
    )
    (last,) = [e for e in runs if e.stage == 2]
    assert last.epochs == pytest.approx(8 / saving * f[-1] * scale, abs=1)
    assert sum(e.epochs for e in runs) == 24
    assert [(e.clip_length, e.size, e.batch, e.scaled_lr) for e in runs][:2] == [
        (4, 23, 124, 0.775),
        (8, 23, 62, 0.3875),
    ]  # the lr of the long-cycle shape's batch, kept within its short cycle
    assert [st.short_cycle for st in s.steps()] == [32] * len(runs)
    assert s.name == "multigrid-uniform-16f-32px-b16-e24-short"
    assert s.to_dict()["short_cycle"] is True
    assert MultigridSchedule.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="at least 15 pixels"):
        MultigridSchedule(16, 14, 16, "uniform", 24, (0.1, 0.01), short_cycle=True)


def test_weighted_epochs_count_every_iterations_pixels():
    cycle = ShortCycle(32, 32, 8)  # 32 clips at 16 px, 16 at 23, 8 at 32, then 4 at 16
    assert cycle.pixel_fraction(60) == pytest.approx(
        (32 * 0.25 + 16 * (23 / 32) ** 2 + 8 * 1 + 4 * 0.25) / 60
    )
    assert cycle.pixel_fraction() == pytest.approx((32 * 0.25 + 16 * (23 / 32) ** 2 + 8) / 56)
    s = MultigridSchedule(8, 32, 8, "uniform", 12, (0.05, 0.005), 8, short_cycle=True)
    expected = sum(
        e.epochs * e.clip_length / 2 * ShortCycle(32, e.size, e.batch).pixel_fraction(40)
        for e in s.expand()
    )
    assert s.weighted_epochs(2, 40) == pytest.approx(expected)
    long_only = MultigridSchedule(8, 32, 8, "uniform", 12, (0.05, 0.005), 8)
    assert s.weighted_epochs(2, 40) < long_only.weighted_epochs(2)


def test_long_cycle_schedules_and_recipes_keep_their_identity(tmp_path):
    s = MultigridSchedule(16, 32, 16, "uniform", 24, (0.1, 0.01, 0.001))
    # the values of main before the short cycle existed
    assert recipe_hash(s.steps()) == "e3812efd2e598fc6"
    assert s.to_dict() == {
        "name": "multigrid-uniform-16f-32px-b16-e24",
        "kind": "multigrid",
        "clip_length": 16,
        "size": 32,
        "batch": 16,
        "sampling": "uniform",
        "epochs": 24,
        "lrs": [0.1, 0.01, 0.001],
        "reference_batch": 16,
    }
    assert all(st.short_cycle is None and "short_cycle" not in st.to_dict() for st in s.steps())
    path = tmp_path / "recipe.yaml"
    path.write_text("steps:\n- {sampling: uniform, clip_length: 8, lr: 0.1, epochs: 3}\n")
    assert read_recipe(path) == [RecipeStep(TrainingState("uniform", 8, 0.1), 3)]
    path.write_text(
        "steps:\n- {sampling: uniform, clip_length: 8, lr: 0.1, epochs: 3, size: 32, "
        "batch: 4, short_cycle: 32}\n"
    )
    (step,) = read_recipe(path)
    assert step.short_cycle == 32 and step.to_dict()["short_cycle"] == 32
    with pytest.raises(ValueError, match="short_cycle must be at least 15"):
        RecipeStep(TrainingState("uniform", 8, 0.1), 3, short_cycle=12)


@pytest.mark.usefixtures("one_thread")
def test_short_cycle_baseline_trains_the_cycles_crops_and_resumes_exactly(
    order_videos, tmp_path, opplan_cli
):
    import yaml

    cli = opplan_cli
    config = write_video_config(order_videos, tmp_path / "c.yaml")
    data = yaml.safe_load(config.read_text())
    data["trainer"]["optim"]["micro_batch"] = {2: 8, 4: 2, 8: 1}  # accumulate at 8 frames
    config.write_text(yaml.safe_dump(data))
    args = ["baseline", str(config), "--schedule", "multigrid", "--lengths", "8", "--batch", "2"]
    args += ["--epochs", "4", "--sampling", "uniform", "--views", "1x1", "--short-cycle"]
    schedule = MultigridSchedule(8, 32, 2, "uniform", 4, (0.05, 0.005), 8, short_cycle=True)
    runs = schedule.expand()
    assert [(e.clip_length, e.size, e.batch, e.epochs) for e in runs] == [
        (2, 23, 15, 1),
        (4, 23, 8, 1),
        (4, 32, 4, 1),
        (8, 32, 2, 1),
    ]
    micro = {2: 8, 4: 2, 8: 1}

    steps: list[list[tuple[int, int, int, int]]] = []  # per step: (N, T, H, W) per micro
    lrs: list[float] = []
    weights: list[float] = []  # each micro-batch's share of its step's gradient
    current: list[tuple[int, int, int, int]] = []
    forward = VideoTrainer._forward_backward
    step_fn = trainer_module.optimizer_step

    def record(self, net, clips, labels, criterion, weight):
        current.append((clips.shape[0], clips.shape[2], clips.shape[3], clips.shape[4]))
        weights.append(weight)
        return forward(self, net, clips, labels, criterion, weight)

    def stepped(model, optimizer, scaler, clip):
        steps.append(list(current))
        current.clear()
        lrs.append(optimizer.param_groups[0]["lr"])
        return step_fn(model, optimizer, scaler, clip)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VideoTrainer, "_forward_backward", record)
        mp.setattr(trainer_module, "optimizer_step", stepped)
        assert cli([*args, "--out", str(tmp_path / "ref")]) == 0
    num_clips = sum(n for step in steps for n, t, *_ in step if t == 2)  # epoch 1: 2 frames
    expected_steps: list[list[tuple[int, int, int, int]]] = []
    expected_lrs: list[float] = []
    expected_weights: list[float] = []
    for e in runs:
        cycle = schedule.cycle(e)
        assert cycle is not None
        for clips, k in cycle.sequence(num_clips):
            size = micro[e.clip_length] * cycle.multiples[k]
            side = cycle.sides[k]
            cuts = [min(size, clips - i) for i in range(0, clips, size)]
            expected_steps.append([(n, e.clip_length, side, side) for n in cuts])
            accumulate = -(-e.batch // micro[e.clip_length])
            expected_weights += [n / (size * accumulate) for n in cuts]  # the step's mean
            expected_lrs.append(e.scaled_lr)
    assert steps == expected_steps  # every micro-batch's clips, frames and crop side
    assert weights == pytest.approx(expected_weights)
    assert lrs == pytest.approx(expected_lrs)  # the shape's lr at every short-cycle step
    # 14 planning clips: the last epoch (batches 8, 4, 2) reaches all three sides
    assert num_clips == 14
    assert {h for step in steps for _, t, h, _ in step if t == 8} == {16, 23, 32}
    result = json.loads((tmp_path / "ref" / "result.json").read_text())
    assert result["schedule"] == schedule.to_dict()
    assert result["weighted_epochs"] == pytest.approx(schedule.weighted_epochs(2, num_clips))
    long_only = MultigridSchedule(8, 32, 2, "uniform", 4, (0.05, 0.005), 8)
    assert result["weighted_epochs"] < long_only.weighted_epochs(2)

    cut = [*args, "--out", str(tmp_path / "cut")]
    with Interrupt(3) as calls:
        assert cli(cut) == 130
        assert cli([*cut, "--resume"]) == 0
    assert calls.n == 5
    resumed = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert resumed["scores"] == result["scores"]  # bit for bit on CPU
    ref = load_checkpoint(tmp_path / "ref" / "model.pt")["model"]
    got = load_checkpoint(tmp_path / "cut" / "model.pt")["model"]
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_short_cycle_without_multigrid_is_refused(order_videos, tmp_path, opplan_cli, capsys):
    config = write_video_config(order_videos, tmp_path / "c.yaml")
    args = ["baseline", str(config), "--lengths", "2,4", "--decay", "cosine", "--epochs", "2"]
    args += ["--sampling", "uniform", "--short-cycle", "--out", str(tmp_path / "run")]
    assert opplan_cli(args) == 2
    captured = capsys.readouterr()
    assert "--short-cycle goes with --schedule multigrid" in captured.out + captured.err
    assert not (tmp_path / "run").exists()
