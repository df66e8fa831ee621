"""Every example in examples/ runs in quick mode, plans and prints its path."""

from __future__ import annotations

import importlib.util
import json
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _main(name):
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")["main"]


def test_image_classifier_plans_over_resolution_and_lr(tmp_path, capsys):
    main = _main("image_classifier")
    plan = main(["--quick", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert str(plan.best_final_state) == "uniform 1f lr=0.01 size=16"
    assert plan.path[0].state.to_dict()["size"] == 8  # training starts at the first size
    for step in plan.path:
        assert f"{step.state}  for {step.epochs} epochs" in printed
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["best_final_state"] == "uniform 1f lr=0.01 size=16"
    assert 0.5 < plan.value <= 1.0  # four classes: well above chance (0.25)
    again = main(["--quick", "--out", str(tmp_path)])  # read back, nothing retrained
    assert json.dumps(again.to_dict()) == json.dumps(plan.to_dict())


def test_lightning_example_plans_the_same_way(tmp_path, capsys):
    if importlib.util.find_spec("lightning") is None:
        pytest.skip("lightning is not installed (pip install 'opplan[lightning]')")
    plan = _main("lightning_classifier")(["--quick", "--out", str(tmp_path)])
    assert str(plan.best_final_state) == "uniform 1f lr=0.01 size=16"
    assert f"{plan.path[-1].state}" in capsys.readouterr().out
