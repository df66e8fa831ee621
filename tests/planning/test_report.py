from __future__ import annotations

import json

import numpy as np
import pytest

from opplan.planning import PlannerOptions, TransitionGraph
from opplan.planning.simulate import DefaultLandscape
from opplan.report.figures import curve_panels, graph_figure_data, write_report
from opplan.testing.planning import run_plan


@pytest.fixture(scope="module")
def plan_dict(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    graph = TransitionGraph.build("extended", ["consecutive", "uniform"], [8, 16], [0.1, 0.01])
    plan = run_plan(run, graph, DefaultLandscape(), PlannerOptions(delay=3, max_epochs=40))
    return json.loads(json.dumps(plan.to_dict()))


def test_graph_data_marks_exactly_the_path(plan_dict):
    data = graph_figure_data(plan_dict)
    chosen = [(a, b, e) for a, b, c, e in data.edges if c]
    assert len(chosen) == len(plan_dict["path"])
    assert [e for _, _, e in chosen] == [s["epochs"] for s in plan_dict["path"]]
    assert data.samplings == ("consecutive", "uniform")
    assert data.clip_lengths == (8, 16) and data.lrs == (0.1, 0.01)
    assert data.nodes["uniform 16f lr=0.01"] == ("uniform", 1, 1)
    assert data.values[data.best] == plan_dict["value"]


def test_curve_panels_follow_the_fits(plan_dict):
    panels = curve_panels(plan_dict)
    assert len(panels) == len(plan_dict["transitions"])
    for panel, t in zip(panels, plan_dict["transitions"], strict=True):
        np.testing.assert_allclose(panel.scores, t["scores"])
        assert panel.knee == t["knee_epoch"]
        residual = np.sqrt(np.mean((panel.fit_values - panel.scores) ** 2))
        assert residual == pytest.approx(t["fit"]["rmse"], rel=1e-6)
    assert sum(p.chosen for p in panels) == len(plan_dict["path"])


def test_report_files(plan_dict, tmp_path):
    report = write_report(plan_dict, tmp_path)
    for name in ("graph.png", "curves.png"):
        data = (report / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    text = (report / "README.md").read_text()
    assert plan_dict["best_final_state"] in text and "graph.png" in text


def test_tensorboard_scalars_per_transition(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from opplan.planning import Journal, Planner
    from opplan.planning.simulate import SimulatedTrainer
    from opplan.report.tensorboard import TensorBoardCallback

    graph = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1])
    board = TensorBoardCallback(tmp_path / "tb")
    with Journal(tmp_path / "journal.jsonl") as journal:
        plan = Planner(
            graph,
            SimulatedTrainer(tmp_path / "ck"),
            journal,
            PlannerOptions(delay=3, max_epochs=30),
            callbacks=[board],
        ).run()
    board.close()
    runs = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert len(runs) == len(plan.transitions) == 3
    first = plan.transitions[0]
    acc = EventAccumulator(
        str(tmp_path / "tb" / f"{first.src.slug}__{first.dst.slug}"),
        size_guidance={"tensors": 0, "scalars": 0},
    )
    acc.Reload()
    tag = next(t for t in acc.Tags()["tensors"] + acc.Tags()["scalars"] if t == "val/score")
    events = acc.Tensors(tag) if tag in acc.Tags()["tensors"] else acc.Scalars(tag)
    values = [
        float(e.value) if hasattr(e, "value") else float(e.tensor_proto.float_val[0])
        for e in events
    ]
    np.testing.assert_allclose(values, first.scores[1:], rtol=1e-6)
