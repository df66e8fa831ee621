"""Racing and deferring moves (issue 17 item 3, beyond the paper): deterministic decisions
that replay exactly, never drop a clearly better move, and leave the paper rule unchanged."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan.planning import (
    Journal,
    Planner,
    PlannerOptions,
    TrainingState,
    TransitionGraph,
)
from opplan.planning.progress import TransitionRecord
from opplan.planning.racing import (
    RACED,
    abandon_at_best,
    is_rung,
    move_kind,
    race_losers,
)
from opplan.planning.simulate import CurveParams, RandomLandscape, SimulatedTrainer
from opplan.planning.simulate import simulated_score as score_at
from opplan.testing.planning import cut_plan, run_plan, untimed

S = TrainingState.parse
GRAPH = TransitionGraph.build("extended", ["uniform"], [8, 16, 32], [0.1, 0.01, 0.001])
LANDSCAPE = RandomLandscape(seed=5, noise=0.01)  # racing and deferral both act on it
NOISE = PlannerOptions(max_epochs=30, rule="noise", noise=0.01)
RACE = PlannerOptions(max_epochs=30, rule="noise", noise=0.01, race=True, defer=True)


@pytest.fixture(scope="module")
def raced(tmp_path_factory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("raced")
    options = PlannerOptions(**{**RACE.to_dict(), "keep_checkpoints": True})
    plan = run_plan(run, GRAPH, LANDSCAPE, options)
    return run, untimed(plan.to_dict())


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> dict:
    return untimed(run_plan(tmp_path_factory.mktemp("full"), GRAPH, LANDSCAPE, NOISE).to_dict())


# -- rungs and kinds -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("first", "growth", "rungs"),
    [(5, 2.0, [5, 10, 20]), (4, 1.5, [4, 6, 9, 14]), (3, 1.0, list(range(3, 21)))],
)
def test_rungs(first, growth, rungs):
    assert [t for t in range(1, 21) if is_rung(t, first, growth)] == [r for r in rungs if r <= 20]


def test_bad_rungs_are_refused():
    with pytest.raises(ValueError, match="race_rung and race_growth"):
        PlannerOptions(race=True, race_rung=0)
    with pytest.raises(ValueError, match="race_growth"):
        PlannerOptions(race_growth=0.5)


def test_move_kinds():
    a, b = S("uniform 8f lr=0.1"), S("uniform 16f lr=0.1")
    assert move_kind(a, b) == (1, 0, False, False)
    assert move_kind(S("uniform 16f lr=0.1"), S("uniform 8f lr=0.01")) == (-1, -1, False, False)
    assert move_kind(TrainingState.initial(), a) == ("scratch",)


# -- the race decision never drops a clearly better move ----------------------------------
@dataclass(frozen=True)
class TwoMoves:
    params: dict[str, CurveParams]
    seed: int
    noise: float = 0.01

    def curve(self, src: TrainingState, dst: TrainingState) -> CurveParams:
        return self.params[src.sampling]


DST = S("uniform 32f lr=0.01")
SOURCES = {"a": S("consecutive 16f lr=0.01"), "b": S("uniform 16f lr=0.1")}  # two kinds


def _move(land: TwoMoves, src: TrainingState, y0: float, options: PlannerOptions, rung: int):
    """The full move's value, and its record as the race sees it at ``rung``."""
    stopper = options.stopper(src, y0)
    record = None
    while not stopper.stopped:
        stopper.observe(score_at(land, src, DST, y0, stopper.epoch + 1))
        if stopper.epoch == rung and not stopper.stopped:
            record = TransitionRecord(src, DST, y0, list(stopper.scores), [], list(stopper.fits))
    value = stopper.value if stopper.from_fit else stopper.scores[stopper.knee_epoch]
    if record is None:  # ended before the rung: seen by its value
        record = TransitionRecord(src, DST, y0, list(stopper.scores), [], list(stopper.fits))
        record.finished, record.value, record.reason = True, value, stopper.reason
    return value, record


