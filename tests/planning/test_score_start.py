"""``planner.score_start`` (beyond the paper, issue 17 item 1): a move's y0 is its starting
model scored in the new state, journaled, replayed exactly; off, y0 is the source's value."""

from __future__ import annotations

import copy

import pytest

from opplan.config import PlannerConfig
from opplan.planning import (
    Journal,
    Planner,
    PlannerOptions,
    TrainingState,
    TransitionGraph,
    read_journal,
)
from opplan.planning.simulate import RandomLandscape, SimulatedTrainer
from opplan.testing.planning import cut_plan, untimed

GRAPH = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])
LANDSCAPE = RandomLandscape(seed=4, noise=0.0)
DROP = 0.2  # what a clip-length change costs the starting model, before any step


class ClipChangeCosts(SimulatedTrainer):
    """The simulated trainer, except that a model scored in another clip length than the one
    it was trained at (right after ``start``) loses ``DROP``."""

    def evaluate(self) -> float:
        score = super().evaluate()
        fresh = self._epoch == 0 and not self._src.is_initial
        assert self._dst is not None
        if fresh and self._dst.clip_length != self._src.clip_length:
            return score - DROP
        return score


def _plan(run, options, progress=None):
    with Journal(run / "journal.jsonl") as journal:
        trainer = ClipChangeCosts(run / "ck", LANDSCAPE)
        return Planner(GRAPH, trainer, journal, options, progress=progress).run()


def _starts(run):
    return {
        (e["src"], e["dst"]): e["y0"]
        for e in read_journal(run / "journal.jsonl")
        if e["op"] == "transition_started"
    }


SCORED = PlannerOptions(delay=3, max_epochs=20, score_start=True, keep_checkpoints=True)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    run = tmp_path_factory.mktemp("scored")
    return run, _plan(run, SCORED).to_dict()


def test_y0_is_the_start_scored_in_the_new_state(scored, tmp_path):
    run, plan = scored
    starts = _starts(run)
    off = _plan(tmp_path, PlannerOptions(delay=3, max_epochs=20))
    paper = _starts(tmp_path)
    changes = 0
    for (src, dst), y0 in starts.items():
        if src == "initial":
            assert y0 == 0.0
            continue
        value = plan["states"][src]["observed"]
        if TrainingState.parse(src).clip_length != TrainingState.parse(dst).clip_length:
            assert y0 == pytest.approx(value - DROP)  # the drop is the move's y0 now
            changes += 1
        else:
            assert y0 == pytest.approx(value)
    assert changes >= 2
    # off (the paper): y0 is the source's value in its own state, the drop is invisible
    off_plan = off.to_dict()
    for (src, _), y0 in paper.items():
        if src != "initial":
            assert y0 == off_plan["states"][src]["observed"]


@pytest.mark.parametrize("cut", [0.3, 0.7])
def test_a_resumed_plan_with_scored_starts_is_the_uninterrupted_one(scored, tmp_path, cut):
    source, reference = scored
    progress = cut_plan(source, tmp_path / "run", cut)
    plan = untimed(_plan(tmp_path / "run", SCORED, progress).to_dict())
    assert plan == untimed(copy.deepcopy(reference))


def test_the_knob_is_off_by_default_and_reaches_the_planner():
    assert not PlannerOptions().score_start and not PlannerConfig().options().score_start
    assert PlannerConfig(score_start=True).options().score_start
