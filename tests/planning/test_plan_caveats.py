"""``plan.json``'s ``caveats``: a final model that enters its state untrained (knee 0) after a
clip-length change, with the paper's y0, is named -- its value was never measured there
(issue 20, order seed 2: value 0.744, test 48.3 %)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from opplan.planning import Journal, Planner, PlannerOptions, TransitionGraph
from opplan.planning.simulate import SimulatedTrainer
from opplan.report import caveat_lines, path_table
from opplan.report.figures import write_report

GRAPH = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1])


class LengthChangeCollapses(SimulatedTrainer):
    """initial -> 8f rises to 0.9, initial -> 16f to 0.3; fine-tuning the 8f model at 16f
    scores ``after`` from its first epoch on (``after`` < 0.9: the 8f model does not carry)."""

    after = 0.5
    top16 = 0.3

    def evaluate(self) -> float:
        assert self._dst is not None
        t = self._epoch
        if self._src.is_initial:
            top = 0.9 if self._dst.clip_length == 8 else self.top16
            return top * min(1.0, t / 8)
        if t == 0:  # the starting model scored in 16f (only with score_start)
            return self.after
        return self.after + 0.001 * t if self.after > 0.9 else self.after


def _plan(tmp_path, trainer_cls, **options):
    opts = PlannerOptions(delay=3, max_epochs=20, min_epochs_from_initial=10, **options)
    with Journal(tmp_path / "journal.jsonl") as journal:
        trainer = trainer_cls(tmp_path / "ck")
        return Planner(GRAPH, trainer, journal, opts).run().to_dict()


def test_untrained_final_after_a_length_change_is_named(tmp_path):
    plan = _plan(tmp_path, LengthChangeCollapses)
    assert [s["clip_length"] for s in plan["path"]] == [8, 16]
    assert plan["path"][-1]["epochs"] == 0  # knee 0: the 8f model is the final model
    (caveat,) = plan["caveats"]
    assert "last trained in uniform 8f lr=0.1" in caveat
    assert "enters uniform 16f lr=0.1 untrained" in caveat
    assert f"{plan['value']:.4f}" in caveat
    assert "0.500-0.500" in caveat and "planner.score_start: true" in caveat
    assert "recalibrate_bn: true" in caveat
    # shown where the user looks: the path table and the report
    console = Console(record=True, width=1000)
    for line in caveat_lines(plan):
        console.print(line)
    assert console.export_text().startswith("caveat: the final model was last trained in")
    readme = (write_report(plan, tmp_path) / "README.md").read_text()
    assert "**Caveat:** the final model was last trained" in readme
    assert json.loads(json.dumps(plan))["caveats"] == [caveat]


def test_no_caveat_when_the_start_was_scored_in_the_new_state(tmp_path):
    plan = _plan(tmp_path, LengthChangeCollapses, score_start=True)
    assert plan["path"][-1]["clip_length"] == 16
    assert plan["caveats"] == []


class LengthChangeCarries(LengthChangeCollapses):
    after = 0.95  # the 8f model improves at 16f: the final move trains


def test_no_caveat_when_the_final_move_trained(tmp_path):
    plan = _plan(tmp_path, LengthChangeCarries)
    assert plan["path"][-1]["epochs"] > 0
    assert plan["caveats"] == []


def test_older_plan_json_without_caveats_still_renders(tmp_path):
    plan = _plan(tmp_path, LengthChangeCarries)
    del plan["caveats"]
    assert caveat_lines(plan) == []
    assert path_table(plan).caption.startswith("3 transitions explored")
    assert "Caveat" not in (write_report(plan, tmp_path) / "README.md").read_text()


@pytest.mark.parametrize(
    ("after", "top16", "path", "caveat"),
    [
        (0.2, 0.3, [(8, 12), (16, 0)], True),
        (0.85, 0.3, [(8, 12), (16, 0)], True),
        (0.95, 0.3, [(8, 12), (16, 20)], False),
        (0.5, 0.99, [(16, 12)], False),  # straight to 16f: trained there
    ],
)
def test_caveat_iff_the_final_model_is_untrained_in_its_state(
    tmp_path, after, top16, path, caveat
):
    cls = type("T", (LengthChangeCollapses,), {"after": after, "top16": top16})
    plan = _plan(tmp_path, cls)
    assert [(s["clip_length"], s["epochs"]) for s in plan["path"]] == path
    assert bool(plan["caveats"]) == caveat
