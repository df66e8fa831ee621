"""Knee fits in the worker (issue 17 item 4): the stopper travels with each epoch, is
observed where the epoch ran, and comes back with the score; the plan is the driver-fit one.
(The Ray executor fits in its actors by default: tests/planning/test_executors.py's
``test_ray_gives_the_local_plan`` runs that path.)"""

from __future__ import annotations

import pickle

import pytest

from opplan.planning import (
    Journal,
    Planner,
    PlannerOptions,
    PlanState,
    TransitionGraph,
    read_journal,
)
from opplan.planning.executors import LocalExecutor, TransitionWorker
from opplan.planning.noise_rule import NoiseAwareStopper
from opplan.planning.simulate import RandomLandscape, SimulatedTrainer
from opplan.planning.state import TrainingState
from opplan.testing.planning import run_plan

GRAPH = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])


def strip_time(plan):
    plan["cost"] = {k: v for k, v in plan["cost"].items() if "seconds" not in k}
    for t in plan["transitions"]:
        t.pop("seconds")
    return plan


class Copying(LocalExecutor):
    """Ships the stopper through pickle, as Ray does: the worker never shares the driver's."""

    def submit(self, edge, op, *args):
        super().submit(edge, op, *pickle.loads(pickle.dumps(args)))


@pytest.mark.parametrize(
    "opts",
    [
        PlannerOptions(delay=3, max_epochs=25),
        PlannerOptions(max_epochs=25, rule="noise", noise=0.01, prune=True),
    ],
    ids=["paper", "noise+prune"],
)
def test_fits_in_the_worker_give_the_driver_fit_plan(tmp_path, opts):
    landscape = RandomLandscape(seed=4, noise=0.01)
    reference = strip_time(run_plan(tmp_path / "ref", GRAPH, landscape, opts).to_dict())
    run = tmp_path / "worker"
    executor = Copying(SimulatedTrainer(run / "ck", landscape), fits_in_worker=True)
    with Journal(run / "journal.jsonl") as journal:
        plan = Planner(GRAPH, None, journal, opts, executor=executor).run()
    assert strip_time(plan.to_dict()) == reference
    # and the journal replays to the same plan (resume of a finished plan trains nothing)
    progress = PlanState.replay(read_journal(run / "journal.jsonl"))
    with Journal(run / "journal.jsonl") as journal:
        again = Planner(GRAPH, SimulatedTrainer(run / "ck", landscape), journal, opts,
                        progress=progress).run()  # fmt: skip
    assert strip_time(again.to_dict()) == reference


def test_the_worker_observes_a_copy_and_ships_it_back(tmp_path):
    trainer = SimulatedTrainer(tmp_path, RandomLandscape(seed=1, noise=0.01))
    worker = TransitionWorker(trainer)
    state = TrainingState("uniform", 8, 0.1)
    worker.start(state, None, "e000")
    stopper = NoiseAwareStopper(0.0, max_epochs=30, noise=0.01)
    sent = pickle.loads(pickle.dumps(stopper))
    result = worker.epoch("e001", sent)
    assert result.stopper is sent and result.stopper.scores == [0.0, result.score]
    assert stopper.scores == [0.0]  # the driver's copy is untouched until it adopts the result
    assert worker.epoch("e002").stopper is None  # executors without fits_in_worker