curves = st.builds(CurveParams, st.floats(0.05, 0.65), st.floats(0.1, 0.9), st.floats(1e-4, 1e-2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pa=curves,
    pb=curves,
    y0=st.tuples(st.floats(0.3, 0.8), st.floats(0.3, 0.8)),
    seed=st.integers(0, 10**6),
    rule=st.sampled_from(["noise", "paper"]),
    rung=st.sampled_from([5, 10]),
)
def test_racing_never_drops_the_move_the_full_plan_picks(pa, pb, y0, seed, rule, rung):
    land = TwoMoves({"consecutive": pa, "uniform": pb}, seed)
    options = PlannerOptions(max_epochs=60, delay=3, rule=rule, noise=0.01, race=True)
    margin, separation = options.race_margin, 0.05  # 0.05 = five noise stds
    moves = {
        (src, DST): _move(land, src, y, options, rung)
        for src, y in zip(SOURCES.values(), y0, strict=True)
    }
    paused = [e for e, (_, r) in moves.items() if not r.finished]
    losers = race_losers({e: r for e, (_, r) in moves.items()}, paused, rung, margin)
    (ea, (va, _)), (eb, (vb, _)) = moves.items()
    if va > vb + separation:
        assert ea not in losers
    if vb > va + separation:
        assert eb not in losers
    assert len(losers) < 2  # the leader never loses


def test_a_move_from_scratch_is_never_raced_out():
    """A from-scratch curve still flat at chance against a finished fine-tuning sibling: the
    fine-tuning move would drop it (bound far below), the initial one takes no part."""
    dst = S("uniform 16f lr=0.1")
    options = PlannerOptions(max_epochs=30, rule="noise", noise=0.01, race=True)
    records = {}
    for src, scores in (
        (TrainingState.initial(), [0.1 + 0.001 * t for t in range(1, 11)]),
        (S("uniform 8f lr=0.01"), [0.0 + 0.001 * t for t in range(1, 11)]),
    ):
        stopper = options.stopper(src, 0.0)
        for y in scores:
            stopper.observe(y)
        records[src, dst] = TransitionRecord(
            src, dst, 0.0, list(stopper.scores), [], list(stopper.fits)
        )
    leader = TransitionRecord(S("uniform 16f lr=0.01"), dst, 0.7, [0.7] * 8, [], [])
    leader.finished, leader.value, leader.reason = True, 0.75, "knee"
    siblings = {**records, (leader.src, dst): leader}
    losers = race_losers(siblings, list(records), 10, options.race_margin)
    assert list(losers) == [(S("uniform 8f lr=0.01"), dst)]  # the fine-tuning one only


def test_an_abandoned_move_keeps_its_best_fitted_epoch_so_far():
    options = PlannerOptions(max_epochs=60, rule="noise", noise=0.01)
    stopper = options.stopper(TrainingState.initial(), 0.0)
    for t in range(1, 9):
        stopper.observe(0.5 * (1 - math.exp(-0.3 * t)))
    abandon_at_best(stopper, f"{RACED}: test")
    assert stopper.stopped and stopper.knee_epoch == 8  # still rising: its last epoch
    assert stopper.value == pytest.approx(stopper.last_fit.predict([8.0])[0])
    assert stopper.value < stopper.last_fit.peak  # not the extrapolated peak


# -- plans ---------------------------------------------------------------------------------
def test_racing_and_deferring_keep_the_plan_and_save_epochs(raced, full):
    _, plan = raced
    assert plan["path"] == full["path"] and plan["value"] == full["value"]
    assert plan["cost"]["epochs_total"] < 0.9 * full["cost"]["epochs_total"]
    by_status = {}
    for t in plan["transitions"]:
        by_status.setdefault(t["status"], []).append(t)
    (deferred,) = by_status["deferred"]  # skipped, visible, with its reason
    assert deferred["epochs_trained"] == 0 and deferred["value"] is None
    assert deferred["reason"].startswith("bound ") and "in hand" in deferred["reason"]
    assert plan["cost"]["skipped"] == 1 and plan["cost"]["failed"] == 0
    raced_moves = [t for t in by_status["finished"] if t["reason"].startswith(RACED)]
    assert len(raced_moves) >= 3
    for t in raced_moves:  # a prefix of the full move, never the chosen one
        same = next(f for f in full["transitions"] if (f["from"], f["to"]) == (t["from"], t["to"]))
        assert t["scores"] == same["scores"][: len(t["scores"])]
        assert t["epochs_trained"] < same["epochs_trained"]
        assert plan["states"][t["to"]]["best_from"] != t["from"]


@pytest.mark.parametrize("cut", [0.15, 0.4, 0.6, 0.85])
def test_a_resumed_raced_plan_is_the_uninterrupted_one(tmp_path, raced, cut):
    source, reference = raced
    run = tmp_path / "run"
    progress = cut_plan(source, run, cut)
    options = PlannerOptions(**{**RACE.to_dict(), "keep_checkpoints": True})
    with Journal(run / "journal.jsonl") as journal:
        trainer = SimulatedTrainer(run / "ck", LANDSCAPE)
        plan = Planner(GRAPH, trainer, journal, options, progress=progress).run()
    assert untimed(plan.to_dict()) == reference


def test_with_the_knobs_off_the_paper_plan_is_unchanged(tmp_path):
    assert not PlannerOptions().race and not PlannerOptions().defer
    paper = PlannerOptions(delay=3, max_epochs=25)
    graph = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])
    land = RandomLandscape(seed=3)
    off = untimed(run_plan(tmp_path / "off", graph, land, paper).to_dict())
    # racing from a rung past the budget takes no decision: the same plan, event for event
    never = PlannerOptions(delay=3, max_epochs=25, race=True, race_rung=26, defer=False)
    assert untimed(run_plan(tmp_path / "never", graph, land, never).to_dict()) == off
    assert off["cost"]["skipped"] == 0
    assert all(not t["reason"].startswith(RACED) for t in off["transitions"])
    json.dumps(off)


def test_the_yaml_knobs_reach_the_planner():
    from pydantic import ValidationError

    from opplan.config import PlannerConfig

    knobs = {"race": True, "race_rung": 4, "race_growth": 1.5, "defer": True}
    options = PlannerConfig(**knobs, race_margin=0.02).options()
    assert (options.race, options.race_rung, options.race_growth) == (True, 4, 1.5)
    assert options.defer and options.race_margin == 0.02 and options.defer_margin == 0.01
    assert not PlannerConfig().options().race and not PlannerConfig().options().defer
    with pytest.raises(ValidationError, match="race_growth"):
        PlannerConfig(race_growth=0.5)


def test_the_report_lists_a_deferred_move_with_its_reason(tmp_path, raced):
    from opplan.report.figures import write_report

    _, plan = raced
    plan = json.loads(json.dumps(plan))
    plan["cost"].update(compute_seconds=1.0, wall_seconds=2.0)
    readme = (write_report(plan, tmp_path) / "README.md").read_text()
    (deferred,) = [t for t in plan["transitions"] if t["status"] == "deferred"]
    assert f"- {deferred['from']} -> {deferred['to']}: **deferred** (bound " in readme
