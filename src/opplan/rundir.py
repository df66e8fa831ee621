"""The run directory of a plan: config.yaml, journal.jsonl, checkpoints/, plan.json, ...

A run directory belongs to one config: starting a different config in it is refused, and
continuing a plan needs ``--resume`` so that a run is never overwritten by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from opplan.config import PlanConfig, config_hash, dump_config
from opplan.errors import RunDirError
from opplan.fileio import atomic_write_text
from opplan.planning.journal import read_journal
from opplan.planning.progress import Progress

__all__ = ["RunDir"]


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

    def prepare(self, config: PlanConfig, resume: bool) -> Progress:
        """Check that ``config`` may run here and return the progress to continue from."""
        events = read_journal(self.journal)
        wanted = config_hash(config)
        if events:
            progress = Progress.replay(events)
            if progress.config_hash != wanted and not self._stored_config_is(wanted):
                raise RunDirError(
                    f"{self.root} holds a plan of a different config (see {self.config}); "
                    "choose another --out, or resume it with that same config"
                )
            if not resume:
                state = "finished" if progress.finished else "unfinished"
                raise RunDirError(
                    f"{self.root} already holds this {state} plan; pass --resume to "
                    "continue (or show) it, or choose another --out"
                )
            atomic_write_text(self.config, dump_config(config))  # the current schema's dump
            return progress
        if self.config.exists() and not resume:
            previous = yaml.safe_load(self.config.read_text(encoding="utf-8"))
            if previous != yaml.safe_load(dump_config(config)):
                raise RunDirError(f"{self.root} holds the config of another run ({self.config})")
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config, dump_config(config))
        return Progress()

    def _stored_config_is(self, wanted: str) -> bool:
        """Whether RUN/config.yaml, read with today's schema, is the config hashed ``wanted``.

        A run planned before a new (defaulted) config field existed has a journal hash of the
        older schema; its config.yaml validated now fills the default and matches again.
        """
        from opplan.config import load_config
        from opplan.errors import ConfigError

        try:
            return config_hash(load_config(self.config)) == wanted
        except (ConfigError, OSError, SystemExit):
            return False
