"""Multigrid's long cycle (Wu et al. 2020, PySlowFast's schedule): the expansion's values,
a tiny ``opplan baseline --schedule multigrid`` run whose clips and batches really have the
multigrid shapes, and a cut run that resumes to the same scores."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opplan.baselines import LONG_CYCLE, MultigridSchedule
from opplan.engine import VideoTrainer
from opplan.engine.recipe import RecipeStep, read_recipe, recipe_hash
from opplan.planning.state import TrainingState

from .conftest import Interrupt, write_video_config


def test_long_cycle_shapes_keep_the_volume_and_scale_the_lr():
    s = MultigridSchedule(16, 32, 16, "uniform", 24, (0.1, 0.01, 0.001))
    assert LONG_CYCLE == ((0.25, 2**-0.5), (0.5, 2**-0.5), (0.5, 1.0), (1.0, 1.0))
    # 32 / sqrt(2) = 22.6 -> 23 px; B = round(16 * 16 * 32**2 / (T * S**2))
    assert s.shapes() == [(4, 23, 124), (8, 23, 62), (8, 32, 32), (16, 32, 16)]
    table = [
        (e.stage, e.clip_length, e.size, e.batch, e.lr, e.scaled_lr, e.epochs) for e in s.expand()
    ]
    assert table == [
        (0, 4, 23, 124, 0.1, 0.775, 6),
        (0, 8, 23, 62, 0.1, 0.3875, 2),
        (0, 8, 32, 32, 0.1, 0.2, 2),
        (0, 16, 32, 16, 0.1, 0.1, 1),
        (1, 4, 23, 124, 0.01, 0.0775, 5),
        (1, 8, 23, 62, 0.01, 0.03875, 3),
        (1, 8, 32, 32, 0.01, 0.02, 1),
        (1, 16, 32, 16, 0.01, 0.01, 1),
        (2, 16, 32, 16, 0.001, 0.001, 3),  # the fine-tuning stage at the full shape
    ]
    steps = s.steps()
    assert [st.batch for st in steps] == [e[3] for e in table]
    assert steps[0].state == TrainingState("uniform", 4, 0.1, (("size", 23),))
    assert s.weighted_epochs(8) == pytest.approx(
        sum(e[6] * e[1] / 8 * (e[2] / 32) ** 2 for e in table)
    )
    assert MultigridSchedule.from_dict(s.to_dict()) == s
    assert s.name == "multigrid-uniform-16f-32px-b16-e24"


def test_the_long_cycle_follows_pyslowfasts_epoch_split():
    """Per stage but the last, the shapes' epochs are proportional to their batch factors
    8:4:2:1 (equal iterations); the fine-tuning stage saves iterations by the same ratio."""
    s = MultigridSchedule(32, 64, 8, "consecutive", 600, (0.1, 0.01, 0.001))
    runs = s.expand()
    first = [e.epochs for e in runs if e.stage == 0]
    factors = [b / 8 for _, _, b in s.shapes()]
    assert factors == pytest.approx([8.0, 4.0, 2.0, 1.0], rel=0.02)  # 45 px: 8.09
    # 600 epochs: 2 x 200 in long cycles, each shape 200 * f / sum(f) epochs, i.e.
    # 200 / sum(f) iterations; 400 full-shape epochs in 8 x 200 / sum(f) iterations: the
    # saving sum(f) / 4 (3.75 for 8:4:2:1), applied to the 200 fine-tuning epochs
    saving = sum(factors) / 4
    scale = 600 / (400 + 200 / saving)
    expected = [200 * scale * f / sum(factors) for f in factors]
    assert first == pytest.approx(expected, abs=1)
    (last,) = [e for e in runs if e.stage == 2]
    assert last.epochs == pytest.approx(200 / saving * scale, abs=1)
    assert (last.clip_length, last.size, last.batch) == (32, 64, 8)


@given(
    length=st.sampled_from([8, 16, 32, 64]),
    size=st.integers(12, 128),
    batch=st.integers(1, 64),
    epochs=st.integers(3, 300),
    n_lrs=st.integers(2, 4),
)
def test_every_expansion_sums_to_the_budget_and_keeps_the_volume(
    length, size, batch, epochs, n_lrs
):
    lrs = tuple(10.0**-k for k in range(1, n_lrs + 1))
    s = MultigridSchedule(length, size, batch, "uniform", epochs, lrs)
    runs = s.expand()
    assert sum(e.epochs for e in runs) == epochs and all(e.epochs >= 1 for e in runs)
    assert [e.stage for e in runs] == sorted(e.stage for e in runs)
    last = runs[-1]
    assert (last.clip_length, last.size, last.batch, last.lr) == (length, size, batch, lrs[-1])
    volume = batch * length * size**2
    for e in runs:
        # B * T * S**2 constant up to the rounding of B to a whole clip
        assert abs(e.batch * e.clip_length * e.size**2 - volume) <= e.clip_length * e.size**2 / 2
        assert e.scaled_lr == pytest.approx(e.lr * e.batch / 16, rel=1e-5)
        assert e.lr == lrs[e.stage]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 10}, "at least 12 pixels"),
        ({"lrs": (0.1,)}, "at least 2 lrs"),
        ({"epochs": 2}, "at least 3"),
        ({"sampling": "random"}, "sampling"),
        ({"batch": 0}, "batch must be a positive integer"),
    ],
)
def test_bad_multigrid_schedules_are_refused(kwargs, message):
    args = {"clip_length": 16, "size": 32, "batch": 16, "sampling": "uniform", "epochs": 12}
    args["lrs"] = (0.1, 0.01, 0.001)
    with pytest.raises(ValueError, match=message):
        MultigridSchedule(**{**args, **kwargs})


def test_a_recipe_step_batch_round_trips_and_old_recipes_keep_their_hash(tmp_path):
    old = RecipeStep(TrainingState("uniform", 8, 0.1), 3)
    assert "batch" not in old.to_dict()  # an old recipe's identity is unchanged
    path = tmp_path / "recipe.yaml"
    path.write_text("steps:\n- {sampling: uniform, clip_length: 8, lr: 0.1, epochs: 3}\n")
    assert read_recipe(path) == [old]
    new = RecipeStep(TrainingState("uniform", 8, 0.1, (("size", 23),)), 3, batch=62)
    path.write_text(
        "steps:\n- {sampling: uniform, clip_length: 8, lr: 0.1, epochs: 3, size: 23, batch: 62}\n"
    )
    assert read_recipe(path) == [new]
    assert recipe_hash([new]) != recipe_hash([old])
    with pytest.raises(ValueError, match="batch"):
        RecipeStep(TrainingState("uniform", 8, 0.1), 3, batch=0)


@pytest.mark.usefixtures("one_thread")
def test_multigrid_baseline_trains_the_shapes_and_resumes_exactly(
    order_videos, tmp_path, opplan_cli
):
    cli = opplan_cli
    config = write_video_config(order_videos, tmp_path / "c.yaml")
    args = ["baseline", str(config), "--schedule", "multigrid", "--lengths", "8"]
    args += ["--epochs", "4", "--sampling", "uniform", "--views", "1x1"]
    schedule = MultigridSchedule(8, 32, 8, "uniform", 4, (0.05, 0.005), reference_batch=8)
    expected = [(e.clip_length, e.size, e.batch, e.scaled_lr) for e in schedule.expand()]
    assert [e[:3] for e in expected] == [(2, 23, 62), (4, 32, 16), (8, 32, 8)]
    assert [e.epochs for e in schedule.expand()] == [2, 1, 1]
    per_epoch = [expected[0], expected[0], expected[1], expected[2]]

    seen: list[tuple[int, int, int, int, float]] = []
    original = VideoTrainer.train_epoch

    def spy(self):
        before = len(shapes)
        metrics = original(self)
        clips = shapes[before:]
        seen.append(
            (*{c[1:] for c in clips}.pop(), self.optim.effective_batch, sum(c[0] for c in clips))
        )
        assert metrics["lr"] == pytest.approx(per_epoch[len(seen) - 1][3])
        return metrics

    shapes: list[tuple[int, ...]] = []
    forward = VideoTrainer._forward_backward

    def record(self, net, clips, labels, criterion, weight):
        shapes.append((clips.shape[0], clips.shape[2], clips.shape[3], clips.shape[4]))
        return forward(self, net, clips, labels, criterion, weight)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(VideoTrainer, "train_epoch", spy)
        mp.setattr(VideoTrainer, "_forward_backward", record)
        assert cli([*args, "--out", str(tmp_path / "ref")]) == 0
    # clips (N, C, T, H, W): T frames of S x S, each epoch at its shape and batch
    assert [s[:4] for s in seen] == [(t, s, s, b) for t, s, b, _ in per_epoch]
    train_videos = seen[0][4]
    assert all(s[4] == train_videos for s in seen)  # every epoch is one pass over the data
    result = json.loads((tmp_path / "ref" / "result.json").read_text())
    assert result["schedule"] == schedule.to_dict() and result["epochs"] == 4
    assert result["weighted_epochs"] == pytest.approx(schedule.weighted_epochs(2))
    assert result["final_state"] == "uniform 8f lr=0.005 size=32"
    assert math.isfinite(result["val_score"])

    cut = [*args, "--out", str(tmp_path / "cut")]
    with Interrupt(3) as calls:
        assert cli(cut) == 130
        assert cli([*cut, "--resume"]) == 0
    assert calls.n == 5  # 2 epochs, the cut one, then epochs 3 and 4
    resumed = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert resumed["scores"] == result["scores"]  # bit for bit on CPU
