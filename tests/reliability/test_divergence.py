"""Divergence: a transition whose loss turns NaN/inf (an absurd learning rate) is marked
diverged (value -inf), its checkpoints are discarded, and the plan goes on without it; a state
reached only through diverged transitions is not expanded further."""

from __future__ import annotations

import json
import math

from _opplan_configs import RECIPE, video_config, write_yaml
from _opplan_faults import run_cli

from opplan.planning import TrainingState

GOOD = TrainingState("uniform", 4, 0.05)
ABSURD = TrainingState("uniform", 4, 1e6)  # NaN loss within the first epoch
FINAL = TrainingState("uniform", 4, 0.005)


def test_a_diverging_learning_rate_is_marked_and_the_plan_continues(tiny_videos, tmp_path):
    edges = [["initial", str(GOOD)], ["initial", str(ABSURD)], [str(GOOD), str(FINAL)],
             [str(ABSURD), str(FINAL)]]  # fmt: skip
    config = video_config(tiny_videos, graph={"kind": "explicit", "edges": edges})
    path = write_yaml(tmp_path / "c.yaml", config)
    run = tmp_path / "run"
    assert run_cli(["plan", str(path), "--out", str(run)]) == 0

    plan = json.loads((run / "plan.json").read_text())
    moves = {(t["from"], t["to"]): t for t in plan["transitions"]}
    diverged = moves["initial", str(ABSURD)]
    assert diverged["status"] == "diverged"
    assert diverged["value"] is None or diverged["value"] == -math.inf
    # the state reached only through it is not expanded: its move is not trained
    after = moves[str(ABSURD), str(FINAL)]
    assert after["status"] != "finished" and after["epochs_trained"] == 0
    # the plan goes on through the sound learning rate
    assert moves["initial", str(GOOD)]["status"] == "finished"
    assert plan["best_final_state"] == str(FINAL)
    assert [step["lr"] for step in plan["path"]] == [0.05, 0.005]
    assert plan["cost"]["failed"] == 2
    # its checkpoints are discarded: none of the diverged move (or after it) is on disk
    slug = ABSURD.slug
    assert not [p for p in (run / "checkpoints").rglob("*.pt") if slug in str(p)]
    # and the report says so
    report = (run / "report" / "README.md").read_text()
    assert "diverged" in report


def test_opplan_train_stops_on_divergence_with_one_clear_line(tiny_videos, tmp_path, capfd):
    config = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    steps = [RECIPE["steps"][0], {**RECIPE["steps"][1], "lr": 1e6}]
    recipe = write_yaml(tmp_path / "r.yaml", {"steps": steps})
    run = tmp_path / "run"
    capfd.readouterr()
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(run)]
    assert run_cli(argv) == 1
    err = capfd.readouterr().err
    assert "opplan: error: training diverged (loss is" in err and "Traceback" not in err
    # the first step's epochs are kept (a resume with a fixed recipe continues from them)
    assert (run / "checkpoints" / "step0" / "e002.pt").is_file()
