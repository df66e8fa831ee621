"""Bad-data policy: replace, log once, count in ``RUN/data_health.json``, stop past a budget.

A missing, zero-byte, truncated or undecodable video does not crash a long planning run: the
training dataset replaces the sample by another one, logs the path and reason once, and
records it. The evaluations (planning validation, final test) exclude it instead, never
replace it (see :mod:`opplan.video.datasets`).
DataLoader workers append their records to ``RUN/.data_health/<pid>.jsonl``; the main process
merges them in :meth:`DataHealth.end_epoch`, writes ``RUN/data_health.json`` atomically, and
stops the run with the list of files when more than ``max_bad_fraction`` of the epoch failed.
``strict=True`` fails on the first bad sample instead.

Example:
    >>> health = DataHealth(None, max_bad_fraction=0.5)
    >>> health.record("a.mp4", "zero-byte file")
    >>> health.end_epoch(num_samples=10)["bad_files"]
    {'a.mp4': 'zero-byte file'}
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opplan.errors import OpplanError
from opplan.fileio import atomic_write_json

__all__ = ["DataHealth", "DataHealthError"]

_LOG = logging.getLogger("opplan.video")
HEALTH_FILE = "data_health.json"
_RECORD_DIR = ".data_health"
_EVAL_SCOPES = ("plan_eval", "test")  # datasets that exclude a bad video, never replace it


class DataHealthError(OpplanError):
    """Too many unreadable videos (or any, in strict mode); the message lists them."""


class DataHealth:
    """Counts unreadable samples of a run.

    Args:
        run_dir: the run directory (``RUN``); None keeps records in memory only (then only
            the main process's records are seen, i.e. ``num_workers=0``).
        max_bad_fraction: stop when more than this fraction of an epoch's samples failed.
        strict: fail on the first unreadable sample.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str] | None = None,
        *,
        max_bad_fraction: float = 0.01,
        strict: bool = False,
        missing: Sequence[str] = (),
    ) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.max_bad_fraction = max_bad_fraction
        self.strict = strict
        # listed but absent from the download (data.missing: skip): left out before training,
        # listed once in data_health.json beside the unreadable ones
        self.missing = sorted(missing)
        self.epoch = 0
        self._memory: list[dict[str, Any]] = []
        self._logged: set[str] = set()
        self._samples: dict[str, int] = {}  # samples of each epoch that ended

    def record(
        self, path: str, reason: str, *, epoch_size: int | None = None, scope: str = ""
    ) -> None:
        """Record one failed sample (called by the dataset, possibly in a worker).

        Args:
            path: the unreadable video.
            reason: why (goes into ``data_health.json``).
            epoch_size: samples of the dataset that met it (enables the early budget check).
            scope: which dataset (e.g. its mode): the early check counts only the failures
                of the same dataset against ``epoch_size``.

        Raises:
            DataHealthError: in strict mode, or when this process alone already saw more
                failures of this dataset this epoch than the budget allows for
                ``epoch_size`` samples.
        """
        if self.strict:
            raise DataHealthError(f"unreadable video (strict mode): {path}: {reason}")
        entry = {
            "epoch": self.epoch,
            "path": path,
            "reason": reason,
            "pid": os.getpid(),
            "scope": scope,
        }
        self._memory.append(entry)
        if self.run_dir is not None:
            folder = self.run_dir / _RECORD_DIR
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        if path not in self._logged:
            self._logged.add(path)
            fate = "excluded from the evaluation" if scope in _EVAL_SCOPES else "replaced"
            _LOG.warning("unreadable video %s: %s (%s)", fate, path, reason)
        if epoch_size:
            failed = {
                e["path"]
                for e in self._memory
                if e["epoch"] == self.epoch and e.get("scope", "") == scope
            }
            if len(failed) > self.max_bad_fraction * epoch_size:
                raise DataHealthError(self._too_many(sorted(failed), epoch_size))

    def _records(self) -> list[dict[str, object]]:
        if self.run_dir is None:
            return list(self._memory)
        entries = []
        for file in sorted((self.run_dir / _RECORD_DIR).glob("*.jsonl")):
            for line in file.read_text(encoding="utf-8").splitlines():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # torn last line of a killed worker
        return entries

    def write(self) -> dict[str, object]:
        """Merge every record so far and write ``RUN/data_health.json`` (no budget check);
        e.g. after an evaluation, whose failures :meth:`end_epoch` does not see."""
        return self._write(self._records())

    def _write(self, entries: list[dict[str, object]]) -> dict[str, object]:
        bad = {str(e["path"]): str(e["reason"]) for e in entries}
        epochs: dict[str, dict[str, int]] = {}
        for e in entries:
            stats = epochs.setdefault(str(e["epoch"]), {"failures": 0, "bad_files": 0})
            stats["failures"] += 1
        for key in epochs:
            epochs[key]["bad_files"] = len({e["path"] for e in entries if str(e["epoch"]) == key})
        for key, samples in self._samples.items():
            epochs.setdefault(key, {"failures": 0, "bad_files": 0})["samples"] = samples
        summary: dict[str, object] = {
            "max_bad_fraction": self.max_bad_fraction,
            "total_failures": len(entries),
            "bad_files": dict(sorted(bad.items())),
            "epochs": epochs,
        }
        if self.missing:
            summary["missing_from_download"] = list(self.missing)
        if self.run_dir is not None:
            atomic_write_json(self.run_dir / HEALTH_FILE, summary)
        return summary

    def end_epoch(
        self, num_samples: int, epoch: int | None = None, scope: str = "train"
    ) -> dict[str, object]:
        """Merge the records of ``epoch`` (default: the current one), write the health file.

        Args:
            num_samples: samples of the epoch's dataset.
            epoch: the epoch (default: the current one).
            scope: the dataset whose failures count against the budget (records made
                without a scope count too).

        Returns:
            The summary written to ``RUN/data_health.json``.

        Raises:
            DataHealthError: more than ``max_bad_fraction`` of ``num_samples`` failed.
        """
        epoch = self.epoch if epoch is None else epoch
        self._samples[str(epoch)] = num_samples
        entries = self._records()
        summary = self._write(entries)
        this_epoch = sorted(
            {
                str(e["path"])
                for e in entries
                if e["epoch"] == epoch and e.get("scope", "") in ("", scope)
            }
        )
        if num_samples and len(this_epoch) > self.max_bad_fraction * num_samples:
            raise DataHealthError(self._too_many(this_epoch, num_samples))
        return summary

    def _too_many(self, paths: list[str], num_samples: int) -> str:
        listing = "\n  ".join(paths)
        return (
            f"{len(paths)} of {num_samples} samples unreadable in epoch {self.epoch} "
            f"(more than {self.max_bad_fraction:.1%}); fix or remove them:\n  {listing}"
        )
