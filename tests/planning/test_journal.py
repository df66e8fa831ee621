from __future__ import annotations

import pytest

from opplan.errors import RunDirError
from opplan.planning import Journal, Op, read_journal
from opplan.planning.journal import JournalCorrupt


def write_events(path, n):
    with Journal(path) as journal:
        for k in range(n):
            journal.append(Op.EPOCH_SCORED, epoch=k)


def test_events_round_trip(tmp_path):
    path = tmp_path / "journal.jsonl"
    write_events(path, 3)
    assert [e["epoch"] for e in read_journal(path)] == [0, 1, 2]
    assert read_journal(tmp_path / "missing.jsonl") == []


@pytest.mark.parametrize(
    "tail", [b'{"op": "epoch_sco', b'{"op": "epoch_scored", "ep\n', b"\x00\x00"]
)
def test_torn_last_line_is_tolerated_and_cut_on_append(tmp_path, tail):
    path = tmp_path / "journal.jsonl"
    write_events(path, 2)
    with open(path, "ab") as handle:
        handle.write(tail)
    assert [e["epoch"] for e in read_journal(path)] == [0, 1]
    with Journal(path) as journal:
        journal.append(Op.EPOCH_SCORED, epoch=2)
    assert [e["epoch"] for e in read_journal(path)] == [0, 1, 2]


def test_corruption_before_the_last_line_names_the_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    write_events(path, 3)
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match=r"journal.jsonl:2: corrupt"):
        read_journal(path)


def test_one_writer_per_run_directory(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path), pytest.raises(RunDirError, match="in use by another opplan process"):
        Journal(path)
    Journal(path).close()  # the lock is released on close
