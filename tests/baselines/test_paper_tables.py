"""``benchmarks/paper_tables.py`` at toy sizes: each table runs end to end, writes its
Markdown with the command, and a repeated command resumes instead of retraining."""

from __future__ import annotations

import pytest
import torch

from benchmarks import paper_tables
from opplan.engine import VideoTrainer

TOY = [
    "--tasks",
    "order",
    "--videos-per-class",
    "4",
    "--frames",
    "24,40",
    "--lengths",
    "2",
    "--lrs",
    "0.05,0.005",
    "--budgets",
    "2",
    "--decays",
    "3step",
    "--delay",
    "1",
    "--max-epochs",
    "3",
    "--min-epochs-from-initial",
    "0",
    "--views",
    "1x1",
]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def count_epochs(monkeypatch):
    calls = {"n": 0}
    original = VideoTrainer.train_epoch

    def counting(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(VideoTrainer, "train_epoch", counting)
    return calls


@pytest.mark.slow  # ~30-50 s: builds the Table 4 analogue from toy runs (make test-all)
def test_table4_runs_and_resumes(tmp_path, monkeypatch):
    argv = ["table4", "--work", str(tmp_path), "--networks", "dg_p3d_tiny", *TOY]
    paper_tables.main(argv)
    text = (tmp_path / "table4.md").read_text()
    assert text.startswith("`nice -n 10 .venv/bin/python -m benchmarks.paper_tables table4")
    rows = [line for line in text.splitlines() if line.startswith("| order |")]
    assert [r.split(" | ")[1] for r in rows] == ["hand-tuned (grid best)", "planner"]
    # grid: one length schedule x one decay x two samplings x one budget = 2 runs of 2 epochs
    assert rows[0].split(" | ")[4] == "4"
    calls = count_epochs(monkeypatch)
    paper_tables.main(argv)  # everything is finished: nothing is trained again
    assert calls["n"] == 0
    assert (tmp_path / "table4.md").read_text() == text
    # Table 3's DG-P3D row is the same config: it reads Table 4's runs, trains nothing
    paper_tables.main(["table3", *argv[1:]])
    assert calls["n"] == 0
    row = next(r for r in (tmp_path / "table3.md").read_text().splitlines() if "| dg_p3d" in r)
    assert row.split(" | ")[1:3] == rows[0].split(" | ")[2:4]  # grid best val / test
    # a second seed's plan alone (--grid-seeds): no grid is trained for it
    paper_tables.main(["table3", *argv[1:], "--seeds", "0,1", "--grid-seeds", "0"])
    assert not list((tmp_path / "runs").glob("*seed1/grid*"))
    assert list((tmp_path / "runs").glob("*seed1/plan*/plan.json"))
    assert "grids: seeds [0], plans: seeds [0, 1]" in (tmp_path / "table3.md").read_text()
    calls["n"] = 0
    # the grid's best schedule again with a larger budget: only its 3 epochs are trained
    paper_tables.main(["longer", *argv[1:], "--long-budgets", "3"])
    assert calls["n"] == 3
    longer = [r for r in (tmp_path / "longer.md").read_text().splitlines() if "| order |" in r]
    assert [r.split(" | ")[2] for r in longer] == ["2", rows[1].split(" | ")[4], "3"]
    # and the whole grid at that budget on the task's sampling (one schedule at toy size)
    paper_tables.main(["longer", *argv[1:], "--long-budgets", "3", "--long-grid", "3"])
    assert calls["n"] == 3 + 3
    row = next(r for r in (tmp_path / "longer.md").read_text().splitlines() if "grids" in r)
    assert "budgets 2/3 (3 more epochs on uniform): uniform-2f-3step-e2 | 2 |" in row


@pytest.mark.slow
def test_table1_and_transfer_run(tmp_path):
    paper_tables.main(["table1", "--work", str(tmp_path), "--networks", "p3d_tiny", *TOY])
    text = (tmp_path / "table1.md").read_text()
    assert "| exponential |" in text and "4 curves of 10 epochs" not in text
    assert "2 curves of 10 epochs" in text  # 1 length x 2 lrs, --step-epochs 10
    paper_tables.main(["transfer", "--work", str(tmp_path), "--target", "p3d_tiny", *TOY])
    assert "| p3d_tiny trained with |" in (tmp_path / "transfer.md").read_text()


def test_task_data_defaults_follow_the_relay_config():
    """Without --videos-per-class/--frames, relay gets its config's validated design (80
    videos per class, 64-192 frames); order and tempo keep 30; the options win."""
    import argparse

    import yaml

    from benchmarks.paper_runs import TASK_CONFIGS, task_data

    syn = yaml.safe_load(TASK_CONFIGS["relay"].read_text())["trainer"]["data"]["synthetic"]
    assert syn["videos_per_class"] == 80
    default = argparse.Namespace(videos_per_class=None, frames=None)
    assert task_data(default, "relay") == (80, [64, 192])
    assert task_data(default, "order") == task_data(default, "tempo") == (30, [64, 192])
    given = argparse.Namespace(videos_per_class=4, frames=[24, 40])
    assert task_data(given, "relay") == task_data(given, "order") == (4, [24, 40])
