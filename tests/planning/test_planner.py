from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan.planning import (
    Journal,
    Planner,
    PlannerOptions,
    PlanState,
    TrainingState,
    TransitionGraph,
    read_journal,
)
from opplan.planning.simulate import DefaultLandscape, RandomLandscape, SimulatedTrainer
from opplan.testing.planning import brute_force, run_plan

S = TrainingState
FAST = PlannerOptions(delay=3, max_epochs=25, value="observed")


def random_graph(kind, n_len, n_lr, two):
    return TransitionGraph.build(
        kind,
        ["consecutive", "uniform"] if two else ["uniform"],
        [8 * 2**i for i in range(n_len)],
        [0.1 / 10**i for i in range(n_lr)],
    )


instances = st.tuples(
    st.sampled_from(["basic", "extended"]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.booleans(),
    st.integers(0, 10**6),
)


def check_against_brute_force(instance):
    kind, n_len, n_lr, two, seed = instance
    if n_len == n_lr == 1:
        n_len = 2
    graph = random_graph(kind, n_len, n_lr, two)
    landscape = RandomLandscape(seed=seed, noise=0.01)
    with tempfile.TemporaryDirectory() as tmp:
        plan = run_plan(Path(tmp), graph, landscape, FAST)
    paths = brute_force(graph, landscape, FAST)
    best_value = max(v for v, _ in paths)
    assert plan.value == pytest.approx(best_value, abs=1e-12)
    winners = [p for v, p in paths if v >= best_value - 1e-9]
    assert [(s.state, s.epochs) for s in plan.path] in winners


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances)
def test_planner_matches_brute_force_over_all_paths(instance):
    check_against_brute_force(instance)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances)
def test_planner_matches_brute_force_many_instances(instance):
    check_against_brute_force(instance)


@pytest.mark.slow  # ~16 s; the brute-force path test stays in the default suite
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["basic", "extended"]))
def test_fitted_values_reach_the_brute_force_optimum_without_noise(seed, kind):
    graph = random_graph(kind, 2, 2, False)
    landscape = RandomLandscape(seed=seed, noise=0.0)
    opts = PlannerOptions(delay=3, max_epochs=25, value="fitted")
    with tempfile.TemporaryDirectory() as tmp:
        plan = run_plan(Path(tmp), graph, landscape, opts)
    best_value = max(v for v, _ in brute_force(graph, landscape, opts))
    assert plan.value == pytest.approx(best_value, abs=1e-6)


def test_default_landscape_plan_structure(tmp_path):
    graph = TransitionGraph.build("extended", ["consecutive", "uniform"], [8, 16], [0.1, 0.01])
    plan = run_plan(tmp_path, graph, DefaultLandscape(), PlannerOptions(delay=4, max_epochs=60))
    data = plan.to_dict()
    assert len(data["transitions"]) == len(graph.edges) == 14
    assert data["cost"]["epochs_total"] == sum(t["epochs_trained"] for t in data["transitions"])
    assert data["best_final_state"] in {str(f) for f in graph.finals}
    path = data["path"]
    assert path[0]["from"] == "initial" and path[-1] == {
        **TrainingState.parse(data["best_final_state"]).to_dict(),
        "epochs": path[-1]["epochs"],
        "value": data["value"],
        "from": path[-1]["from"],
    }
    for a, b in itertools.pairwise(path):
        assert b["from"] == str(S(a["sampling"], a["clip_length"], a["lr"]))
    for t in data["transitions"]:
        assert t["status"] == "finished"
        assert len(t["scores"]) == t["epochs_trained"] + 1
        assert t["observed"] == t["scores"][t["knee_epoch"]]
        assert t["fit"]["family"] == "exponential" and t["fit"]["r2"] > 0.5
    # every state keeps the best of its incoming transitions (Eq. 2)
    for name, st_rec in data["states"].items():
        incoming = [t["value"] for t in data["transitions"] if t["to"] == name]
        assert st_rec["value"] == max(incoming)
    # once a transition ends only its knee and its latest epoch are kept (§3.3 + issue 7)
    remaining = sorted(
        p.relative_to(tmp_path / "ck").as_posix() for p in (tmp_path / "ck").rglob("*.json")
    )
    kept = {
        f"{S.parse(t['from']).slug}__{S.parse(t['to']).slug}/e{epoch:03d}.json"
        for t in data["transitions"]
        for epoch in (t["knee_epoch"], t["epochs_trained"])
    }
    assert remaining == sorted(kept)
    assert {plan.states[f].checkpoint + ".json" for f in graph.finals} <= kept


class ZeroEpochLandscape:
    """Lowering the lr from 16f never helps: the knee of that move is epoch 0."""

    seed, noise = 0, 0.0

    def curve(self, src, dst):
        from opplan.planning.simulate import CurveParams

        if not src.is_initial and dst.lr < src.lr and dst.clip_length == 16:
            return CurveParams(0.0, 0.5, 1e-2)  # only over-fitting: best at epoch 0
        return CurveParams(0.4, 0.4, 1e-3)


