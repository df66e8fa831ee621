"""Shared pieces of the reliability suite: helper modules on the path, a tiny dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

# the helpers _opplan_faults.py and _opplan_configs.py (imported by the test modules)
sys.path.insert(0, str(Path(__file__).parent))

torch.set_num_threads(1)


def _preload() -> None:
    """Import what a CLI run imports lazily (matplotlib, TensorBoard, the engine), once: the
    forked children of the crash tests then start in milliseconds instead of seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401

    import opplan.cli._plan
    import opplan.cli._train
    import opplan.engine.build
    import opplan.report.figures
    import opplan.report.tensorboard  # noqa: F401


_preload()


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic ``order`` task: 10 classes x 4 videos of 16-24 frames, 32 px."""
    from opplan.video.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("videos")
    generate_dataset("order", root, videos_per_class=4, size=32, min_frames=16, max_frames=24)
    return root


@pytest.fixture(scope="session")
def plan_reference(tiny_videos, tmp_path_factory):
    """An uninterrupted tiny plan: (config, run dir, plan.json, occurrences of each fault
    point in it)."""
    from _opplan_configs import video_config, write_yaml
    from _opplan_faults import run_cli

    tmp = tmp_path_factory.mktemp("plan_reference")
    config = write_yaml(tmp / "plan.yaml", video_config(tiny_videos))
    counts = tmp / "counts.json"
    assert run_cli(["plan", str(config), "--out", str(tmp / "run")], counts_out=counts) == 0
    plan = json.loads((tmp / "run" / "plan.json").read_text())
    return config, tmp / "run", plan, json.loads(counts.read_text())


@pytest.fixture(scope="session")
def train_reference(tiny_videos, tmp_path_factory):
    """An uninterrupted ``opplan train`` of RECIPE: (config, recipe, run dir, train.json,
    occurrences of each fault point)."""
    from _opplan_configs import RECIPE, video_config, write_yaml
    from _opplan_faults import run_cli

    tmp = tmp_path_factory.mktemp("train_reference")
    config = write_yaml(tmp / "train.yaml", video_config(tiny_videos))
    recipe = write_yaml(tmp / "recipe.yaml", RECIPE)
    counts = tmp / "counts.json"
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(tmp / "run")]
    assert run_cli(argv, counts_out=counts) == 0
    summary = json.loads((tmp / "run" / "train.json").read_text())
    return config, recipe, tmp / "run", summary, json.loads(counts.read_text())
