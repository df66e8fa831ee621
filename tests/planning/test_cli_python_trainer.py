"""``trainer: {kind: python, factory: ...}``: a user's trainer from the CLI, errors exit 2."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import yaml

from opplan.cli import main

USER_MODULE = """
from opplan.planning.simulate import RandomLandscape, SimulatedTrainer


class MyTrainer(SimulatedTrainer):
    extra_axes = ("size",)
    built = []

    def __init__(self, checkpoint_dir, seed):
        super().__init__(checkpoint_dir, RandomLandscape(seed, noise=0.0))
        MyTrainer.built.append((str(checkpoint_dir), seed))


def make(checkpoint_dir, seed=0):
    if seed < 0:
        raise ValueError("seed must be >= 0")
    return MyTrainer(checkpoint_dir, seed)


class Half:
    def start(self, state, from_checkpoint): ...


def make_half(checkpoint_dir):
    return Half()
"""

GRAPH = {
    "kind": "basic",
    "samplings": ["uniform"],
    "clip_lengths": [8, 16],
    "learning_rates": [0.1, 0.01],
}


def _config(tmp_path, trainer, graph=GRAPH):
    sys.modules.pop("user_trainer_mod", None)  # each test imports its own copy
    (tmp_path / "user_trainer_mod.py").write_text(textwrap.dedent(USER_MODULE))
    data = {
        "graph": graph,
        "planner": {"delay": 2, "max_epochs": 12},
        "trainer": {"kind": "python", "path": [str(tmp_path)], **trainer},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_user_trainer_plans_like_the_simulated_one(tmp_path):
    config = _config(tmp_path, {"factory": "user_trainer_mod:make", "options": {"seed": 5}})
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 0
    mine = json.loads((tmp_path / "run" / "plan.json").read_text())
    import user_trainer_mod

    assert user_trainer_mod.MyTrainer.built == [(str(tmp_path / "run" / "checkpoints"), 5)]
    reference = {**yaml.safe_load(config.read_text())}
    reference["trainer"] = {"kind": "simulated", "landscape": "random", "seed": 5, "noise": 0.0}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(reference))
    assert main(["plan", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "ref")]) == 0
    simulated = json.loads((tmp_path / "ref" / "plan.json").read_text())
    assert mine["path"] == simulated["path"] and mine["value"] == simulated["value"]
    assert (tmp_path / "run" / "report" / "README.md").exists()
    # resumable like any plan: the finished plan is shown again, the same
    assert main(["plan", str(config), "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["path"] == mine["path"]


def test_an_extra_axis_the_user_trainer_acts_on_is_planned(tmp_path):
    graph = {**GRAPH, "extra_axes": [{"name": "size", "values": [112, 160]}]}
    config = _config(tmp_path, {"factory": "user_trainer_mod:make"}, graph)
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 0
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["best_final_state"] == "uniform 16f lr=0.01 size=160"
    assert plan["path"][0]["size"] == 112


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        ({"factory": "no_such_module_xyz:make"}, "trainer.factory 'no_such_module_xyz:make': "
         "cannot import 'no_such_module_xyz'"),
        ({"factory": "user_trainer_mod:nope"}, "has no callable 'nope'"),
        ({"factory": "user_trainer_mod:make_half"}, "Half lacks resume, train_epoch, evaluate, "
         "save, release of the Trainer protocol"),
        ({"factory": "user_trainer_mod:make", "options": {"sed": 1}},
         "trainer.options: make() does not take them"),
        ({"factory": "user_trainer_mod:make", "options": {"seed": -1}},
         "trainer.options: make() refused them (ValueError: seed must be >= 0)"),
        ({"factory": "not a path"}, "trainer.python.factory"),
    ],
)  # fmt: skip
def test_user_trainer_errors_exit_2_naming_it(tmp_path, capsys, trainer, message):
    config = _config(tmp_path, trainer)
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "journal.jsonl").exists()


def test_an_axis_the_user_trainer_ignores_exits_2(tmp_path, capsys):
    graph = {**GRAPH, "extra_axes": [{"name": "depth", "values": [1, 2]}]}
    config = _config(tmp_path, {"factory": "user_trainer_mod:make"}, graph)
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "does not act on extra axis 'depth' (it acts on: size)" in err
    assert not (tmp_path / "run" / "journal.jsonl").exists()


@pytest.mark.slow
def test_the_user_trainer_runs_in_ray_actors(tmp_path):
    pytest.importorskip("ray")
    config = _config(tmp_path, {"factory": "user_trainer_mod:make", "options": {"seed": 5}})
    assert main(["plan", str(config), "--out", str(tmp_path / "local")]) == 0
    run = tmp_path / "ray"
    assert main(["plan", str(config), "--out", str(run), "--executor", "ray"]) == 0
    local = json.loads((tmp_path / "local" / "plan.json").read_text())
    assert json.loads((run / "plan.json").read_text())["path"] == local["path"]
