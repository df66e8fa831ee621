"""Reading configs: YAML errors name the line, schema errors name the field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from opplan.config._schema import PlanConfig
from opplan.errors import ConfigError

__all__ = ["config_hash", "dump_config", "load_config", "parse_config"]


def load_config(path: str | Path) -> PlanConfig:
    """Load and fully validate a config file (the graph is built to check it)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    return parse_config(data, source=str(p))


def parse_config(data: Any, source: str = "<config>") -> PlanConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        config = PlanConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in err.errors()]
        if len(lines) == 1:  # the usual case: one line naming the field
            raise ConfigError(f"{source}: invalid config: {lines[0]}") from None
        listing = "".join(f"\n  {line}" for line in lines)
        raise ConfigError(f"{source}: invalid config ({len(lines)} errors):{listing}") from None
    try:
        config.graph.build()
    except ConfigError as err:
        raise ConfigError(f"{source}: graph: {err}") from None
    return config


def dump_config(config: PlanConfig) -> str:
    """The resolved config (defaults filled in) as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_hash(config: PlanConfig) -> str:
    # the executor is not part of a plan's identity: resume on another one is allowed
    canonical = json.dumps(config.model_dump(mode="json", exclude={"executor"}), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
