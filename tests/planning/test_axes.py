"""Extra ordered axes of built graphs (size, ...): their moves, finals and refusals."""

from __future__ import annotations

import doctest

import pytest

import opplan.planning.axes as axes_module
from opplan.errors import ConfigError
from opplan.planning import TrainingState, TransitionGraph
from opplan.planning.axes import ExtraAxis
from opplan.testing.planning import brute_force, run_plan


def _edges(graph):
    return {(str(a), str(b)) for a, b in graph.edges}


def test_increase_only_axis_adds_one_step_up_moves_and_keeps_the_paper_graph_per_value():
    base = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])
    graph = TransitionGraph.build(
        "extended", ["uniform"], [8, 16], [0.1, 0.01], extra_axes={"size": [112, 160]}
    )
    assert len(graph.states) == 2 * len(base.states)
    edges = _edges(graph)
    for src, dst in _edges(base):
        if src != "initial":
            for size in (112, 160):  # each size carries the paper's moves
                assert (f"{src} size={size}", f"{dst} size={size}") in edges
    for state in base.states:
        assert (f"{state} size=112", f"{state} size=160") in edges
        assert (f"{state} size=160", f"{state} size=112") not in edges  # never back
    from_initial = {b for a, b in edges if a == "initial"}
    assert from_initial == {"uniform 8f lr=0.1 size=112", "uniform 16f lr=0.1 size=112"}
    assert [str(f) for f in graph.finals] == ["uniform 16f lr=0.01 size=160"]
    # 2 paper moves per size (+1 extended) plus one size step per state
    assert len(graph.edges) == 2 * len(base.edges) - 2 + len(base.states)


def test_decrease_with_lr_axis_also_steps_back_with_a_lower_lr():
    axis = ExtraAxis("size", [112, 160], decrease_with_lr=True)
    graph = TransitionGraph.build("basic", ["uniform"], [8], [0.1, 0.01], extra_axes=[axis])
    edges = _edges(graph)
    assert ("uniform 8f lr=0.1 size=160", "uniform 8f lr=0.01 size=112") in edges
    assert ("uniform 8f lr=0.01 size=160", "uniform 8f lr=0.01 size=112") not in edges
    assert len(graph.edges) == 1 + 2 + 2 + 1  # initial, lr steps, size steps, back-with-lr


def test_two_extra_axes_in_their_given_order():
    graph = TransitionGraph.build(
        "basic", ["uniform"], [8], [0.1], extra_axes={"size": [96, 128], "dropout": [0.5, 0.2]}
    )
    assert [str(f) for f in graph.finals] == ["uniform 8f lr=0.1 size=128 dropout=0.2"]
    assert len(graph.states) == 4
    for state in graph.states:
        assert TrainingState.parse(str(state)) == state


def test_the_planner_finds_the_brute_force_optimum_over_an_extra_axis(tmp_path):
    from opplan.planning import PlannerOptions
    from opplan.planning.simulate import RandomLandscape

    axis = ExtraAxis("size", [112, 160], decrease_with_lr=True)
    graph = TransitionGraph.build("basic", ["uniform"], [8], [0.1, 0.01], extra_axes=[axis])
    landscape = RandomLandscape(seed=3, noise=0.01)
    opts = PlannerOptions(delay=2, max_epochs=12, value="observed")
    plan = run_plan(tmp_path, graph, landscape, opts)
    paths = brute_force(graph, landscape, opts)
    best = max(v for v, _ in paths)
    assert plan.value == pytest.approx(best, abs=1e-12)
    assert [(s.state, s.epochs) for s in plan.path] in [p for v, p in paths if v >= best - 1e-9]


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"lr": [1, 2]}, "taken by a state field"),
        ({"si ze": [1, 2]}, "letters, digits"),
        ({"size": []}, "must not be empty"),
        ({"size": [112, 112]}, "duplicates"),
        ({"size": ["112"]}, "does not read back"),
        ({"aug": ["a b"]}, "without '='"),
        ({"flag": [True, False]}, "not a number or a word"),
        ([ExtraAxis("size", [1]), ExtraAxis("size", [2])], "given twice"),
    ],
)
def test_bad_axes_are_refused_naming_the_axis(axes, message):
    with pytest.raises(ConfigError, match=message):
        TransitionGraph.build("basic", ["uniform"], [8], [0.1], extra_axes=axes)


def test_the_module_example_runs():
    assert doctest.testmod(axes_module).failed == 0


def test_config_extra_axes_build_the_graph_and_name_a_bad_one():
    from opplan.config import dump_config, parse_config

    graph = {
        "kind": "basic",
        "samplings": ["uniform"],
        "clip_lengths": [8],
        "learning_rates": [0.1],
    }
    axis = {"name": "size", "values": [112, 160]}
    config = parse_config({"graph": {**graph, "extra_axes": [axis]}})
    assert [str(s) for s in config.graph.build().finals] == ["uniform 8f lr=0.1 size=160"]
    assert "extra_axes" in dump_config(config)
    assert "extra_axes" not in dump_config(parse_config({"graph": graph}))  # dumps as before
    with pytest.raises(ConfigError, match=r"graph: extra axis 'lr': the name is taken"):
        parse_config({"graph": {**graph, "extra_axes": [{"name": "lr", "values": [1]}]}})
    with pytest.raises(ConfigError, match=r"graph.extra_axes.0.values.0"):
        parse_config({"graph": {**graph, "extra_axes": [{"name": "s", "values": [True]}]}})
    explicit = {"kind": "explicit", "edges": [["initial", "uniform 8f lr=0.1"]]}
    with pytest.raises(ConfigError, match="extra_axes: not used with kind 'explicit'"):
        parse_config({"graph": {**explicit, "extra_axes": [axis]}})


def test_the_report_gives_each_extra_value_its_column_and_the_path_its_axis(tmp_path):
    from opplan.planning import PlannerOptions
    from opplan.planning.simulate import RandomLandscape
    from opplan.report.figures import graph_figure_data, write_report

    graph = TransitionGraph.build(
        "basic", ["uniform"], [8, 16], [0.1], extra_axes={"size": [112, 160]}
    )
    opts = PlannerOptions(delay=2, max_epochs=8)
    plan = run_plan(tmp_path, graph, RandomLandscape(seed=1, noise=0.0), opts).to_dict()
    data = graph_figure_data(plan)
    assert data.columns == ("8f\nsize=112", "8f\nsize=160", "16f\nsize=112", "16f\nsize=160")
    assert data.nodes["uniform 16f lr=0.1 size=112"] == ("uniform", 2, 0)
    assert len(set(data.nodes.values())) == 4  # no two states drawn on one spot
    readme = (write_report(plan, tmp_path) / "README.md").read_text()
    assert (
        "| step | sampling | clip | lr | size | epochs | value |\n|---|---|---|---|---|---|---|"
        in (readme)
    )
    assert "| 160 |" in readme
    from opplan.report import path_table

    table = path_table(plan)
    assert [c.header for c in table.columns][4] == "size"
    assert list(table.columns[4].cells) == [str(s["size"]) for s in plan["path"]]
