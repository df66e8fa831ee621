"""Data parallel inside planned transitions on Ray: each transition trains on a group of 2
gloo ranks (torchrun's variables set by the executor) and the plan matches one process."""

from __future__ import annotations

import json

import pytest
import yaml

from opplan.cli import main
from opplan.video.synthetic import generate_dataset

pytestmark = pytest.mark.slow


def test_ray_transitions_with_two_ddp_ranks_plan_like_one_process(tmp_path):
    pytest.importorskip("ray")
    root = tmp_path / "data"
    generate_dataset("order", root, videos_per_class=5, size=32, min_frames=24, max_frames=40)
    config = {
        "graph": {
            "kind": "basic",
            "samplings": ["uniform"],
            "clip_lengths": [4, 8],
            "learning_rates": [0.05],
        },
        "planner": {"delay": 2, "max_epochs": 4},
        "trainer": {
            "kind": "video",
            "seed": 0,
            "device": "cpu",
            "threads": 1,
            "data": {"root": str(root), "frame_size": 32, "internal_val_size": 6},
            "optim": {  # 2 micro-batches of 3 per step: one per rank with 2 ranks
                "effective_batch": 6,
                "reference_batch": 6,
                "base_micro_batch": 3,
                "base_clip_length": 4,
            },
        },
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["plan", str(path), "--out", str(tmp_path / "one")]) == 0
    config["executor"] = {"kind": "ray", "num_cpus": 1, "ranks_per_transition": 2}
    ray_path = tmp_path / "ray.yaml"
    ray_path.write_text(yaml.safe_dump(config))
    assert main(["plan", str(ray_path), "--out", str(tmp_path / "ddp")]) == 0
    one, ddp = (json.loads((tmp_path / r / "plan.json").read_text()) for r in ("one", "ddp"))
    # the same transitions, each journaled once by the driver
    edges = [(t["from"], t["to"]) for t in one["transitions"]]
    assert [(t["from"], t["to"]) for t in ddp["transitions"]] == edges
    events = [json.loads(x) for x in (tmp_path / "ddp" / "journal.jsonl").read_text().splitlines()]
    assert sum(e["op"] == "transition_finished" for e in events) == 3
    # every epoch was trained by 2 data-parallel ranks, with the single process's effective
    # batch: the first epoch's loss equals one process's (gradients summed over the ranks;
    # later epochs drift by float summation order, ~1e-5 relative, see docs/scaling.md)
    scored = [e for e in events if e["op"] == "epoch_scored"]
    assert scored and all(e["metrics"]["ranks"] == 2.0 for e in scored)
    single = [
        json.loads(x)
        for x in (tmp_path / "one" / "journal.jsonl").read_text().splitlines()
        if '"epoch_scored"' in x
    ]
    assert all(e["metrics"]["ranks"] == 1.0 for e in single)
    assert scored[0]["metrics"]["loss"] == pytest.approx(single[0]["metrics"]["loss"], rel=1e-5)
    assert scored[0]["score"] == single[0]["score"]
