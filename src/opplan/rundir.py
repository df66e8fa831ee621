"""The run directory of a plan: config.yaml, journal.jsonl, checkpoints/, plan.json, ...

A run directory belongs to one config: starting a different config in it is refused, and
continuing a plan needs ``--resume`` so that a run is never overwritten by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opplan.config import PlanConfig, config_hash, dump_config, legacy_config_data, parse_config
from opplan.errors import ConfigError, RunDirError
from opplan.fileio import atomic_write_text
from opplan.planning.journal import read_journal
from opplan.planning.progress import PlanState

__all__ = ["RunDir", "data_change", "replay_journal"]


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    def prepare(
        self, config: PlanConfig, resume: bool, data: dict[str, Any] | None = None
    ) -> PlanState:
        """Check that ``config`` (and ``data``, the fingerprint of its videos,
        :func:`opplan.engine.fingerprint.data_fingerprint`) may run here and return the
        progress to continue from. Refusals happen before anything is written."""
        events = read_journal(self.journal)
        wanted = config_hash(config)
        if events:
            progress = replay_journal(events, self.journal)
            if not self._same_config(progress, wanted):
                raise RunDirError(
                    f"{self.root} holds a plan of a different config (the one journaled in "
                    f"{self.journal}); choose another --out, or resume it with that config"
                )
            if not resume:
                state = "finished" if progress.finished else "unfinished"
                raise RunDirError(
                    f"{self.root} already holds this {state} plan; pass --resume to "
                    "continue (or show) it, or choose another --out"
                )
            if data is not None and progress.data is not None:
                change = data_change(progress.data, data)
                if change is not None:
                    raise RunDirError(
                        f"{self.root}: cannot resume: {change}; restore it, or plan into "
                        "another --out"
                    )
            atomic_write_text(self.config, dump_config(config))  # the current schema's dump
            return progress
        if self.config.exists() and not resume:
            previous = yaml.safe_load(self.config.read_text(encoding="utf-8"))
            if previous != yaml.safe_load(dump_config(config)):
                raise RunDirError(f"{self.root} holds the config of another run ({self.config})")
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config, dump_config(config))
        return PlanState()

    def _same_config(self, progress: PlanState, wanted: str) -> bool:
        """Whether the journal's plan is the config hashed ``wanted``, cosmetic fields aside.

        The journal keeps the config it started with (read with today's schema, so a field
        added since, at its default, is no difference); RUN/config.yaml is only a copy for
        the user and never trusted. Journals written before the config was kept there are
        checked against their hash, then (older schema) against RUN/config.yaml.
        """
        if progress.config is not None:
            try:
                kept = parse_config(legacy_config_data(progress.config), source=str(self.journal))
            except ConfigError:
                return False
            return config_hash(kept) == wanted
        return progress.config_hash == wanted or self._stored_config_is(wanted)

    def _stored_config_is(self, wanted: str) -> bool:
        """Whether RUN/config.yaml, read with today's schema, is the config hashed ``wanted``
        (for journals that predate the config kept in them)."""
        try:
            data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
            return config_hash(parse_config(legacy_config_data(data))) == wanted
        except (ConfigError, OSError, yaml.YAMLError):
            return False


def replay_journal(events: list[dict[str, Any]], path: Path) -> PlanState:
    """:meth:`PlanState.replay`, with a journal that is valid JSON but not a plan's (a missing
    field, a wrong type) refused in one line naming the file."""
    try:
        return PlanState.replay(events)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        what = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise RunDirError(f"{path}: not a plan journal ({what})") from None


def data_change(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """What differs between two data fingerprints (None: the same videos and split)."""
    if old.get("split") == new.get("split"):
        return None  # the planner sees the same records: an edit elsewhere changes nothing
    old_files, new_files = old.get("files", {}), new.get("files", {})
    changed = [
        f"{field} ({new_files.get(field, entry)['path']})"
        for field, entry in old_files.items()
        if new_files.get(field, {}).get("sha256") != entry.get("sha256")
    ]
    what = " and ".join(changed) if changed else "the internal split"
    verb = "have" if len(changed) > 1 else "has"
    return (
        f"{what} {verb} changed since the plan started (its internal split: "
        f"{old.get('train')} training / {old.get('val')} validation videos of "
        f"{old.get('num_classes')} classes, now {new.get('train')} / {new.get('val')} of "
        f"{new.get('num_classes')})"
    )
