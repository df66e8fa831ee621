"""``planner.branches`` (beyond the paper, issue 20): a branch of the graph (a sampling) whose
first moves are far behind is dropped once they have all ended -- deterministic, replayed
exactly on resume, and the same answer when the dropped branch really is the worse one."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from opplan.config import PlannerConfig
from opplan.planning import (
    Journal,
    Planner,
    PlannerOptions,
    TrainingState,
    TransitionGraph,
    read_journal,
)
from opplan.planning.branches import BRANCH, branch_of, dropped_branches
from opplan.planning.progress import TransitionRecord
from opplan.planning.simulate import CurveParams, RandomLandscape, SimulatedTrainer
from opplan.testing.planning import cut_plan, untimed

S = TrainingState.parse
GRAPH = TransitionGraph.build("extended", ["uniform", "consecutive"], [8, 16], [0.1, 0.01])
OPTIONS = PlannerOptions(delay=3, max_epochs=20, keep_checkpoints=True)
BRANCHES = PlannerOptions(delay=3, max_epochs=20, keep_checkpoints=True, branches=True)


@dataclass(frozen=True)
class WorseConsecutive:
    """A random landscape in which every move into a consecutive state removes a third of
    the error it would remove otherwise: that branch is clearly worse from its first move."""

    seed: int = 3
    noise: float = 0.0

    def curve(self, src: TrainingState, dst: TrainingState) -> CurveParams:
        p = RandomLandscape(self.seed, self.noise).curve(src, dst)
        if dst.sampling == "consecutive":
            return CurveParams(p.gain / 3, p.rate, p.overfit)
        return p


def _plan(run, options, progress=None):
    with Journal(run / "journal.jsonl") as journal:
        trainer = SimulatedTrainer(run / "ck", WorseConsecutive())
        return Planner(GRAPH, trainer, journal, options, progress=progress).run()


@pytest.fixture(scope="module")
def branched(tmp_path_factory):
    run = tmp_path_factory.mktemp("branched")
    return run, _plan(run, BRANCHES).to_dict()


def test_each_sampling_is_its_own_branch():
    branch = branch_of(GRAPH)
    assert set(branch) == {s for s in GRAPH.states if not s.is_initial}
    by_sampling = {s.sampling: set() for s in branch}
    for state, b in branch.items():
        by_sampling[state.sampling].add(b)
    assert sorted(map(len, by_sampling.values())) == [1, 1]  # one branch each, and
    assert by_sampling["uniform"] != by_sampling["consecutive"]  # not the same one
    single = TransitionGraph.build("extended", ["uniform"], [8, 16, 32], [0.1, 0.01])
    assert set(branch_of(single).values()) == {0}


def _ids() -> tuple[int, int]:
    """The uniform and the consecutive branch's numbers."""
    branch = branch_of(GRAPH)
    return branch[S("uniform 8f lr=0.1")], branch[S("consecutive 8f lr=0.1")]


def _first(dst: str, value: float | None, finished: bool = True) -> TransitionRecord:
    record = TransitionRecord(TrainingState.initial(), S(dst), 0.0, [0.0], [])
    record.finished, record.value, record.failed = finished, value, value is None
    return record


def _firsts(uniform: float | None, consecutive: float | None) -> dict:
    firsts = [(src, dst) for src, dst in GRAPH.edges if src.is_initial]
    values = {"uniform": uniform, "consecutive": consecutive}
    return {(src, dst): _first(str(dst), values[dst.sampling]) for src, dst in firsts}


def test_nothing_is_decided_until_every_first_move_has_ended():
    branch = branch_of(GRAPH)
    records = _firsts(0.8, 0.3)
    u, c = _ids()
    assert dropped_branches(GRAPH, branch, records, 0.1) == ({u: 0.8, c: 0.3}, {c})
    running = dict(records)
    edge = next(iter(running))
    running[edge] = _first(str(edge[1]), None, finished=False)
    assert dropped_branches(GRAPH, branch, running, 0.1) is None
    del running[edge]
    assert dropped_branches(GRAPH, branch, running, 0.1) is None


