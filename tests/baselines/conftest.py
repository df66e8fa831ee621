"""Fixtures of the multigrid and search tests: tiny generated videos, the tiny video config
of ``test_runs.py``, the CLI, and a ``train_epoch`` that stops the process at epoch n."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from opplan.engine import VideoTrainer
from opplan.video.synthetic import generate_dataset


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def order_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("order")
    generate_dataset("order", root, videos_per_class=4, size=32, min_frames=24, max_frames=40)
    return root


@pytest.fixture
def opplan_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    """``opplan`` with the baseline commands registered."""
    import opplan.cli as cli_module

    modules = cli_module._COMMAND_MODULES
    if "opplan.cli._baseline" not in modules:
        monkeypatch.setattr(cli_module, "_COMMAND_MODULES", (*modules, "opplan.cli._baseline"))
    return cli_module.main


def write_video_config(root: Path, path: Path, **graph: Any) -> Path:
    """The tiny p3d config of test_runs.py (clips of 2 and 4 frames, 32 px, batch 8)."""
    config = {
        "graph": {
            "kind": "extended",
            "samplings": ["consecutive", "uniform"],
            "clip_lengths": [2, 4],
            "learning_rates": [0.05, 0.005],
            **graph,
        },
        "planner": {"max_epochs": 4},
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "threads": 1,
            "eval_batch": 8,
            "data": {"root": str(root), "frame_size": 32, "internal_val_size": 6},
            "model": {"name": "p3d_tiny"},
            "optim": {
                "effective_batch": 8,
                "reference_batch": 8,
                "base_micro_batch": 8,
                "base_clip_length": 4,
            },
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Interrupt:
    """Raise KeyboardInterrupt at the ``at``-th ``VideoTrainer.train_epoch`` call."""

    def __init__(self, at: int) -> None:
        self.at, self.n = at, 0

    def __enter__(self) -> Interrupt:
        self._patch = pytest.MonkeyPatch()
        original = VideoTrainer.train_epoch

        def interrupting(trainer: VideoTrainer) -> dict[str, float]:
            self.n += 1
            if self.n == self.at:
                raise KeyboardInterrupt
            return original(trainer)

        self._patch.setattr(VideoTrainer, "train_epoch", interrupting)
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.undo()
