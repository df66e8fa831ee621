"""Executors: Ray runs transitions side by side and gives the local executor's plan; dead,
stalled and diverging workers are retried or failed without losing the plan."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest

from opplan.planning import Journal, Op, Planner, PlannerOptions, TransitionGraph, read_journal
from opplan.planning.executors import LocalExecutor
from opplan.planning.plan import PlanFailed
from opplan.planning.simulate import DefaultLandscape, SimulatedTrainer
from opplan.testing.faults import Fault, FaultyTrainer, faulty_trainer

GRAPH = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1, 0.01])
OPTIONS = PlannerOptions(delay=3, max_epochs=25, max_retries=1)
LANDSCAPE = DefaultLandscape(seed=1, noise=0.01)
FIRST = ("initial", "uniform 8f lr=0.1")
SIDE = ("uniform 8f lr=0.1", "uniform 8f lr=0.01")  # not on the chosen path


def _strip(plan: dict) -> dict:
    for key in ("wall_seconds", "compute_seconds"):
        plan["cost"].pop(key)
    for t in plan["transitions"]:
        t.pop("seconds")
    return plan


def _plan(run: Path, executor=None, trainer=None, options=OPTIONS) -> dict:
    with Journal(run / "journal.jsonl") as journal:
        plan = Planner(GRAPH, trainer, journal, options, executor=executor).run()
    return _strip(plan.to_dict())


def _local(run: Path, faults: tuple[Fault, ...] = ()) -> dict:
    trainer = FaultyTrainer(run / "ck", LANDSCAPE, faults, run / "markers")
    return _plan(run, trainer=trainer)


def _epochs_per_edge(run: Path) -> dict[tuple[str, str], list[int]]:
    seen: dict[tuple[str, str], list[int]] = {}
    for e in read_journal(run / "journal.jsonl"):
        if e["op"] == Op.EPOCH_SCORED.value:
            seen.setdefault((e["src"], e["dst"]), []).append(e["epoch"])
    return seen


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    return _local(tmp_path_factory.mktemp("local"))


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _ray_plan(run: Path, faults=(), stall_timeout=None, delay=0.0) -> dict:
    from opplan.planning.executors import RayExecutor

    factory = partial(
        faulty_trainer, str(run / "ck"), LANDSCAPE, tuple(faults), str(run / "m"), delay
    )
    with RayExecutor(factory, max_parallel=2, stall_timeout=stall_timeout) as executor:
        assert executor.max_parallel == 2
        return _plan(run, executor=executor)


# -- local: divergence -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["diverge", "nan"])
def test_a_diverged_transition_is_marked_and_the_plan_goes_on(tmp_path, reference, kind):
    plan = _local(tmp_path, (Fault(*SIDE, epoch=2, kind=kind),))
    side = next(t for t in plan["transitions"] if (t["from"], t["to"]) == SIDE)
    assert side["status"] == "diverged" and side["value"] is None
    assert side["epochs_trained"] == 1  # the diverged epoch is not recorded
    # its successor cannot start from a model that does not exist
    after = next(t for t in plan["transitions"] if t["from"] == SIDE[1])
    assert after["status"] == "unreachable" and after["epochs_trained"] == 0
    assert plan["states"][SIDE[1]]["value"] is None
    assert plan["cost"]["failed"] == 2
    # the chosen path did not use the diverged state, and is the reference's
    assert plan["path"] == reference["path"] and SIDE[1] not in [p["from"] for p in plan["path"]]
    # no checkpoint of the diverged transition is left on disk
    assert not list((tmp_path / "ck").glob("uniform-8f-lr0.1__uniform-8f-lr0.01/*"))


def test_every_final_unreachable_is_a_clear_failure(tmp_path):
    faults = tuple(Fault("initial", str(s), 1, "diverge") for s in GRAPH.successors(GRAPH.initial))
    with pytest.raises(PlanFailed, match="no final state has a model"):
        _local(tmp_path, faults)


def test_local_executor_is_the_default(tmp_path, reference):
    trainer = SimulatedTrainer(tmp_path / "ck", LANDSCAPE)
    assert _plan(tmp_path, executor=LocalExecutor(trainer)) == reference


# -- Ray ---------------------------------------------------------------------------------
def test_ray_gives_the_local_plan(tmp_path, reference, ray_instance):
    assert _ray_plan(tmp_path, delay=0.15) == reference
    # two transitions ran side by side: their epochs interleave in the journal
    spans: dict[tuple[str, str], list[int]] = {}
    for k, e in enumerate(read_journal(tmp_path / "journal.jsonl")):
        if e["op"] == Op.EPOCH_SCORED.value:
            spans.setdefault((e["src"], e["dst"]), []).append(k)
    overlaps = [
        (a, b)
        for a in spans
        for b in spans
        if a < b and min(spans[a]) < max(spans[b]) and min(spans[b]) < max(spans[a])
    ]
    assert overlaps


@pytest.mark.slow  # ~30-55 s; Ray itself stays in the default suite (the local plan)
def test_a_killed_worker_is_retried_from_its_last_epoch(tmp_path, reference, ray_instance):
    plan = _ray_plan(tmp_path, [Fault(*FIRST, epoch=4, kind="exit")])
    assert plan == reference
    assert (tmp_path / "m" / Fault(*FIRST, 4, "exit").key).read_text() == "x"
    # epochs 1..n each journaled once: the retry resumed at epoch 4, nothing redone
    epochs = _epochs_per_edge(tmp_path)[FIRST]
    assert epochs == list(range(1, len(epochs) + 1))


@pytest.mark.slow
def test_a_worker_that_keeps_dying_fails_alone(tmp_path, reference, ray_instance):
    plan = _ray_plan(tmp_path, [Fault(*SIDE, epoch=2, kind="exit", times=-1)])
    side = next(t for t in plan["transitions"] if (t["from"], t["to"]) == SIDE)
    assert side["status"] == "failed" and "2 tries" in side["reason"]
    assert (tmp_path / "m" / Fault(*SIDE, 2, "exit").key).read_text() == "xx"  # 1 + 1 retry
    # its sibling and the rest of the plan were not cancelled
    assert plan["path"] == reference["path"]
    finished = [t for t in plan["transitions"] if t["status"] == "finished"]
    assert len(finished) == len(reference["transitions"]) - 2


@pytest.mark.slow
def test_a_stalled_worker_is_killed_and_retried(tmp_path, reference, ray_instance):
    plan = _ray_plan(tmp_path, [Fault(*FIRST, epoch=3, kind="hang")], stall_timeout=4.0)
    assert plan == reference


def test_plan_json_never_holds_infinity(tmp_path):
    _local(tmp_path, (Fault(*SIDE, epoch=1, kind="diverge"),))
    text = json.dumps(_local(tmp_path / "again", (Fault(*SIDE, epoch=1, kind="diverge"),)))
    assert "Infinity" not in text and "NaN" not in text


def test_the_report_shows_failed_moves(tmp_path):
    from opplan.report.figures import write_report

    plan = _local(tmp_path, (Fault(*SIDE, epoch=2, kind="diverge"),))
    plan["cost"].update(compute_seconds=1.0, wall_seconds=2.0)
    readme = (write_report(plan, tmp_path) / "README.md").read_text()
    assert f"- {SIDE[0]} -> {SIDE[1]}: **diverged** (loss is nan at epoch 2)" in readme
    assert "**unreachable**" in readme
    assert (tmp_path / "report" / "graph.png").stat().st_size > 10_000


# -- beyond the paper: pruning -----------------------------------------------------------
@pytest.mark.slow  # ~15-20 s; planner.prune is off by default (benchmarks/pruning.py)
def test_pruning_saves_epochs_and_keeps_the_plan_on_random_instances(tmp_path):
    from opplan.planning.simulate import RandomLandscape

    graph = TransitionGraph.build("extended", ["consecutive", "uniform"], [8, 16], [0.1, 0.01])
    saved = 0
    for seed in range(2):
        plans = {}
        for prune in (False, True):
            run = tmp_path / f"{seed}-{prune}"
            trainer = SimulatedTrainer(run / "ck", RandomLandscape(seed, 0.01))
            options = PlannerOptions(delay=3, max_epochs=25, prune=prune)
            with Journal(run / "journal.jsonl") as journal:
                plans[prune] = Planner(graph, trainer, journal, options).run().to_dict()
        off, on = plans[False], plans[True]
        assert on["path"] == off["path"] and on["best_final_state"] == off["best_final_state"]
        pruned = [t for t in on["transitions"] if t["reason"].startswith("pruned")]
        for t in pruned:  # a pruned transition is a prefix of the full one and never chosen
            full = next(
                f for f in off["transitions"] if (f["from"], f["to"]) == (t["from"], t["to"])
            )
            assert t["scores"] == full["scores"][: len(t["scores"])]
            assert on["states"][t["to"]]["best_from"] != t["from"]
        saved += off["cost"]["epochs_total"] - on["cost"]["epochs_total"]
    assert saved > 0


# -- beyond the paper: racing (issue 17 item 3) ------------------------------------------
@pytest.mark.slow  # ~20-40 s; racing is off by default (tests/planning/test_racing.py)
def test_ray_gives_the_local_plan_with_racing_and_deferring(tmp_path, ray_instance):
    from opplan.planning.executors import RayExecutor
    from opplan.planning.simulate import RandomLandscape

    graph = TransitionGraph.build("extended", ["uniform"], [8, 16, 32], [0.1, 0.01, 0.001])
    landscape = RandomLandscape(seed=5, noise=0.01)  # races and a deferral (test_racing.py)
    options = PlannerOptions(max_epochs=30, rule="noise", noise=0.01, race=True, defer=True)
    plans = {}
    for kind in ("local", "ray"):
        run = tmp_path / kind
        with Journal(run / "journal.jsonl") as journal:
            if kind == "local":
                trainer = SimulatedTrainer(run / "ck", landscape)
                plan = Planner(graph, trainer, journal, options).run()
            else:
                factory = partial(faulty_trainer, str(run / "ck"), landscape, (), str(run / "m"))
                with RayExecutor(factory, max_parallel=2) as executor:
                    plan = Planner(graph, None, journal, options, executor=executor).run()
        plans[kind] = _strip(plan.to_dict())
    assert plans["ray"] == plans["local"]
    reasons = [t["reason"] for t in plans["local"]["transitions"]]
    assert any(r.startswith("raced") for r in reasons) and plans["local"]["cost"]["skipped"] == 1
