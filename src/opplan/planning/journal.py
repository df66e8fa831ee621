"""Append-only, fsync'd event log of a plan; replaying it restores the planner exactly.

One JSON object per line, each with an ``op`` (:class:`Op`). A crash can leave at most
the last line torn (no trailing newline, or invalid JSON); reading stops before it, and
opening the journal for appending cuts it off. A torn line anywhere else is corruption and
is reported with its line number.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from opplan.errors import RunDirError

__all__ = ["Journal", "JournalCorrupt", "Op", "read_journal"]


class Op(enum.StrEnum):
    """Journal operations, in the order a plan emits them."""

    PLAN_STARTED = "plan_started"
    TRANSITION_STARTED = "transition_started"
    EPOCH_SCORED = "epoch_scored"
    FIT = "fit"
    TRANSITION_FINISHED = "transition_finished"
    TRANSITION_FAILED = "transition_failed"
    STATE_RESOLVED = "state_resolved"
    PLAN_FINISHED = "plan_finished"


_OPS = frozenset(op.value for op in Op)


class JournalCorrupt(RunDirError):
    """A line other than the last one cannot be parsed."""


def read_journal(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All complete events of the journal at ``path`` (empty if it does not exist)."""
    p = Path(path)
    if not p.exists():
        return []
    events, _ = _parse(p.read_bytes(), p)
    return events


def _parse(data: bytes, path: Path) -> tuple[list[dict[str, Any]], int]:
    """The events and the byte offset just after the last good line.

    The last line may be torn: missing its newline, or not valid JSON. Any earlier bad
    line is corruption.
    """
    events: list[dict[str, Any]] = []
    good_end = 0
    offset = 0
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        end = offset + len(raw) + 1
        is_last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
        if number == len(lines):  # no trailing newline: torn (or empty)
            break
        if raw.strip():
            try:
                event = json.loads(raw)
                if not isinstance(event, dict) or "op" not in event:
                    raise ValueError("not an event object")
            except ValueError as err:
                if is_last:
                    break
                raise JournalCorrupt(f"{path}:{number}: corrupt journal line ({err})") from None
            if not isinstance(event["op"], str) or event["op"] not in _OPS:  # not torn: kept
                raise JournalCorrupt(
                    f"{path}:{number}: unknown journal op {event['op']!r} (known: "
                    f"{', '.join(sorted(_OPS))}); was it written by a newer opplan?"
                )
            events.append(event)
        good_end = end
        offset = end
    return events, good_end


class Journal:
    """The writer side. Holds an exclusive lock on the run directory while open.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> with Journal(f"{d}/journal.jsonl") as j:
        ...     _ = j.append(Op.PLAN_STARTED, config_hash="abc")
        >>> read_journal(f"{d}/journal.jsonl")[0]["config_hash"]
        'abc'
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path.parent / ".lock", "w")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RunDirError(f"{self.path.parent} is in use by another opplan process") from None
        self._cut_torn_tail()
        self._file: TextIO = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        _, good_end = _parse(data, self.path)  # raises on corruption before the tail
        if good_end != len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
                handle.flush()
                os.fsync(handle.fileno())

    def append(self, op: Op, **fields: Any) -> dict[str, Any]:
        """Write one event durably (flush + fsync) and return it."""
        event = {"op": op.value, **fields, "time": time.time()}
        self._file.write(json.dumps(event, allow_nan=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        return event

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
