from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from opplan.cli import main

SMALL = {
    "name": "small",
    "graph": {
        "kind": "extended",
        "samplings": ["consecutive", "uniform"],
        "clip_lengths": [8, 16],
        "learning_rates": [0.1, 0.01],
    },
    "planner": {"delay": 3, "max_epochs": 30},
    "trainer": {"kind": "simulated", "landscape": "random", "seed": 3},
}


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def without_time(plan: dict) -> dict:
    plan["cost"].pop("wall_seconds"), plan["cost"].pop("compute_seconds")
    for t in plan["transitions"]:
        t.pop("seconds")
    return plan


def test_plan_writes_plan_json_and_recipe(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", SMALL)
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 0
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert set(plan) >= {"best_final_state", "path", "value", "transitions", "states", "cost"}
    assert set(plan["path"][0]) >= {"sampling", "clip_length", "lr", "epochs"}
    assert set(plan["transitions"][0]) >= {
        "from",
        "to",
        "epochs_trained",
        "scores",
        "fit",
        "knee_epoch",
        "value",
        "status",
    }
    assert set(plan["transitions"][0]["fit"]) >= {"family", "params", "rmse", "r2"}
    assert set(plan["cost"]) >= {"epochs_total", "wall_seconds"}
    recipe = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert recipe["steps"] == [
        {k: s[k] for k in ("sampling", "clip_length", "lr", "epochs")}
        for s in plan["path"]
        if s["epochs"] > 0
    ]
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["planner"]["delay"] == 3 and saved["planner"]["family"] == "exponential"
    out = capsys.readouterr().out
    assert "Optimal path" in out and plan["best_final_state"] in out

    # the same run again needs --resume; with it, nothing is trained again
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["plan", str(config), "--out", str(tmp_path / "run"), "--resume"]) == 0
    assert json.loads((tmp_path / "run" / "plan.json").read_text()) == plan
    assert main(["show", str(tmp_path / "run")]) == 0
    assert "Explored transitions" in capsys.readouterr().out


def test_a_different_config_in_an_existing_run_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["plan", str(write_config(tmp_path / "a.yaml", SMALL)), "--out", str(run)]) == 0
    other = write_config(tmp_path / "b.yaml", {**SMALL, "planner": {"delay": 4}})
    before = (run / "journal.jsonl").read_bytes()
    for extra in ([], ["--resume"]):
        assert main(["plan", str(other), "--out", str(run), *extra]) == 2
        assert "different config" in capsys.readouterr().err
    assert (run / "journal.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    "change, message",
    [
        ({"planner": {"delay": -1}}, "planner.delay"),
        ({"planner": {"familly": "power"}}, "planner.familly: Extra inputs"),
        ({"planner": {"family": "cubic"}}, "planner.family"),
        ({"planner": {"min_rise_from_initial": -1}}, "planner.min_rise_from_initial"),
        (
            {"graph": {"kind": "explicit", "edges": [["initial", "uniform 8 lr=1"]]}},
            "graph: edges",
        ),
        ({"trainer": {"kind": "gpu"}}, "trainer"),
    ],
)
def test_bad_config_exits_2_naming_the_field_before_any_work(tmp_path, capsys, change, message):
    config = write_config(tmp_path / "bad.yaml", {**SMALL, **change})
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("graph:\n  kind: basic\n  samplings: [uniform\n")
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "bad.yaml:" in capsys.readouterr().err


def test_shipped_configs_are_valid():
    from opplan.config import load_config

    root = Path(__file__).parents[2] / "configs"
    for name in ("demo.yaml", "simulated.yaml"):
        load_config(root / name)


