"""opplan.plan / Planner.open: start a plan or resume the one in run_dir, never both."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import opplan
from opplan.errors import ConfigError, RunDirError
from opplan.planning import Planner, PlannerOptions, TransitionGraph, read_journal
from opplan.planning.simulate import SimulatedTrainer

GRAPH = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1, 0.01])
FAST = {"delay": 3, "max_epochs": 20}


class Crash(Exception):
    pass


class CrashingTrainer(SimulatedTrainer):
    """Raises at its ``crash_at``-th epoch, like a Ctrl-C in the middle of a transition."""

    def __init__(self, checkpoint_dir, crash_at):
        super().__init__(checkpoint_dir)
        self.calls, self.crash_at = 0, crash_at

    def train_epoch(self):
        self.calls += 1
        if self.calls == self.crash_at:
            raise Crash
        return super().train_epoch()


def _starts(run):
    return [e for e in read_journal(run / "journal.jsonl") if e["op"] == "plan_started"]


def test_plan_writes_the_plan_and_a_second_call_reads_it_back(tmp_path):
    trainer = SimulatedTrainer(tmp_path / "ck")
    first = opplan.plan(GRAPH, trainer, tmp_path, **FAST)
    assert str(first.best_final_state) == "uniform 16f lr=0.01"
    assert json.loads((tmp_path / "plan.json").read_text())["value"] == pytest.approx(first.value)
    assert (tmp_path / "recipe.yaml").exists()
    again = opplan.plan(GRAPH, CrashingTrainer(tmp_path / "ck", crash_at=1), tmp_path, **FAST)
    assert again.to_dict() == first.to_dict()  # nothing trained: the crashing trainer is idle
    assert len(_starts(tmp_path)) == 1


def test_a_crashed_plan_resumes_to_the_uninterrupted_plan(tmp_path):
    whole = opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "a" / "ck"), tmp_path / "a", **FAST)
    run = tmp_path / "b"
    with pytest.raises(Crash):
        opplan.plan(GRAPH, CrashingTrainer(run / "ck", crash_at=12), run, **FAST)
    done = [e for e in read_journal(run / "journal.jsonl") if e["op"] == "epoch_scored"]
    assert len(done) == 11
    resumed_trainer = SimulatedTrainer(run / "ck")
    resumed = opplan.plan(GRAPH, resumed_trainer, run, **FAST)
    assert resumed.path == whole.path and resumed.value == whole.value
    assert resumed.epochs_total == whole.epochs_total
    events = read_journal(run / "journal.jsonl")
    assert sum(e["op"] == "epoch_scored" for e in events) == whole.epochs_total  # none twice
    assert len(_starts(run)) == 2  # two sessions of one plan, not two plans


def test_another_graph_or_decisive_option_is_refused(tmp_path):
    opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "ck"), tmp_path, **FAST)
    other = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])
    with pytest.raises(RunDirError, match="another graph"):
        opplan.plan(other, SimulatedTrainer(tmp_path / "ck"), tmp_path, **FAST)
    with pytest.raises(RunDirError, match="delay: 3 there, 4 here"):
        opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "ck"), tmp_path, delay=4, max_epochs=20)
    # cosmetic options may change on a resume
    opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "ck"), tmp_path, keep_checkpoints=True, **FAST)
    assert len(_starts(tmp_path)) == 1


def test_an_option_added_since_the_plan_started_counts_at_its_default(tmp_path):
    opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "ck"), tmp_path, **FAST)
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    del first["plan"]["options"]["prune_margin"]  # as written by an older opplan
    (tmp_path / "journal.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "ck"), tmp_path, **FAST)


def test_user_errors_name_the_option_or_the_missing_method(tmp_path):
    with pytest.raises(ConfigError, match="unknown option 'dealy'"):
        opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "ck"), tmp_path, dealy=3)

    class Half:
        def start(self, state, from_checkpoint): ...

        def train_epoch(self): ...

    with pytest.raises(ConfigError, match="lacks resume, evaluate, save, release"):
        opplan.plan(GRAPH, Half(), tmp_path, **FAST)
    assert not (tmp_path / "plan.json").exists()
    assert read_journal(tmp_path / "journal.jsonl") == []


def test_a_cli_run_directory_is_refused(tmp_path):
    (tmp_path / "journal.jsonl").write_text(
        json.dumps({"op": "plan_started", "config_hash": "abc", "time": 0.0}) + "\n"
    )
    with pytest.raises(RunDirError, match="started from a config"):
        opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "ck"), tmp_path, **FAST)


def test_planner_open_holds_the_lock_until_closed(tmp_path):
    options = PlannerOptions(**FAST)
    with Planner.open(tmp_path, GRAPH, SimulatedTrainer(tmp_path / "ck"), options=options) as p:
        with pytest.raises(RunDirError, match="in use"):
            Planner.open(tmp_path, GRAPH, SimulatedTrainer(tmp_path / "ck"), options=options)
        plan = p.run()
    with Planner.open(tmp_path, GRAPH, SimulatedTrainer(tmp_path / "ck"), options=options) as p:
        assert p.progress.finished is not None
        assert p.run().to_dict() == plan.to_dict()


def test_import_opplan_is_cheap():
    code = (
        "import sys, opplan\n"
        "assert 'numpy' not in sys.modules and 'torch' not in sys.modules\n"
        "opplan.plan\n"
        "assert 'torch' not in sys.modules, 'opplan.plan imported torch'\n"
        "print(opplan.plan.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "opplan.planning.api"


def test_the_module_example_runs():
    import doctest

    import opplan.planning.api as api

    assert doctest.testmod(api).failed == 0


def test_an_extra_axis_the_trainer_does_not_act_on_is_refused(tmp_path):
    graph = TransitionGraph.build("basic", ["uniform"], [8], [0.1], extra_axes={"size": [1, 2]})

    class Sized(SimulatedTrainer):
        extra_axes = ("depth",)

    with pytest.raises(ConfigError, match=r"does not act on extra axis 'size'.*\['depth'\]"):
        opplan.plan(graph, Sized(tmp_path / "ck"), tmp_path, **FAST)
    assert read_journal(tmp_path / "journal.jsonl") == []
    Sized.extra_axes = ("depth", "size")
    assert str(opplan.plan(graph, Sized(tmp_path / "ck"), tmp_path, **FAST).best_final_state) == (
        "uniform 8f lr=0.1 size=2"
    )


def test_an_executor_is_a_runner_too(tmp_path):
    from opplan.planning.executors import LocalExecutor

    alone = opplan.plan(GRAPH, SimulatedTrainer(tmp_path / "a" / "ck"), tmp_path / "a", **FAST)
    executor = LocalExecutor(SimulatedTrainer(tmp_path / "b" / "ck"))
    through = opplan.plan(GRAPH, executor, tmp_path / "b", **FAST)
    assert through.path == alone.path and through.value == alone.value
