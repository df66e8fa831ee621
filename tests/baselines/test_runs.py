"""``opplan baseline`` and ``opplan grid`` on tiny generated videos: the per-epoch lr reaches
the optimizer, a cut run resumes to the same result, finished runs are not retrained, bad
options exit 2 before any work, and the grid's cost compares with a plan's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from opplan.baselines import HandTunedSchedule, compare_costs, grid_cost, plan_cost
from opplan.cli import build_parser, main
from opplan.cli._baseline import register
from opplan.engine import VideoTrainer
from opplan.video import read_video_list
from opplan.video.synthetic import generate_dataset

SIMULATED = {
    "graph": {
        "kind": "extended",
        "samplings": ["consecutive"],
        "clip_lengths": [8, 16],
        "learning_rates": [0.1, 0.01],
    },
    "planner": {"delay": 2, "max_epochs": 8},
    "trainer": {"kind": "simulated", "landscape": "random", "seed": 3},
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    generate_dataset("order", root, videos_per_class=4, size=32, min_frames=24, max_frames=40)
    return root


@pytest.fixture
def cli(monkeypatch):
    """``opplan`` with the baseline commands registered (before the lead adds the module)."""
    import opplan.cli as cli_module

    modules = cli_module._COMMAND_MODULES
    if "opplan.cli._baseline" not in modules:
        monkeypatch.setattr(cli_module, "_COMMAND_MODULES", (*modules, "opplan.cli._baseline"))
    return main


def video_config(tiny_data, path):
    config = {
        "graph": {
            "kind": "extended",
            "samplings": ["consecutive", "uniform"],
            "clip_lengths": [2, 4],
            "learning_rates": [0.05, 0.005],
        },
        "planner": {"max_epochs": 4},
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "threads": 1,
            "eval_batch": 8,
            "data": {"root": str(tiny_data), "frame_size": 32, "internal_val_size": 6},
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


def interrupt_at_epoch(monkeypatch, n):
    calls = {"n": 0}
    original = VideoTrainer.train_epoch

    def interrupting(self):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(VideoTrainer, "train_epoch", interrupting)
    return calls


def test_cosine_baseline_sets_each_epochs_lr_and_resumes_exactly(tiny_data, tmp_path, cli):
    config = video_config(tiny_data, tmp_path / "c.yaml")
    args = ["baseline", str(config), "--lengths", "2,4", "--decay", "cosine", "--epochs", "3"]
    args += ["--sampling", "uniform", "--views", "2x1"]
    reference = [*args, "--out", str(tmp_path / "ref")]
    assert cli(reference) == 0
    journal = [json.loads(x) for x in (tmp_path / "ref" / "train_journal.jsonl").open()]
    expected = HandTunedSchedule((2, 4), "cosine", "uniform", 3, (0.05, 0.005))
    assert [e["metrics"]["lr"] for e in journal] == [expected.lr_at(e) for e in range(3)]
    assert all(e["seconds"] > 0 for e in journal)
    result = json.loads((tmp_path / "ref" / "result.json").read_text())
    assert result["val_score"] == journal[-1]["score"] and result["epochs"] == 3
    assert result["weighted_epochs"] == (1 * 2 + 2 * 4) / 2
    test = json.loads((tmp_path / "ref" / "test_2x1.json").read_text())
    assert test["num_videos"] == len(read_video_list(tiny_data / "test.txt", root=tiny_data))
    assert test["state"] == f"uniform 4f lr={expected.lr_at(1)!r}"
    assert test["num_excluded"] == 0 and test["scores_file"] == "test_2x1.scores.npz"
    scores = np.load(tmp_path / "ref" / "test_2x1.scores.npz")["scores"]
    assert scores.shape == (test["num_videos"], 10)  # per-video softmax, for offline fusion
    assert not (tmp_path / "ref" / "checkpoints").exists()  # model.pt is the final model

    cut = [*args, "--out", str(tmp_path / "cut")]
    restore = interrupt_at_epoch(monkeypatch := pytest.MonkeyPatch(), 3)
    try:
        assert cli(cut) == 130
    finally:
        monkeypatch.undo()
    assert restore["n"] == 3
    assert cli(cut) == 2  # an existing run needs --resume
    assert cli([*cut, "--resume"]) == 0
    resumed = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert resumed["scores"] == result["scores"]  # bit for bit on CPU
    assert (tmp_path / "cut" / "model.pt").read_bytes() != b""


def test_bad_options_exit_2_before_any_work(tiny_data, tmp_path, cli, capsys):
    config = video_config(tiny_data, tmp_path / "c.yaml")
    base = ["baseline", str(config), "--decay", "3step", "--sampling", "uniform"]
    cases = [
        [*base, "--lengths", "4,2", "--epochs", "6"],  # not increasing
        [*base, "--lengths", "2,x", "--epochs", "6"],
        [*base, "--lengths", "2,4", "--epochs", "1"],  # fewer epochs than lr steps
        [*base, "--lengths", "2,4", "--epochs", "6", "--views", "3x2"],
        [*base[:3], "linear", *base[4:], "--lengths", "2", "--epochs", "6"],
        ["grid", str(config), "--budgets", "1,2"],
        ["grid", str(config), "--samplings", "random"],
        ["grid", str(config), "--decays", "3step,exp"],
        ["grid", str(config), "--plan", str(tmp_path / "nowhere")],
    ]
    for k, argv in enumerate(cases):
        out = tmp_path / f"run{k}"
        assert cli([*argv, "--out", str(out)]) == 2, argv
        assert not out.exists(), argv
        assert "error" in capsys.readouterr().err
    simulated = tmp_path / "s.yaml"
    simulated.write_text(yaml.safe_dump(SIMULATED))
    assert cli(["grid", str(simulated), "--out", str(tmp_path / "s")]) == 2
    assert "trainer.kind must be 'video'" in capsys.readouterr().err


def test_grid_resumes_without_retraining_and_compares_costs(tiny_data, tmp_path, cli, capsys):
    config = video_config(tiny_data, tmp_path / "c.yaml")
    simulated = tmp_path / "s.yaml"
    simulated.write_text(yaml.safe_dump(SIMULATED))
    assert cli(["plan", str(simulated), "--out", str(tmp_path / "plan")]) == 0
    grid = ["grid", str(config), "--budgets", "2", "--samplings", "uniform", "--decays", "3step"]
    grid += ["--views", "1x1", "--out", str(tmp_path / "grid")]
    calls = interrupt_at_epoch(monkeypatch := pytest.MonkeyPatch(), 4)  # inside the 2nd run
    try:
        assert cli(grid) == 130
        assert cli([*grid, "--resume", "--plan", str(tmp_path / "plan")]) == 0
    finally:
        monkeypatch.undo()
    assert calls["n"] == 2 + 2 + 1  # 2 epochs, 1 epoch + the cut one, the 2nd epoch again
    results = json.loads((tmp_path / "grid" / "results.json").read_text())
    names = [r["schedule"]["name"] for r in results["runs"]]
    assert names == ["uniform-2-4f-3step-e2", "uniform-4f-3step-e2"]
    best = max(results["runs"], key=lambda r: (r["val_score"], -r["weighted_epochs"]))
    assert results["best"] == best["schedule"]["name"]
    assert set(results["tests"]) == {results["best"]}
    assert results["cost"]["epochs"] == 4
    assert results["cost"]["weighted_epochs"] == (2 + 4) / 2 + 2 * 4 / 2
    assert "hand-tuned grid" in capsys.readouterr().out

    comparison = json.loads((tmp_path / "grid" / "cost_vs_plan.json").read_text())
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    epochs = sum(t["epochs_trained"] for t in plan["transitions"])
    assert comparison["plan"]["epochs"] == epochs
    assert comparison["plan_over_grid"]["epochs"] == epochs / 4
    assert comparison["grid"] == grid_cost(results).to_dict()
    # time on one footing: summed per-epoch seconds on both sides, wall time apart
    summed = sum(t["seconds"] for t in plan["transitions"])
    grid_seconds = sum(r["seconds"] for r in results["runs"])
    assert comparison["plan"]["training_seconds"] == pytest.approx(summed)
    assert comparison["grid"]["training_seconds"] == pytest.approx(grid_seconds)
    ratio = comparison["plan_over_grid"]["training_seconds"]
    assert ratio == pytest.approx(summed / grid_seconds)
    assert comparison["plan"]["wall_seconds"] == plan["cost"]["wall_seconds"]
    assert plan["cost"]["weighted_epochs"] == pytest.approx(
        sum(t["epochs_trained"] * int(t["to"].split()[1][:-1]) for t in plan["transitions"])
        / min(int(t["to"].split()[1][:-1]) for t in plan["transitions"])
    )

    # the same cost read back from the journal of a plan without plan.json
    (tmp_path / "plan" / "plan.json").unlink()
    from_journal = plan_cost(tmp_path / "plan", reference_length=8)
    weighted = sum(
        t["epochs_trained"] * int(t["to"].split()[1][:-1]) / 8 for t in plan["transitions"]
    )
    assert from_journal.epochs == epochs and from_journal.units == len(plan["transitions"])
    assert from_journal.weighted_epochs == pytest.approx(weighted)
    assert compare_costs(from_journal, grid_cost(results))["plan"]["epochs"] == epochs

    # a grid of other budgets in the same directory is refused
    assert cli([*grid[:2], "--budgets", "3", *grid[4:], "--resume"]) == 2


def test_commands_are_registered_by_the_module():
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["grid", "c.yaml", "--out", "r", "--budgets", "4,8"])
    assert args.budgets == "4,8" and callable(args.func)
    assert build_parser() is not None


def test_a_run_directory_survives_new_config_fields_but_not_changed_ones():
    from opplan.baselines._run import _differs

    saved = {"seed": 0, "data": {"root": "a", "size": 32}}
    assert not _differs(saved, {"seed": 0, "data": {"root": "a", "size": 32, "new": 1}})
    assert _differs(saved, {"seed": 1, "data": {"root": "a", "size": 32}})
    assert _differs(saved, {"seed": 0, "data": {"root": "b", "size": 32}})
    assert _differs(saved, {"seed": 0})
