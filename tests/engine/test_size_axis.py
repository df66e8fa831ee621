"""The video trainer acts on a state's ``size``: clips really have that spatial side."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from opplan.cli import main
from opplan.engine import OptimSettings, VideoTrainer
from opplan.engine.state_axes import state_transform
from opplan.models import build_model
from opplan.planning import TrainingState
from opplan.video import TransformConfig, internal_val_split, read_video_list
from opplan.video.synthetic import generate_dataset

KEEP_REPORT = os.environ.get("OPPLAN_KEEP_REPORT")  # a path: keep the graph.png to look at


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sizes")
    generate_dataset("order", root, videos_per_class=3, size=32, min_frames=12, max_frames=16)
    return root


def _trainer(root, checkpoints):
    torch.set_num_threads(1)
    train = read_video_list(root / "train.txt", root=root)
    plan_train, plan_val = internal_val_split(train, val_size=4, seed=0)
    settings = OptimSettings(
        effective_batch=4, reference_batch=4, base_micro_batch=4, base_clip_length=4
    )
    return VideoTrainer(
        model_factory=lambda: build_model("dg_p3d_tiny", num_classes=10),
        train_records=plan_train[:8],
        val_records=plan_val,
        checkpoint_dir=checkpoints,
        transform=TransformConfig.scaled(32),
        optim=settings,
        seed=0,
    )


def _shapes_seen(trainer, state):
    trainer.start(state, None)
    seen = {"train": set(), "eval": set()}

    def hook(module, args):
        seen["train" if module.training else "eval"].add(tuple(args[0].shape[2:]))

    trainer.model.register_forward_pre_hook(hook)
    trainer.train_epoch()
    trainer.evaluate()
    return seen


def test_two_resolutions_train_and_evaluate_at_two_sizes(tiny_data, tmp_path):
    trainer = _trainer(tiny_data, tmp_path)
    small = _shapes_seen(trainer, TrainingState("uniform", 4, 0.05, (("size", 16),)))
    large = _shapes_seen(trainer, TrainingState("uniform", 4, 0.05, (("size", 24),)))
    assert small == {"train": {(4, 16, 16)}, "eval": {(4, 16, 16)}}
    assert large == {"train": {(4, 24, 24)}, "eval": {(4, 24, 24)}}
    plain = _shapes_seen(trainer, TrainingState("uniform", 4, 0.05))
    assert plain == {"train": {(4, 32, 32)}, "eval": {(4, 32, 32)}}  # the run's frame size


def test_state_transform_scales_the_geometry_and_keeps_the_rest():
    base = TransformConfig.scaled(32, flip=False, uint8=True)
    sized = state_transform(base, TrainingState("uniform", 4, 0.1, (("size", 112),)))
    assert (sized.crop_size, sized.eval_short_side, sized.scale_range) == (112, 128, (128, 170))
    assert (sized.flip, sized.uint8, sized.mean) == (False, True, base.mean)
    assert state_transform(base, TrainingState("uniform", 4, 0.1)) is base


def _config(tmp_path, extra_axes, data_root):
    config = yaml.safe_load(Path("configs/synthetic-order.yaml").read_text())
    config["graph"] = {
        "kind": "basic",
        "samplings": ["uniform"],
        "clip_lengths": [4],
        "learning_rates": [0.05],
        "extra_axes": extra_axes,
    }
    config["planner"] = {"delay": 1, "max_epochs": 2}
    config["trainer"]["data"]["root"] = str(data_root)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_axis_the_video_trainer_ignores_exits_2_naming_it(tmp_path, capsys):
    config = _config(tmp_path, [{"name": "depth", "values": [1, 2]}], tmp_path / "data")
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "extra axis 'depth'" in err and "would ignore it" in err
    assert not (tmp_path / "run").exists()


def test_a_bad_size_exits_2_naming_it(tmp_path, capsys):
    config = _config(tmp_path, [{"name": "size", "values": [4, 16]}], tmp_path / "data")
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "size must be a whole number of pixels, at least 8, got 4" in capsys.readouterr().err


@pytest.mark.slow  # ~10 s: 10 transitions, the synthetic data generated, the report drawn
def test_a_plan_over_clip_length_size_and_lr_runs_end_to_end(tmp_path):
    config = yaml.safe_load(Path("configs/synthetic-order.yaml").read_text())
    config["graph"] = {
        "kind": "basic",
        "samplings": ["uniform"],
        "clip_lengths": [4, 8],
        "learning_rates": [0.05, 0.01],
        "extra_axes": [{"name": "size", "values": [16, 24]}],
    }
    config["planner"] = {"delay": 1, "max_epochs": 1}
    data = config["trainer"]["data"]
    data["root"] = str(tmp_path / "data")
    data["synthetic"].update(videos_per_class=3, min_frames=12, max_frames=16)
    data["internal_val_size"] = 4
    config["trainer"]["optim"] = {
        "effective_batch": 4, "reference_batch": 4, "base_micro_batch": 4, "base_clip_length": 4
    }  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert main(["plan", str(path), "--out", str(run)]) == 0
    plan = json.loads((run / "plan.json").read_text())
    assert plan["best_final_state"] == "uniform 8f lr=0.01 size=24"
    assert plan["path"][0]["size"] == 16 and plan["path"][-1]["size"] == 24
    assert len(plan["states"]) == 8
    report = (run / "report" / "README.md").read_text()
    assert "| step | sampling | clip | lr | size | epochs | value |" in report
    assert (run / "report" / "graph.png").stat().st_size > 0
    if KEEP_REPORT:
        shutil.copy(run / "report" / "graph.png", KEEP_REPORT)
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    assert all("size" in step for step in recipe["steps"])


def test_the_memory_check_takes_the_largest_size(tiny_data, tmp_path):
    from opplan.errors import ConfigError

    trainer = _trainer(tiny_data, tmp_path)

    def no_room(step):
        return None, 1 << 30  # as if it ran out of memory

    with pytest.raises(ConfigError, match="4 clips of 4×48×48"):
        trainer.check_memory(4, query=no_room, crop=48)
    with pytest.raises(ConfigError, match="4 clips of 4×32×32"):
        trainer.check_memory(4, query=no_room)


def test_a_recipe_keeps_each_steps_size(tmp_path):
    from opplan.engine.recipe import read_recipe, recipe_hash
    from opplan.errors import ConfigError

    path = tmp_path / "recipe.yaml"
    path.write_text(
        "steps:\n"
        "- {sampling: uniform, clip_length: 4, lr: 0.05, size: 16, epochs: 2}\n"
        "- {sampling: uniform, clip_length: 4, lr: 0.05, epochs: 1}\n"
    )
    steps = read_recipe(path)
    assert str(steps[0].state) == "uniform 4f lr=0.05 size=16"
    assert steps[1].state == TrainingState("uniform", 4, 0.05)
    plain = [steps[1]]
    assert recipe_hash(plain) == recipe_hash(read_recipe(_one_step(tmp_path)))
    path.write_text(
        "steps:\n- {sampling: uniform, clip_length: 4, lr: 0.05, size: 4, epochs: 1}\n"
    )
    with pytest.raises(ConfigError, match=r"steps\[0\]\.size"):
        read_recipe(path)


def _one_step(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("steps:\n- {sampling: uniform, clip_length: 4, lr: 0.05, epochs: 1}\n")
    return path


def test_state_transform_keeps_the_flow_modality():
    base = TransformConfig.scaled(32, flip=True, uint8=True)
    from dataclasses import replace

    from opplan.video.transforms import FLOW_MEAN, FLOW_STD

    flow = replace(base, modality="flow", mean=FLOW_MEAN, std=FLOW_STD)
    sized = state_transform(flow, TrainingState("uniform", 4, 0.1, (("size", 16),)))
    assert (sized.modality, sized.channels, sized.mean) == ("flow", 2, FLOW_MEAN)
    assert sized.crop_size == 16


def test_evaluate_tests_a_checkpoint_at_its_own_size(tiny_data, tmp_path, monkeypatch):
    """A model whose last step trained at size 16 is tested at size 16's geometry (not the
    run's data.frame_size of 32)."""
    from opplan.engine import model_init
    from opplan.engine.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = build_model("dg_p3d_tiny", num_classes=10)
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, {"model": net.state_dict(), "state": "uniform 4f lr=0.05 size=16"})
    seen: set[tuple[int, ...]] = set()
    real_build = model_init.build_model

    def spying_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        model.register_forward_pre_hook(lambda m, a: seen.add(tuple(a[0].shape[1:])))
        return model

    monkeypatch.setattr(model_init, "build_model", spying_build)
    config = {
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "threads": 1,
            "eval_batch": 4,
            "data": {
                "root": str(tiny_data),
                "frame_size": 32,
                "internal_val_size": 4,
                "test_list": "train.txt",  # 3 videos per class: no test split of its own
            },
        }
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "test.json"
    args = ["evaluate", str(path), "--checkpoint", str(checkpoint), "--views", "1x1"]
    assert main([*args, "--out", str(out)]) == 0
    side = TransformConfig.scaled(16).test_crop_size  # the §5.2 test crop at size 16: 18
    assert side == 18 and seen == {(3, 4, side, side)}
    assert TransformConfig.scaled(32).test_crop_size == 37  # what the run's size would give
    listed = read_video_list(tiny_data / "train.txt", root=tiny_data)
    assert json.loads(out.read_text())["num_videos"] == len(listed)
