"""Data parallel inside a transition: 2 gloo processes (torchrun) against 1 process.

The multi-process parts launch this very file under ``torchrun`` (``--worker``, see the
bottom); the single-process reference runs the same function in the pytest process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from opplan.cli import main
from opplan.engine import OptimSettings, VideoTrainer
from opplan.engine.build import DecodedCache
from opplan.engine.checkpoint import load_checkpoint
from opplan.engine.distributed import (
    DistributedContext,
    ReplicaJournal,
    init_distributed,
    plan_steps,
    shuffled_batches,
)
from opplan.errors import ConfigError
from opplan.models import build_model, freeze_bn
from opplan.planning import Journal, TrainingState, read_journal
from opplan.planning.journal import Op
from opplan.video import TransformConfig, internal_val_split, read_video_list
from opplan.video.synthetic import generate_dataset

STATE = TrainingState("uniform", 4, 0.05)
EPOCHS = 2
# name: (micro-batch, effective batch, BatchNorm) -- 18 training clips in every case
CASES = {
    # accumulation 4 -> 2 whole micro-batches per rank and step; the last step (1 micro-batch)
    # leaves rank 1 none: reduced by hand
    "whole": (2, 8, "frozen"),
    "bn": (2, 8, "train"),  # the same with BatchNorm statistics trained (averaged per epoch)
    "split": (2, 6, "train"),  # accumulation 3: each rank 3 clips per step (2 + 1)
}


# -- without a process group -------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    micro=st.integers(1, 8),
    accumulate=st.integers(1, 6),
    world=st.integers(1, 4),
)
def test_plan_steps_shares_each_single_process_step(n, micro, accumulate, world):
    batches = [list(range(i, min(i + micro, n))) for i in range(0, n, micro)]
    steps = plan_steps(batches, accumulate, world)
    assert len(steps) == -(-len(batches) // accumulate)  # as many optimizer steps
    for k, step in enumerate(steps):
        assert len(step) == world
        single = sorted(i for b in batches[k * accumulate : (k + 1) * accumulate] for i in b)
        assert sorted(i for share in step for b in share for i in b) == single  # same clips
        assert all(b for share in step for b in share)  # no empty micro-batch
        if accumulate % world == 0:  # whole micro-batches, the single-process ones
            assert [b for share in step for b in share] == batches[
                k * accumulate : (k + 1) * accumulate
            ]
        assert all(len(b) <= micro for share in step for b in share)
        if k < len(steps) - 1 and (accumulate % world == 0 or micro * accumulate % world == 0):
            # only the last step may be uneven over the ranks
            assert len({len(share) for share in step}) == 1


def test_shuffled_batches_are_the_dataloader_order():
    loader = DataLoader(
        list(range(23)), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(7)
    )
    assert shuffled_batches(23, 4, 7) == [b.tolist() for b in loader]


def test_single_process_context_and_torchrun_errors(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.enabled, ctx.is_main) == (0, 1, False, True)
    assert ctx.all_reduce_sum([3, 4], torch.int64) == [3, 4]
    ctx.barrier()  # a no-op
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT"):
        init_distributed("cpu")


def test_replica_journal_returns_the_events_and_writes_nothing(tmp_path):
    with Journal(tmp_path / "journal.jsonl") as journal:
        written = journal.append(Op.PLAN_STARTED, config_hash="abc")
    with ReplicaJournal() as replica:
        echoed = replica.append(Op.PLAN_STARTED, config_hash="abc")
    assert echoed.keys() == written.keys() and echoed["config_hash"] == "abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "journal.jsonl"]


def test_torchrun_refuses_the_simulated_trainer_and_ray(tmp_path, monkeypatch, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"trainer": {"kind": "simulated"}}))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "needs trainer.kind video" in capsys.readouterr().err
    video = tmp_path / "v.yaml"
    video.write_text(yaml.safe_dump({"trainer": {"kind": "video", "data": {"root": "x"}}}))
    assert main(["plan", str(video), "--out", str(tmp_path / "run"), "--executor", "ray"]) == 2
    assert "local executor" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- 2 processes against 1 ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    generate_dataset("order", root, videos_per_class=5, size=32, min_frames=24, max_frames=40)
    return root


def _tiny(batch_norm: str) -> torch.nn.Module:
    net = build_model("dg_p3d_tiny", num_classes=10)  # dropout 0.5: masks per micro-batch
    if batch_norm == "frozen":
        freeze_bn(net, except_first=False)
    return net


def train_cases(root: Path, out: Path, dist: DistributedContext) -> dict[str, dict]:
    """Each case: EPOCHS epochs of one transition; losses, scores and optimizer steps."""
    torch.set_num_threads(1)
    train = read_video_list(root / "train.txt", root=root)
    plan_train, plan_val = internal_val_split(train, val_size=12, seed=0)
    results = {}
    cache = DecodedCache()
    for name, (micro, effective, batch_norm) in CASES.items():
        steps: list[int] = []
        record = steps.append
        trainer = VideoTrainer(
            model_factory=partial(_tiny, batch_norm),
            train_records=plan_train,
            val_records=plan_val,
            checkpoint_dir=out / name,
            transform=TransformConfig.scaled(32),
            optim=OptimSettings(
                effective_batch=effective,
                reference_batch=effective,
                base_micro_batch=micro,
                base_clip_length=4,
            ),
            metric="mean_top135",  # a finer score than top-1 on 12 videos
            dataset_options={"reader_factory": cache},  # decode each video once
            dist=dist,
            on_batch=lambda step, total, _, record=record: record(total),
        )
        trainer.start(STATE, None)
        losses, scores = [], []
        for epoch in range(1, EPOCHS + 1):
            losses.append(trainer.train_epoch()["loss"])
            scores.append(trainer.evaluate())
            trainer.save(f"e{epoch}")
        results[name] = {"losses": losses, "scores": scores, "steps": steps}
    return results


def _torchrun(*args: str, cwd: Path | None = None) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=280, cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_two_gloo_processes_train_and_score_like_one(tiny_data, tmp_path):
    one = train_cases(tiny_data, tmp_path / "one", DistributedContext())
    _torchrun(__file__, "--worker", str(tiny_data), str(tmp_path / "two"))
    ranks = [json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank: the same losses, scores and steps
    two = ranks[0]
    for name in CASES:
        # the same optimizer steps: 18 clips in steps of 8 (3 steps) or 6 (3 steps)
        assert two[name]["steps"] == one[name]["steps"], name
    # whole micro-batches: the same gradient steps and BatchNorm statistics (float
    # summation order aside), hence the same scores (summed correct counts)
    for name in ("whole", "bn"):
        assert two[name]["losses"] == pytest.approx(one[name]["losses"], rel=1e-6), name
        last = f"e{EPOCHS}.pt"
        torch.testing.assert_close(
            load_checkpoint(tmp_path / "two" / name / last)["model"],
            load_checkpoint(tmp_path / "one" / name / last)["model"],
            rtol=1e-5,
            atol=1e-5,
        )
        assert two[name]["scores"] == one[name]["scores"], name
    # the sharded score is exactly the single-process score of that same model
    check = VideoTrainer(
        model_factory=partial(_tiny, "train"),
        train_records=[],
        val_records=internal_val_split(
            read_video_list(tiny_data / "train.txt", root=tiny_data), val_size=12, seed=0
        )[1],
        checkpoint_dir=tmp_path / "two" / "bn",
        transform=TransformConfig.scaled(32),
        metric="mean_top135",
    )
    check.resume(STATE, f"e{EPOCHS}")
    assert check.evaluate() == two["bn"]["scores"][-1]
    # clips cut in runs per rank: the same clips per step, BatchNorm batches differ
    assert len(two["split"]["losses"]) == EPOCHS
    assert all(0.0 <= s <= 1.0 for s in two["split"]["scores"])


def _video_config(root: Path, path: Path, graph: dict | None = None, planner=None) -> Path:
    config = {
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "threads": 1,
            "metric": "mean_top135",
            "data": {
                "root": str(root),
                "frame_size": 32,
                "internal_val_size": 8,
                "cache": "memory",
            },
            "model": {"name": "dg_p3d_tiny"},
            "optim": {
                "effective_batch": 8,
                "reference_batch": 8,
                "base_micro_batch": 2,
                "base_clip_length": 4,
            },
        },
    }
    if graph is not None:
        config |= {"graph": graph, "planner": planner}
    path.write_text(yaml.safe_dump(config))
    return path


def _files(run: Path) -> list[str]:
    """Files under ``run``; TensorBoard's event files named without their time and pid."""
    names = (str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    return sorted(re.sub(r"tfevents\..*", "tfevents", name) for name in names)


def _losses(journal: Path) -> list[float]:
    return [e["metrics"]["loss"] for e in read_journal(journal) if "metrics" in e]


@pytest.mark.slow  # ~20-35 s: 2 gloo ranks under torchrun (the 2-process test stays default)
def test_opplan_train_under_torchrun(tiny_data, tmp_path):
    config = _video_config(tiny_data, tmp_path / "c.yaml")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "steps": [
                    {"sampling": "uniform", "clip_length": 4, "lr": 0.05, "epochs": 2},
                    # 8 frames: micro-batch 1, accumulation 8 -> 4 per rank
                    {"sampling": "uniform", "clip_length": 8, "lr": 0.02, "epochs": 1},
                ]
            }
        )
    )
    args = ["train", str(config), "--recipe", str(recipe), "--out"]
    assert main([*args, str(tmp_path / "one")]) == 0
    _torchrun("-m", "opplan", *args, str(tmp_path / "two"))
    one, two = tmp_path / "one", tmp_path / "two"
    assert _files(two) == _files(one)  # rank 1 wrote nothing of its own
    assert _losses(two / "train_journal.jsonl") == pytest.approx(
        _losses(one / "train_journal.jsonl"), rel=1e-6
    )
    torch.testing.assert_close(
        load_checkpoint(two / "model.pt")["model"],
        load_checkpoint(one / "model.pt")["model"],
        rtol=1e-5,
        atol=1e-5,
    )
    scores = [json.loads((run / "train.json").read_text())["scores"] for run in (one, two)]
    assert [(s["step"], s["epoch"]) for s in scores[1]] == [(0, 1), (0, 2), (1, 1)]
    assert scores[1] == scores[0]


