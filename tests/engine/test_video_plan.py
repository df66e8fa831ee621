"""End to end on tiny generated videos: the video trainer under the planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from opplan.cli import main
from opplan.engine import OptimSettings, VideoTrainer
from opplan.models import build_model
from opplan.planning import TrainingState
from opplan.video import TransformConfig, internal_val_split, read_video_list
from opplan.video.synthetic import generate_dataset


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    generate_dataset("order", root, videos_per_class=5, size=32, min_frames=24, max_frames=40)
    return root


def make_trainer(root, checkpoints, **optim):
    torch.set_num_threads(1)
    train = read_video_list(root / "train.txt", root=root)
    plan_train, plan_val = internal_val_split(train, val_size=6, seed=0)
    settings = OptimSettings(
        **{
            "effective_batch": 6,
            "reference_batch": 6,
            "base_micro_batch": 6,
            "base_clip_length": 4,
            **optim,
        }
    )
    return VideoTrainer(
        model_factory=lambda: build_model("dg_p3d_tiny", num_classes=10),
        train_records=plan_train,
        val_records=plan_val,
        checkpoint_dir=checkpoints,
        transform=TransformConfig.scaled(32),
        optim=settings,
        seed=0,
    )


def test_resumed_transition_trains_exactly_like_an_uninterrupted_one(tiny_data, tmp_path):
    state = TrainingState("uniform", 4, 0.05)
    a = make_trainer(tiny_data, tmp_path)
    a.start(state, None)
    a.train_epoch()
    a.save("edge/e001")
    second = a.train_epoch()["loss"], a.evaluate()
    b = make_trainer(tiny_data, tmp_path)
    b.resume(state, "edge/e001")
    assert (b.train_epoch()["loss"], b.evaluate()) == second
    assert b.evaluate() == b.evaluate()  # fixed evaluation indices and crops


def test_gradient_accumulation_keeps_the_effective_batch(tiny_data, tmp_path):
    trainer = make_trainer(tiny_data, tmp_path, base_micro_batch=2)
    assert trainer.optim.micro_batch_for(4) == 2 and trainer.optim.accumulation_steps(4) == 3
    assert trainer.optim.micro_batch_for(8) == 1 and trainer.optim.accumulation_steps(8) == 6
    steps = []
    trainer.on_batch = lambda step, total, m: steps.append(step)
    trainer.start(TrainingState("consecutive", 4, 0.05), None)
    trainer.train_epoch()
    micro_batches = -(-len(trainer.train_records) // 2)
    assert steps == list(range(1, -(-micro_batches // 3) + 1))  # 3 micro-batches per step


def test_frozen_bn_for_long_clips(tiny_data, tmp_path):
    trainer = make_trainer(tiny_data, tmp_path, freeze_bn_from=8)
    trainer.start(TrainingState("uniform", 8, 0.05), None)
    bns = [m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert not any(p.requires_grad for m in bns[1:] for p in m.parameters())
    assert all(p.requires_grad for p in bns[0].parameters())
    trainer.start(TrainingState("uniform", 4, 0.05), None)  # shorter clips: trainable again
    assert all(p.requires_grad for p in trainer.model.parameters())


def without_time(plan):
    plan["cost"].pop("wall_seconds"), plan["cost"].pop("compute_seconds")
    for t in plan["transitions"]:
        t.pop("seconds")
    return plan


def write_video_config(tiny_data, path, graph, planner, seed=0):
    config = {
        "graph": graph,
        "planner": planner,
        "trainer": {
            "kind": "video",
            "seed": seed,
            "device": "cpu",
            "threads": 1,
            "data": {"root": str(tiny_data), "frame_size": 32, "internal_val_size": 6},
            "optim": {
                "effective_batch": 6,
                "reference_batch": 6,
                "base_micro_batch": 6,
                "base_clip_length": 4,
            },
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def interrupt_at_epoch(monkeypatch, n):
    """Make the n-th call of VideoTrainer.train_epoch raise KeyboardInterrupt (as Ctrl-C)."""
    calls = {"n": 0}
    original = VideoTrainer.train_epoch

    def interrupting(self):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(VideoTrainer, "train_epoch", interrupting)
    return lambda: monkeypatch.setattr(VideoTrainer, "train_epoch", original)


@pytest.mark.slow  # ~25-40 s; the plan -> recipe -> train -> evaluate chain stays default
def test_video_plan_end_to_end_and_resume(tiny_data, tmp_path, monkeypatch):
    graph = {
        "kind": "basic",
        "samplings": ["uniform"],
        "clip_lengths": [4, 8],
        "learning_rates": [0.05],
    }
    path = write_video_config(
        tiny_data, tmp_path / "video.yaml", graph, {"delay": 2, "max_epochs": 4}
    )
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 0
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert len(plan["transitions"]) == 3
    assert all(0 <= v <= 1 for t in plan["transitions"] for v in t["scores"])
    assert plan["best_final_state"] == "uniform 8f lr=0.05"
    final = tmp_path / "run" / "checkpoints" / f"{plan['final_checkpoint']}.pt"
    assert torch.load(final, weights_only=True)["state"] == plan["best_final_state"]
    assert (tmp_path / "run" / "report" / "graph.png").exists()

    # interrupted after 5 epochs (mid-transition), then resumed: the identical plan
    restore = interrupt_at_epoch(monkeypatch, 6)
    assert main(["plan", str(path), "--out", str(tmp_path / "cut")]) == 130
    restore()
    assert main(["plan", str(path), "--out", str(tmp_path / "cut"), "--resume"]) == 0
    resumed = json.loads((tmp_path / "cut" / "plan.json").read_text())
    assert without_time(resumed) == without_time(plan)


def test_bad_data_path_exits_2_and_writes_nothing(tmp_path):
    config = {"trainer": {"kind": "video", "data": {"root": str(tmp_path / "nope")}}}
    path = tmp_path / "video.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


def test_plan_recipe_train_evaluate_chain(tiny_data, tmp_path, monkeypatch):
    graph = {
        "kind": "basic",
        "samplings": ["consecutive"],
        "clip_lengths": [4],
        "learning_rates": [0.05, 0.005],
    }
    path = write_video_config(
        tiny_data, tmp_path / "c.yaml", graph, {"delay": 1, "max_epochs": 3}, seed=1
    )
    assert main(["plan", str(path), "--out", str(tmp_path / "plan")]) == 0
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "steps": [
                    {"sampling": "consecutive", "clip_length": 4, "lr": 0.05, "epochs": 2},
                    {"sampling": "consecutive", "clip_length": 4, "lr": 0.005, "epochs": 1},
                ]
            }
        )
    )
    # a training cut after its second epoch resumes to the same model
    restore = interrupt_at_epoch(monkeypatch, 3)
    train = ["train", str(path), "--recipe", str(recipe), "--out", str(tmp_path / "train")]
    assert main(train) == 130
    restore()
    assert main(train) == 2  # an existing training needs --resume
    assert main([*train, "--resume"]) == 0
    summary = json.loads((tmp_path / "train" / "train.json").read_text())
    assert [(s["step"], s["epoch"]) for s in summary["scores"]] == [(0, 1), (0, 2), (1, 1)]
    assert main(["train", str(path), "--recipe", str(recipe), "--out", str(tmp_path / "ref")]) == 0
    reference = json.loads((tmp_path / "ref" / "train.json").read_text())
    assert reference["scores"] == summary["scores"]
    final = tmp_path / "train" / "checkpoints" / f"{summary['final_checkpoint']}.pt"
    assert sorted(p.name for p in final.parent.parent.rglob("*.pt")) == ["e001.pt"]
    ckpt = tmp_path / "train" / "model.pt"
    assert ckpt.read_bytes() == final.read_bytes()

    out = tmp_path / "eval.json"
    args = ["evaluate", str(path), "--checkpoint", str(ckpt), "--views", "2x3", "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    test_videos = len(read_video_list(tiny_data / "test.txt", root=tiny_data))
    assert result["num_videos"] == test_videos and result["views"] == {"clips": 2, "crops": 3}
    confusion = result["confusion_matrix"]
    assert sum(map(sum, confusion)) == test_videos
    assert result["top1"] == pytest.approx(sum(confusion[c][c] for c in range(10)) / test_videos)
    assert 0 <= result["top1"] <= result["top5"] <= 1
    assert main([*args[:-2], "--views", "10x2"]) == 2


def test_unreadable_video_is_replaced_counted_or_fatal_with_strict(tiny_data, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    first = (data / "train.txt").read_text().split()[0]
    (data / first).write_bytes(b"")  # a zero-byte video in the training list
    graph = {
        "kind": "basic",
        "samplings": ["uniform"],
        "clip_lengths": [4],
        "learning_rates": [0.05],
    }
    path = write_video_config(data, tmp_path / "c.yaml", graph, {"delay": 1, "max_epochs": 2})
    config = yaml.safe_load(path.read_text())
    config["trainer"]["data"]["max_bad_fraction"] = 0.5
    path.write_text(yaml.safe_dump(config))
    assert main(["plan", str(path), "--out", str(tmp_path / "strict"), "--strict"]) == 1
    assert first in capsys.readouterr().err
    assert main(["plan", str(path), "--out", str(tmp_path / "lenient")]) == 0
    health = json.loads((tmp_path / "lenient" / "data_health.json").read_text())
    assert [Path(p).name for p in health["bad_files"]] == [Path(first).name]
    assert health["total_failures"] >= 1


def test_synthetic_dataset_of_another_config_is_refused(tmp_path, capsys):
    from opplan.config import parse_config
    from opplan.engine.build import ensure_dataset
    from opplan.errors import ConfigError

    def data(videos):
        return parse_config(
            {
                "trainer": {
                    "kind": "video",
                    "data": {
                        "root": str(tmp_path / "d"),
                        "synthetic": {
                            "task": "tempo",
                            "videos_per_class": videos,
                            "size": 16,
                            "min_frames": 16,
                            "max_frames": 20,
                        },
                    },
                }
            }
        ).trainer.data

    ensure_dataset(data(2), log=lambda _: None)
    ensure_dataset(data(2), log=lambda _: None)  # the same dataset: reused
    with pytest.raises(ConfigError, match=r"videos_per_class: .* videos_per_class=2"):
        ensure_dataset(data(3), log=lambda _: None)


def test_initialization_from_a_video_checkpoint_with_another_class_count(tmp_path):
    from opplan.config import ModelConfig
    from opplan.engine import save_checkpoint
    from opplan.engine.build import make_model_factory

    source = build_model("dg_p3d_tiny", num_classes=5)
    save_checkpoint(tmp_path / "k400.pt", {"model": source.state_dict()})
    factory = make_model_factory(
        ModelConfig(name="dg_p3d_tiny", init=f"checkpoint:{tmp_path / 'k400.pt'}"), 10
    )
    net = factory()
    assert net.get_classifier()[0].out_features == 10  # classifier re-initialised (§5.5)
    backbone = {k: v for k, v in source.state_dict().items() if "fc" not in k}
    for key, value in backbone.items():
        assert torch.equal(net.state_dict()[key], value), key


def test_initialization_from_imagenet_weights_inflates_them(tmp_path):
    import torchvision

    from opplan.config import ModelConfig
    from opplan.engine.build import make_model_factory

    resnet = torchvision.models.resnet50()
    torch.save(resnet.state_dict(), tmp_path / "resnet50.pth")
    factory = make_model_factory(
        ModelConfig(name="p3d_resnet50", init=f"imagenet:{tmp_path / 'resnet50.pth'}"), 10
    )
    net = factory()
    spatial = dict(net.named_parameters())["res2.0.conv2.spatial.weight"]
    assert torch.equal(spatial[:, :, 0], resnet.layer1[0].conv2.weight)
    with pytest.raises(Exception, match=r"model\.init"):
        make_model_factory(ModelConfig(name="p3d_resnet50", init="imagenet:"), 10)
