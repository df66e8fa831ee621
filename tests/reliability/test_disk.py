"""A checkpoint write that fails for lack of space (simulated ENOSPC) stops the run with one
clear line, keeps the journal and the earlier checkpoints, and the run resumes to the end."""

from __future__ import annotations

import errno
import json
import os

import pytest
from _opplan_faults import Fault, comparable, epoch_events, run_cli

from opplan.fileio import DiskWriteError, atomic_write_bytes
from opplan.planning.journal import Op, read_journal


def test_atomic_write_that_fails_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.pt"
    atomic_write_bytes(target, b"old")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(DiskWriteError, match=r"a\.pt: No space left on device") as info:
        atomic_write_bytes(target, b"new")
    assert isinstance(info.value, OSError)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]  # no temporary file left


@pytest.mark.parametrize("n", [3, pytest.param(5, marks=pytest.mark.slow)])
def test_plan_stops_cleanly_on_enospc_and_resumes(tmp_path, plan_reference, capfd, n):
    """The n-th checkpoint write fails (3: in the first transition, 5: in the second)."""
    config, _, reference, _ = plan_reference
    run = tmp_path / "run"
    argv = ["plan", str(config), "--out", str(run)]
    capfd.readouterr()
    assert run_cli(argv, fault=Fault("checkpoint", n, "enospc")) == 1
    err = capfd.readouterr().err
    assert "opplan: error: cannot write" in err and "No space left on device" in err
    assert "Traceback" not in err
    # the journal is whole and every checkpoint it names (not released) is on disk
    events = read_journal(run / "journal.jsonl")
    assert events and (run / "journal.jsonl").read_bytes().endswith(b"\n")
    scored = [e for e in events if e["op"] == Op.EPOCH_SCORED.value]
    assert scored  # n > 2: at least one epoch was journaled before the failure
    assert (run / "checkpoints" / f"{scored[-1]['checkpoint']}.pt").is_file()
    assert not list(run.rglob("*.tmp"))
    # space is back: resume finishes the same plan
    assert run_cli([*argv, "--resume"]) == 0
    plan = json.loads((run / "plan.json").read_text())
    assert comparable(plan) == comparable(reference)
    assert len(epoch_events(run / "journal.jsonl")) == sum(
        t["epochs_trained"] for t in plan["transitions"]
    )


def test_train_stops_cleanly_on_enospc_and_resumes(tmp_path, train_reference, capfd):
    config, recipe, _, reference, _ = train_reference
    run = tmp_path / "run"
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(run)]
    capfd.readouterr()
    assert run_cli(argv, fault=Fault("checkpoint", 2, "enospc")) == 1
    err = capfd.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    events = read_journal(run / "train_journal.jsonl")
    assert [(e["step"], e["epoch"]) for e in events if e["op"] == Op.EPOCH_SCORED.value] == [
        (0, 1)
    ]
    assert (run / "checkpoints" / "step0" / "e001.pt").is_file()
    assert run_cli([*argv, "--resume"]) == 0
    summary = json.loads((run / "train.json").read_text())
    assert comparable(summary)["scores"] == comparable(reference)["scores"]


def test_plan_stops_cleanly_when_the_journal_cannot_be_written(tmp_path, plan_reference, capfd):
    """ENOSPC on a journal append (the 4th event: an epoch's score): one line, exit 1; the
    resume re-trains at most that epoch and finishes the same plan."""
    config, _, reference, _ = plan_reference
    run = tmp_path / "run"
    argv = ["plan", str(config), "--out", str(run)]
    capfd.readouterr()
    assert run_cli(argv, fault=Fault("journal", 4, "enospc")) == 1
    err = capfd.readouterr().err
    assert "opplan: error: cannot write" in err and "No space left on device" in err
    assert "Traceback" not in err
    assert len(read_journal(run / "journal.jsonl")) == 3
    assert run_cli([*argv, "--resume"]) == 0
    plan = json.loads((run / "plan.json").read_text())
    assert comparable(plan) == comparable(reference)


def test_train_stops_cleanly_when_its_journal_cannot_be_written(tmp_path, train_reference, capfd):
    config, recipe, _, reference, _ = train_reference
    run = tmp_path / "run"
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(run)]
    capfd.readouterr()
    assert run_cli(argv, fault=Fault("journal", 2, "enospc")) == 1
    err = capfd.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert run_cli([*argv, "--resume"]) == 0
    summary = json.loads((run / "train.json").read_text())
    assert comparable(summary)["scores"] == comparable(reference)["scores"]
