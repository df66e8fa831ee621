"""Fault injection for tests/reliability: the opplan CLI in a forked child that is SIGKILLed.

No hook lives in opplan itself. The child (``os.fork`` of the test process, which has torch
imported already, so a session starts in milliseconds instead of seconds) wraps a few
functions before calling :func:`opplan.cli.main` and kills itself with SIGKILL at the n-th
occurrence of a phase:

- ``train``: the n-th optimizer step (in the middle of an epoch);
- ``evaluate``: entering the n-th evaluation (the epoch is trained, its score not yet known);
- ``checkpoint``: the n-th checkpoint written to its temporary file and fsynced, not renamed;
- ``checkpoint_renamed``: right after the n-th checkpoint rename, before its journal event;
- ``journal``: half of the n-th journal line written and fsynced (a torn line);
- ``journal_after``: right after the n-th journal event is durable.

Or the parent kills the child after a delay (``kill_after``). Every ``train_epoch`` call is
logged (state, origin, epoch) so that a test can prove no journaled epoch is trained again.
"""

from __future__ import annotations

import collections
import errno
import json
import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PHASES",
    "Fault",
    "comparable",
    "epoch_events",
    "read_calls",
    "run_cli",
    "train_calls_by_edge",
]

PHASES = ("train", "evaluate", "checkpoint", "checkpoint_renamed", "journal", "journal_after")
_TIME_KEYS = {"seconds", "wall_seconds", "compute_seconds", "session_seconds", "time"}


@dataclass(frozen=True)
class Fault:
    """At the ``n``-th occurrence of ``phase``: ``kill`` (SIGKILL) or ``enospc`` (the write
    raises ``OSError(ENOSPC)``, for the checkpoint and journal phases)."""

    phase: str
    n: int
    action: str = "kill"

    def __post_init__(self) -> None:
        assert self.phase in PHASES and self.n >= 1, self
        assert self.action in ("kill", "enospc"), self


def _die(fault: Fault) -> None:
    if fault.action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.kill(os.getpid(), signal.SIGKILL)


def _install(fault: Fault | None, calls_log: Path | None, counts_out: Path | None) -> None:
    """Wrap the functions of the fault points (in the child only)."""
    import torch

    from opplan.engine.trainer import VideoTrainer
    from opplan.planning.journal import Journal

    counts: collections.Counter[str] = collections.Counter()

    def hit(phase: str) -> bool:
        counts[phase] += 1
        if counts_out is not None:
            counts_out.write_text(json.dumps(counts))
        return fault is not None and fault.phase == phase and counts[phase] == fault.n

    train_epoch = VideoTrainer.train_epoch

    def logged_train_epoch(self: Any) -> Any:
        if calls_log is not None:
            entry = {"pid": os.getpid(), "dst": str(self.state), "origin": self.origin}
            with open(calls_log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({**entry, "epoch": self.epoch + 1}) + "\n")
        return train_epoch(self)

    step = torch.optim.SGD.step

    def killing_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        if hit("train"):
            _die(fault)
        return step(self, *args, **kwargs)

    evaluate = VideoTrainer.evaluate

    def killing_evaluate(self: Any) -> Any:
        if hit("evaluate"):
            _die(fault)
        return evaluate(self)

    replace = os.replace

    def killing_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if not str(dst).endswith(".pt"):
            return replace(src, dst, *args, **kwargs)
        if hit("checkpoint"):
            _die(fault)  # the temporary file is complete and fsynced, the rename never happens
        replace(src, dst, *args, **kwargs)
        if hit("checkpoint_renamed"):
            _die(fault)
        return None

    append = Journal.append

    def killing_append(self: Any, op: Any, **fields: Any) -> Any:
        if hit("journal") and fault.action == "kill":
            line = json.dumps({"op": op.value, **fields})
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line[: len(line) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            _die(fault)
        elif fault is not None and fault.phase == "journal" and counts["journal"] == fault.n:
            _die(fault)  # ENOSPC: nothing written
        event = append(self, op, **fields)
        if hit("journal_after"):
            _die(fault)
        return event

    VideoTrainer.train_epoch = logged_train_epoch  # type: ignore[method-assign]
    VideoTrainer.evaluate = killing_evaluate  # type: ignore[method-assign]
    torch.optim.SGD.step = killing_step  # type: ignore[method-assign]
    os.replace = killing_replace
    Journal.append = killing_append  # type: ignore[method-assign]


def run_cli(
    argv: list[str],
    *,
    fault: Fault | None = None,
    kill_after: float | None = None,
    calls_log: Path | None = None,
    counts_out: Path | None = None,
    timeout: float = 240.0,
) -> int:
    """Run ``opplan ARGV`` in a forked child; its exit code, or ``-9`` when it was killed."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            _install(fault, calls_log, counts_out)
            from opplan.cli import main

            code = main(argv)
        except SystemExit as err:
            code = err.code if isinstance(err.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    try:
        start = time.monotonic()
        limit = timeout if kill_after is None else min(timeout, kill_after)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - start > limit:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                if kill_after is None:
                    raise TimeoutError(f"opplan {argv} did not finish in {timeout}s")
                break
            time.sleep(0.01)
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        raise
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def read_calls(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epoch_events(journal: Path) -> list[tuple[str, str, int]]:
    """(src, dst, epoch) of every EPOCH_SCORED event of a plan journal."""
    from opplan.planning.journal import Op, read_journal

    return [
        (e["src"], e["dst"], int(e["epoch"]))
        for e in read_journal(journal)
        if e["op"] == Op.EPOCH_SCORED.value
    ]


def train_calls_by_edge(calls: list[dict[str, Any]], journal: Path) -> list[tuple[str, str, int]]:
    """(src, dst, epoch) of logged ``train_epoch`` calls; src from the origin checkpoint."""
    from opplan.planning.journal import Op, read_journal

    source = {"initial": "initial"}
    for e in read_journal(journal):
        if e["op"] == Op.STATE_RESOLVED.value and e.get("checkpoint"):
            source[e["checkpoint"]] = e["state"]
    return [(source[c["origin"]], c["dst"], int(c["epoch"])) for c in calls]


def comparable(data: Any) -> Any:
    """A plan (or train summary) without wall-clock fields; NaN made comparable."""
    if isinstance(data, dict):
        return {k: comparable(v) for k, v in data.items() if k not in _TIME_KEYS}
    if isinstance(data, list):
        return [comparable(v) for v in data]
    if isinstance(data, float) and math.isnan(data):
        return "nan"
    return data