@given(st.floats(0.0, 1.0), st.one_of(st.none(), st.floats(0.0, 1.0)), st.floats(0.0, 0.5))
def test_a_branch_is_dropped_exactly_when_it_trails_the_leader_by_more_than_the_margin(
    uniform, consecutive, margin
):
    decision = dropped_branches(GRAPH, branch_of(GRAPH), _firsts(uniform, consecutive), margin)
    assert decision is not None
    best, dropped = decision
    other = -math.inf if consecutive is None else consecutive
    u, c = _ids()
    assert best == {u: uniform, c: other}
    leader = max(uniform, other)
    assert dropped == {b for b, v in best.items() if v < leader - margin}
    assert max(best, key=best.__getitem__) not in dropped  # the leader always stays


def test_every_first_move_failing_drops_nothing():
    best, dropped = dropped_branches(GRAPH, branch_of(GRAPH), _firsts(None, None), 0.1)
    assert best == dict.fromkeys(_ids(), -math.inf) and dropped == set()


def test_dropping_the_worse_branch_keeps_the_answer_and_saves_its_moves(branched, tmp_path):
    _, plan = branched
    full = _plan(tmp_path, OPTIONS).to_dict()
    assert plan["path"] == full["path"] and plan["value"] == full["value"]
    assert all(step["sampling"] == "uniform" for step in plan["path"][1:])
    skipped = [t for t in plan["transitions"] if t["status"] == BRANCH]
    later = [
        (src, dst)
        for src, dst in GRAPH.edges
        if not src.is_initial and dst.sampling == "consecutive"
    ]
    assert {(t["from"], t["to"]) for t in skipped} == {(str(s), str(d)) for s, d in later}
    assert all(t["epochs_trained"] == 0 and t["value"] is None for t in skipped)
    assert all("branch's best first move" in t["reason"] for t in skipped)
    assert plan["cost"]["skipped"] == len(later) and plan["cost"]["failed"] == 0
    saved = full["cost"]["epochs_total"] - plan["cost"]["epochs_total"]
    trained_there = sum(
        t["epochs_trained"]
        for t in full["transitions"]
        if t["from"] != "initial" and S(t["to"]).sampling == "consecutive"
    )
    assert saved == trained_there > 0  # exactly the dropped branch's later moves


def test_a_margin_wider_than_the_gap_changes_nothing(tmp_path):
    wide = PlannerOptions(delay=3, max_epochs=20, branches=True, branch_margin=1.0)
    plan = _plan(tmp_path / "wide", wide).to_dict()
    full = _plan(tmp_path / "full", OPTIONS).to_dict()
    assert plan["cost"]["skipped"] == 0
    assert plan["cost"]["epochs_total"] == full["cost"]["epochs_total"]
    assert plan["path"] == full["path"]


@pytest.mark.parametrize("cut", [0.3, 0.7])
def test_a_resumed_plan_with_branches_is_the_uninterrupted_one(branched, tmp_path, cut):
    source, reference = branched
    progress = cut_plan(source, tmp_path / "run", cut)
    plan = untimed(_plan(tmp_path / "run", BRANCHES, progress).to_dict())
    assert plan == untimed(copy.deepcopy(reference))
    skips = [
        e for e in read_journal(tmp_path / "run" / "journal.jsonl") if e.get("reason") == BRANCH
    ]
    assert len(skips) == reference["cost"]["skipped"]  # journaled once, not again on resume


def test_the_knob_is_off_by_default_and_reaches_the_planner():
    assert not PlannerOptions().branches and not PlannerConfig().options().branches
    options = PlannerConfig(branches=True, branch_margin=0.05).options()
    assert options.branches and options.branch_margin == 0.05
    with pytest.raises(ValueError, match="branch_margin"):
        PlannerOptions(branch_margin=-0.1)
    with pytest.raises(ValidationError, match="branch_margin"):
        PlannerConfig(branch_margin=-0.1)
