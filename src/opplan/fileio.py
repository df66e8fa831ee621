"""Atomic file writes: a reader never sees a half-written file (temp file, then os.replace).

A write that fails (no space left, no permission) removes its temporary file, leaves the
previous version of the target untouched, and raises :class:`DiskWriteError`: an
:class:`~opplan.errors.OpplanError` (the CLI prints one line and exits 1) that is also an
``OSError``. :func:`disk_errors` does the same for other writes (a journal append).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opplan.errors import ConfigError, OpplanError

__all__ = [
    "DiskWriteError",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_out_dir",
    "disk_errors",
]

# a full, read-only or failing disk: the user's to fix, not a bug worth a traceback
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


class DiskWriteError(OpplanError, OSError):
    """A file could not be written; the previous version of it is intact."""


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (and durably: fsync before the rename).

    Raises:
        DiskWriteError: the write failed (e.g. ``ENOSPC``); nothing at ``path`` changed.
    """
    target = Path(path)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, DiskWriteError):
            raise DiskWriteError(
                f"cannot write {target}: {err.strerror or err} (its previous version, if "
                "any, is intact; fix the cause, then continue with --resume)"
            ) from err
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=False) + "\n")


@contextmanager
def disk_errors() -> Iterator[None]:
    """Turn a full (or read-only, or failing) disk met inside the block, e.g. by a journal
    append, into :class:`DiskWriteError`: one line from the CLI instead of a traceback."""
    try:
        yield
    except DiskWriteError:
        raise
    except OSError as err:
        if err.errno not in _DISK_ERRNOS:
            raise
        where = f" {err.filename}" if err.filename else ""
        raise DiskWriteError(
            f"cannot write{where}: {err.strerror or err} (what was written before is intact; "
            "fix the cause, then continue with --resume)"
        ) from err


def check_out_dir(path: str | os.PathLike[str], option: str = "--out") -> None:
    """Refuse an output directory that cannot be one, before any work and without writing.

    Raises:
        ConfigError: ``path`` (or the nearest existing folder above it) is a file, or that
            folder is not writable (the CLI exits with code 2, naming ``option``).
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{option}: {target} is a file, not a directory")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option}: cannot create {target}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option}: cannot write to {target}: {existing} is not writable")
