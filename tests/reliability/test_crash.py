"""kill -9 a real video plan (and ``opplan train``) at chosen or random moments, then resume.

Each case checks the three promises of the issue: the resumed run ends with the same
plan.json (train.json) and bit-identical weights as an uninterrupted run with the same seed;
no epoch already in the journal (so no finished transition) is trained again; at most one
epoch of work is lost per kill (epochs trained in all sessions minus epochs journaled).
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
from _opplan_configs import RECIPE
from _opplan_faults import (
    PHASES,
    Fault,
    comparable,
    epoch_events,
    read_calls,
    run_cli,
    train_calls_by_edge,
)

from opplan.planning.journal import Op, read_journal

# the slow cases append their figures here (docs/reliability.md)
STATS_FILE = os.environ.get("OPPLAN_RELIABILITY_STATS")


def _record(kind: str, stats: dict[str, Any]) -> None:
    if STATS_FILE:
        with open(STATS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"case": kind, **stats}) + "\n")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# -- opplan plan ----------------------------------------------------------------------------
def _finished_edges(journal: Path) -> set[tuple[str, str]]:
    return {
        (e["src"], e["dst"])
        for e in read_journal(journal)
        if e["op"] == Op.TRANSITION_FINISHED.value
    }


def crash_plan(tmp_path: Path, plan_reference, kills: list[Fault | float]) -> dict[str, Any]:
    """Run the plan with ``kills`` (faults or delays in seconds), resume, check, count."""
    config, ref_run, reference, _ = plan_reference
    run, log = tmp_path / "run", tmp_path / "calls.jsonl"
    journal = run / "journal.jsonl"
    argv = ["plan", str(config), "--out", str(run), "--resume"]
    killed = 0
    for kill in kills:
        scored, finished = set(epoch_events(journal)), _finished_edges(journal)
        start = len(read_calls(log))
        if isinstance(kill, Fault):
            code = run_cli(argv, fault=kill, calls_log=log)
        else:
            code = run_cli(argv, kill_after=kill, calls_log=log)
        again = train_calls_by_edge(read_calls(log)[start:], journal)
        assert not set(again) & scored, f"journaled epochs trained again after {kill}"
        assert not {(s, d) for s, d, _ in again} & finished, f"finished edge redone: {kill}"
        if code == 0:
            break  # the plan finished before the kill
        assert code == -9, f"{kill}: exit code {code}"
        killed += 1
    if not (run / "plan.json").exists():
        assert run_cli(argv, calls_log=log) == 0
    plan = json.loads((run / "plan.json").read_text())
    assert comparable(plan) == comparable(reference)
    final = f"checkpoints/{plan['final_checkpoint']}.pt"
    assert _same_weights(run / final, ref_run / final)
    # every transition's epochs 1..n journaled exactly once, n as in plan.json
    events = epoch_events(journal)
    assert len(events) == len(set(events))
    epochs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for src, dst, epoch in events:
        epochs[src, dst].append(epoch)
    assert {k: v for k, v in epochs.items()} == {
        (t["from"], t["to"]): list(range(1, t["epochs_trained"] + 1)) for t in plan["transitions"]
    }
    lost = len(read_calls(log)) - len(events)
    assert 0 <= lost <= killed, f"{lost} epochs lost to {killed} kills"
    return {"kills": killed, "lost_epochs": lost, "epochs": len(events)}


def _phase_kills(counts: dict[str, int], rng: random.Random) -> list[Fault]:
    """One kill in each phase, at a random occurrence early enough (counted from the start of
    each resumed session) that every session dies and the run still moves on."""
    return [Fault(phase, rng.randint(1, max(1, counts[phase] // 3))) for phase in PHASES]


def test_plan_survives_kill_9_in_every_phase(tmp_path, plan_reference):
    """One kill in each phase (training, evaluation, checkpoint and journal writing) and one
    after a random delay, all in one run: the same plan as without the kills."""
    rng = random.Random(0)
    kills: list[Fault | float] = [*_phase_kills(plan_reference[3], rng), rng.uniform(0.5, 2.0)]
    stats = crash_plan(tmp_path, plan_reference, kills)
    # every phase kill fires; the last, delayed one may find the plan already finished
    assert stats["kills"] in (len(kills) - 1, len(kills))
    _record("plan-phases", {"faults": [str(k) for k in kills], **stats})


@pytest.mark.slow
@pytest.mark.parametrize("phase", PHASES)
def test_plan_survives_a_kill_at_every_point_of_a_phase(tmp_path, plan_reference, phase):
    """Exhaustive: one run per occurrence of ``phase`` in the reference plan, killed there
    and resumed."""
    points = plan_reference[3][phase]
    lost = []
    for n in range(1, points + 1):
        (tmp_path / str(n)).mkdir()
        stats = crash_plan(tmp_path / str(n), plan_reference, [Fault(phase, n)])
        assert stats["kills"] == 1
        lost.append(stats["lost_epochs"])
    _record("plan-every-point", {"phase": phase, "points": points, "lost": lost})


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_plan_survives_many_random_kills(tmp_path, plan_reference, seed):
    """Many kills: random phases at random occurrences, and random delays."""
    counts = plan_reference[3]
    rng = random.Random(100 + seed)
    kills: list[Fault | float] = []
    for _ in range(8):
        if rng.random() < 0.25:
            kills.append(rng.uniform(0.2, 2.0))
        else:
            phase = rng.choice(PHASES)
            kills.append(Fault(phase, rng.randint(1, max(1, counts[phase] // 3))))
    stats = crash_plan(tmp_path, plan_reference, kills)
    _record("plan", {"seed": seed, "faults": [str(k) for k in kills], **stats})


@pytest.mark.slow
def test_plan_survives_kill_9_of_a_real_process(tmp_path, plan_reference):
    """As above with ``python -m opplan`` processes (a full start each) killed after a delay."""
    import signal
    import subprocess
    import sys
    import time

    config, _, reference, _ = plan_reference
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "opplan", "plan", str(config), "--out", str(run), "--resume"]
    rng = random.Random(7)
    killed = 0
    for _ in range(5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(6.0, 14.0))  # torch's import takes ~5 s of it
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += 1
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    plan = json.loads((run / "plan.json").read_text())
    assert comparable(plan) == comparable(reference)
    _record("plan-subprocess", {"kills": killed})


# -- opplan train ---------------------------------------------------------------------------
def _train_epochs(journal: Path) -> list[tuple[int, int]]:
    return [
        (int(e["step"]), int(e["epoch"]))
        for e in read_journal(journal)
        if e["op"] == Op.EPOCH_SCORED.value
    ]


def crash_train(tmp_path: Path, train_reference, kills: list[Fault | float]) -> dict[str, Any]:
    config, recipe, ref_run, reference, _ = train_reference
    run, log = tmp_path / "run", tmp_path / "calls.jsonl"
    journal = run / "train_journal.jsonl"
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(run), "--resume"]
    step_of = {
        f"{s['sampling']} {s['clip_length']}f lr={s['lr']}": k
        for k, s in enumerate(RECIPE["steps"])
    }
    killed = 0
    for kill in kills:
        done = set(_train_epochs(journal))
        start = len(read_calls(log))
        if isinstance(kill, Fault):
            code = run_cli(argv, fault=kill, calls_log=log)
        else:
            code = run_cli(argv, kill_after=kill, calls_log=log)
        again = {(step_of[c["dst"]], c["epoch"]) for c in read_calls(log)[start:]}
        assert not again & done, f"journaled epochs trained again after {kill}"
        if code == 0:
            break
        assert code == -9, f"{kill}: exit code {code}"
        killed += 1
    if not (run / "train.json").exists():
        assert run_cli(argv, calls_log=log) == 0
    summary = json.loads((run / "train.json").read_text())
    drop = ("model",)  # the path of model.pt differs
    assert {k: v for k, v in comparable(summary).items() if k not in drop} == {
        k: v for k, v in comparable(reference).items() if k not in drop
    }
    assert _same_weights(run / "model.pt", ref_run / "model.pt")
    events = _train_epochs(journal)
    assert events == [
        (k, e) for k, s in enumerate(RECIPE["steps"]) for e in range(1, s["epochs"] + 1)
    ]
    lost = len(read_calls(log)) - len(events)
    assert 0 <= lost <= killed, f"{lost} epochs lost to {killed} kills"
    return {"kills": killed, "lost_epochs": lost, "epochs": len(events)}


def test_train_survives_kill_9_in_every_phase(tmp_path, train_reference):
    kills = _phase_kills(train_reference[4], random.Random(1))
    stats = crash_train(tmp_path, train_reference, list(kills))
    assert stats["kills"] == len(PHASES)
    _record("train-phases", stats)


@pytest.mark.slow
@pytest.mark.parametrize("phase", PHASES)
def test_train_survives_a_kill_at_every_point_of_a_phase(tmp_path, train_reference, phase):
    points = train_reference[4][phase]
    lost = []
    for n in range(1, points + 1):
        (tmp_path / str(n)).mkdir()
        stats = crash_train(tmp_path / str(n), train_reference, [Fault(phase, n)])
        assert stats["kills"] == 1
        lost.append(stats["lost_epochs"])
    _record("train-every-point", {"phase": phase, "points": points, "lost": lost})


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_train_survives_many_random_kills(tmp_path, train_reference, seed):
    counts = train_reference[4]
    rng = random.Random(200 + seed)
    kills: list[Fault | float] = []
    for _ in range(6):
        if rng.random() < 0.25:
            kills.append(rng.uniform(0.2, 2.0))
        else:
            phase = rng.choice(PHASES)
            kills.append(Fault(phase, rng.randint(1, max(1, counts[phase] // 3))))
    _record("train", {"seed": seed, **crash_train(tmp_path, train_reference, kills)})