def test_planning_never_imports_torch(tmp_path):
    config = write_config(tmp_path / "c.yaml", SMALL)
    code = (
        "import sys\n"
        "import opplan.planning, opplan.planning.simulate\n"
        "from opplan.cli import main\n"
        f"assert main(['plan', {str(config)!r}, '--out', {str(tmp_path / 'run')!r}]) == 0\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _kill_and_resume(tmp_path: Path, kills: int, seed: int) -> None:
    data = {**SMALL, "trainer": {**SMALL["trainer"], "epoch_delay": 0.01}}
    config = write_config(tmp_path / "c.yaml", data)
    ref = tmp_path / "ref"
    assert main(["plan", str(config), "--out", str(ref)]) == 0
    reference = without_time(json.loads((ref / "plan.json").read_text()))

    run = tmp_path / "run"
    rng = random.Random(seed)
    cmd = [sys.executable, "-m", "opplan", "plan", str(config), "--out", str(run), "--resume"]
    env = {**os.environ, "COLUMNS": "120"}
    for _ in range(kills):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (run / "plan.json").exists():
            break
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert without_time(json.loads((run / "plan.json").read_text())) == reference


@pytest.mark.slow  # ~15-25 s; kill -9 and resume stay in tests/reliability/test_crash.py
def test_kill_9_and_resume_gives_the_identical_plan(tmp_path):
    _kill_and_resume(tmp_path, kills=3, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_kill_9_many_times(tmp_path, seed):
    _kill_and_resume(tmp_path, kills=10, seed=seed)


def test_ray_address_without_the_ray_executor_exits_2(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", SMALL)
    run = tmp_path / "run"
    assert main(["plan", str(config), "--out", str(run), "--ray-address", "auto"]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.slow
def test_ray_driver_killed_then_resumed_gives_the_local_plan(tmp_path):
    """``--executor ray``: kill -9 the driver twice mid-plan, resume (on Ray, then locally)."""
    pytest.importorskip("ray")
    data = {**SMALL, "trainer": {**SMALL["trainer"], "epoch_delay": 0.05}}
    config = write_config(tmp_path / "c.yaml", data)
    ref = tmp_path / "ref"
    assert main(["plan", str(config), "--out", str(ref)]) == 0
    reference = without_time(json.loads((ref / "plan.json").read_text()))
    run = tmp_path / "run"
    base = [sys.executable, "-m", "opplan", "plan", str(config), "--out", str(run), "--resume"]
    ray_cmd = [*base, "--executor", "ray", "--max-parallel", "2"]
    env = {**os.environ, "COLUMNS": "120"}
    for _ in range(2):
        proc = subprocess.Popen(
            ray_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        journal = run / "journal.jsonl"
        deadline = time.monotonic() + 120
        start = len(journal.read_text().splitlines()) if journal.exists() else 0
        while time.monotonic() < deadline:  # kill once this session has scored some epochs
            if journal.exists() and len(journal.read_text().splitlines()) > start + 15:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (run / "plan.json").exists()
    done = subprocess.run(ray_cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert without_time(json.loads((run / "plan.json").read_text())) == reference
    again = subprocess.run(base, capture_output=True, text=True, env=env)  # finished: a no-op
    assert again.returncode == 0, again.stderr


@pytest.mark.slow  # ~13 s: a whole plan for one flag
def test_keep_checkpoints_keeps_every_epoch(tmp_path):
    config = write_config(tmp_path / "c.yaml", SMALL)
    runs = {}
    for keep in (False, True):
        run = tmp_path / f"run-{keep}"
        flags = ["--keep-checkpoints"] if keep else []
        assert main(["plan", str(config), "--out", str(run), *flags]) == 0
        plan = json.loads((run / "plan.json").read_text())
        runs[keep] = {p.relative_to(run).as_posix() for p in (run / "checkpoints").rglob("*.json")}
    every = sum(t["epochs_trained"] + 1 for t in plan["transitions"])
    assert len(runs[True]) == every
    # by default: the knee and the latest epoch of each transition
    knee_and_latest = sum(len({t["knee_epoch"], t["epochs_trained"]}) for t in plan["transitions"])
    assert len(runs[False]) == knee_and_latest and runs[False] <= runs[True]