@pytest.mark.slow
def test_opplan_plan_under_torchrun(tiny_data, tmp_path):
    graph = {
        "kind": "basic",
        "samplings": ["uniform"],
        "clip_lengths": [4],
        "learning_rates": [0.1, 0.001],
    }
    config = _video_config(tiny_data, tmp_path / "c.yaml", graph, {"delay": 1, "max_epochs": 3})
    assert main(["plan", str(config), "--out", str(tmp_path / "one")]) == 0
    _torchrun("-m", "opplan", "plan", str(config), "--out", str(tmp_path / "two"))
    one, two = tmp_path / "one", tmp_path / "two"
    assert _files(two) == _files(one)  # one journal, one report: rank 0's
    plans = [json.loads((run / "plan.json").read_text()) for run in (one, two)]

    def decisions(plan: dict) -> tuple:
        path = [
            (s["from"], s["sampling"], s["clip_length"], s["lr"], s["epochs"])
            for s in plan["path"]
        ]
        explored = [
            (t["from"], t["to"], t["epochs_trained"], t["knee_epoch"]) for t in plan["transitions"]
        ]
        return plan["best_final_state"], path, explored

    assert decisions(plans[1]) == decisions(plans[0])


def _worker(root: str, out: str) -> None:
    dist = init_distributed("cpu")
    try:
        results = train_cases(Path(root), Path(out), dist)
        Path(out, f"rank{dist.rank}.json").write_text(json.dumps(results))
    finally:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":  # torchrun --nproc-per-node 2 test_distributed.py --worker ROOT OUT
    assert sys.argv[1] == "--worker"
    _worker(sys.argv[2], sys.argv[3])
