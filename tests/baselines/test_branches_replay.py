"""``benchmarks.pruning.replay_plan`` with ``planner.branches``: replaying a finished plan's
recorded curves with the switch on gives the plan that running with it gives, and the peers
table's "planner (branches)" row is that replay (same models, so the same test top-1)."""

from __future__ import annotations

import argparse
import json

import yaml

from benchmarks.paper_peers import _branched
from benchmarks.pruning import replay_plan
from opplan.cli import main as opplan

CONFIG = {
    "name": "branches",
    "graph": {
        "kind": "extended",
        "samplings": ["consecutive", "uniform"],
        "clip_lengths": [8, 16],
        "learning_rates": [0.1, 0.01],
    },
    "planner": {"family": "exponential", "delay": 3, "max_epochs": 20, "value": "fitted"},
    "trainer": {"kind": "simulated", "landscape": "default", "seed": 0, "noise": 0.01},
}


def _plan(tmp_path, name, **planner):
    config = {**CONFIG, "planner": {**CONFIG["planner"], **planner}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert opplan(["plan", str(path), "--out", str(tmp_path / name)]) == 0
    return tmp_path / name, json.loads((tmp_path / name / "plan.json").read_text())


def test_the_replay_with_branches_is_the_plan_run_with_them(tmp_path):
    run, full = _plan(tmp_path, "full")
    _, real = _plan(tmp_path, "real", branches=True, branch_margin=0.0)
    replayed, recorded, seconds = replay_plan(run, {"branches": True}, branch_margin=0.0)
    assert recorded == full
    again = replayed.to_dict()
    assert real["cost"]["skipped"] > 0  # the default landscape's uniform branch is behind
    assert again["path"] == real["path"] == full["path"]
    assert again["cost"]["epochs_total"] == real["cost"]["epochs_total"]
    assert again["cost"]["epochs_total"] < full["cost"]["epochs_total"]
    assert again["cost"]["skipped"] == real["cost"]["skipped"]
    statuses = {
        (t["from"], t["to"]): (t["status"], t["epochs_trained"]) for t in again["transitions"]
    }
    assert statuses == {
        (t["from"], t["to"]): (t["status"], t["epochs_trained"]) for t in real["transitions"]
    }
    assert 0 < seconds < full["cost"]["compute_seconds"]


def test_the_peers_row_is_the_replay_with_the_default_plans_test(tmp_path):
    run, full = _plan(tmp_path, "full")
    default = {"test": 0.625, "epochs": full["cost"]["epochs_total"]}
    row = _branched(argparse.Namespace(), tmp_path / "unused.yaml", run, default)
    replayed, _, seconds = replay_plan(run, {"branches": True})
    assert row == {
        "test": 0.625,
        "epochs": replayed.epochs_total,
        "weighted": replayed.weighted_epochs,
        "seconds": seconds,
        "replayed": True,
    }


def test_a_variant_config_sets_only_its_keys_beside_the_config(tmp_path):
    from benchmarks.paper_peers import SCORED, _variant, extras

    base = tmp_path / "order-seed0.yaml"
    base.write_text(yaml.safe_dump({**CONFIG, "trainer": {**CONFIG["trainer"], "optim": {}}}))
    path = _variant(base, "scored", {"score_start": True}, {"recalibrate_bn": True})
    assert path == tmp_path / "order-seed0-scored.yaml"
    variant, original = yaml.safe_load(path.read_text()), yaml.safe_load(base.read_text())
    assert variant["planner"] == {**original["planner"], "score_start": True}
    assert variant["trainer"]["optim"] == {"recalibrate_bn": True}
    assert {k: v for k, v in variant.items() if k not in ("planner", "trainer")} == {
        k: v for k, v in original.items() if k not in ("planner", "trainer")
    }
    assert extras(argparse.Namespace(scored_starts=True)) == [SCORED]
    assert extras(argparse.Namespace()) == []