def test_zero_epoch_steps_collapse_in_the_recipe(tmp_path):
    graph = TransitionGraph.from_edges(
        [
            ["initial", "uniform 16f lr=0.1"],
            ["uniform 16f lr=0.1", "uniform 16f lr=0.01"],
            ["uniform 16f lr=0.01", "uniform 32f lr=0.01"],
        ]
    )
    plan = run_plan(tmp_path, graph, ZeroEpochLandscape(), PlannerOptions(delay=3, max_epochs=30))
    assert [s.epochs for s in plan.path][1] == 0
    recipe = plan.recipe()
    assert [(r["clip_length"], r["lr"]) for r in recipe] == [(16, 0.1), (32, 0.01)]
    plan.write(tmp_path)
    assert "epochs: 0" not in (tmp_path / "recipe.yaml").read_text()


class Interrupt(Exception):
    pass


class CrashingTrainer(SimulatedTrainer):
    def __init__(self, *args, crash_after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.epochs_left = crash_after

    def train_epoch(self):
        if self.epochs_left == 0:
            raise Interrupt
        self.epochs_left -= 1
        return super().train_epoch()


def strip_time(plan_dict):
    plan_dict["cost"].pop("wall_seconds"), plan_dict["cost"].pop("compute_seconds")
    for t in plan_dict["transitions"]:
        t.pop("seconds")
    return plan_dict


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.97])
def test_resume_after_a_crash_gives_the_identical_plan(tmp_path, fraction):
    graph = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])
    landscape = RandomLandscape(seed=5)
    opts = PlannerOptions(delay=3, max_epochs=25)
    reference = strip_time(run_plan(tmp_path / "ref", graph, landscape, opts).to_dict())
    crash_after = int(fraction * reference["cost"]["epochs_total"])

    run = tmp_path / "run"
    trainer = CrashingTrainer(run / "ck", landscape, crash_after=crash_after)
    with Journal(run / "journal.jsonl") as journal, pytest.raises(Interrupt):
        Planner(graph, trainer, journal, opts).run()
    progress = PlanState.replay(read_journal(run / "journal.jsonl"))
    assert sum(t.epochs_trained for t in progress.transitions.values()) == crash_after
    trained_before = crash_after

    class CountingTrainer(SimulatedTrainer):
        epochs = 0

        def train_epoch(self):
            CountingTrainer.epochs += 1
            return super().train_epoch()

    with Journal(run / "journal.jsonl") as journal:
        plan = Planner(
            graph, CountingTrainer(run / "ck", landscape), journal, opts, progress=progress
        ).run()
    assert strip_time(plan.to_dict()) == reference
    # finished transitions and finished epochs are never trained again
    assert trained_before + CountingTrainer.epochs == reference["cost"]["epochs_total"]


def test_finished_plan_is_returned_without_training(tmp_path):
    graph = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1])
    first = run_plan(tmp_path, graph, RandomLandscape(1), FAST)
    before = (tmp_path / "journal.jsonl").read_bytes()
    progress = PlanState.replay(read_journal(tmp_path / "journal.jsonl"))
    with Journal(tmp_path / "journal.jsonl") as journal:
        again = Planner(
            graph, SimulatedTrainer(tmp_path / "ck"), journal, FAST, progress=progress
        ).run()
    assert again.to_dict() == first.to_dict()
    assert (tmp_path / "journal.jsonl").read_bytes() == before


def test_journal_events_in_order(tmp_path):
    graph = TransitionGraph.build("basic", ["uniform"], [8], [0.1, 0.01])
    run_plan(tmp_path, graph, RandomLandscape(2), FAST)
    ops = [e["op"] for e in read_journal(tmp_path / "journal.jsonl")]
    assert ops[0] == "plan_started" and ops[-1] == "plan_finished"
    assert ops.count("transition_started") == ops.count("transition_finished") == 2
    assert ops.count("state_resolved") == 2
    json.dumps(read_journal(tmp_path / "journal.jsonl"))  # plain JSON throughout


def test_min_epochs_from_initial_applies_to_training_from_scratch_only(tmp_path):
    graph = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1, 0.01])
    opts = PlannerOptions(delay=2, max_epochs=40, min_epochs_from_initial=15)
    plan = run_plan(tmp_path, graph, RandomLandscape(seed=11, noise=0.0), opts)
    from_scratch = [t for t in plan.transitions if t.src.is_initial]
    later = [t for t in plan.transitions if not t.src.is_initial]
    assert from_scratch and all(t.epochs_trained >= 15 for t in from_scratch)
    assert any(t.epochs_trained < 15 for t in later)


def test_min_rise_from_initial_applies_to_training_from_scratch_only():
    opts = PlannerOptions(delay=2, max_epochs=40, min_rise_from_initial=3.0)
    initial = TransitionGraph.build("basic", ["uniform"], [8], [0.1]).initial
    later = next(iter(TransitionGraph.build("basic", ["uniform"], [8], [0.1]).states))
    assert opts.stopper(initial, 0.0).min_rise == 3.0
    assert opts.stopper(later, 0.5).min_rise == 0.0
    assert PlannerOptions().stopper(initial, 0.0).min_rise == 0.0  # off by default
