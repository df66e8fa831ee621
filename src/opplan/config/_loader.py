"""Reading configs: YAML errors name the line, schema errors name the field."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from opplan.config._schema import PlanConfig
from opplan.errors import ConfigError

__all__ = [
    "COSMETIC_FIELDS",
    "config_hash",
    "config_identity",
    "dump_config",
    "dumped_config_hash",
    "legacy_config_data",
    "load_config",
    "parse_config",
]


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


# Fields that cannot change what a plan or a training computes, so a resume may change
# them: the run's label; where transitions run (executor: the same plan.json on any);
# the simulated trainer's sleep per epoch; DataLoader workers (every random draw derives
# from (seed, epoch, index), opplan.video.datasets); the bad-video budget (it only decides
# when to stop; raising it and resuming is the documented remedy); keeping checkpoints.
# Everything else (device, threads, eval_batch, decoding backend, ...) may change the bits
# of a score, hence a knee, and blocks a resume.
COSMETIC_FIELDS: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("executor",),
    ("planner", "keep_checkpoints"),
    ("trainer", "epoch_delay"),
    ("trainer", "data", "num_workers"),
    ("trainer", "data", "persistent_workers"),
    ("trainer", "data", "prefetch_factor"),
    ("trainer", "data", "max_bad_fraction"),
)
_EXPLICIT_UNUSED = ("samplings", "clip_lengths", "learning_rates")


def _resolved(config: PlanConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    if not data["graph"].get("extra_axes"):  # configs without extra axes dump as before
        data["graph"].pop("extra_axes", None)
    if data["graph"]["kind"] == "explicit":  # the edges name every state; the axes are unused
        for key in _EXPLICIT_UNUSED:
            data["graph"].pop(key, None)
    return data


def dump_config(config: PlanConfig) -> str:
    """The resolved config (defaults filled in) as YAML."""
    return yaml.safe_dump(_resolved(config), sort_keys=False)


def config_identity(config: PlanConfig) -> dict[str, Any]:
    """The config without its :data:`COSMETIC_FIELDS`: what a run's results depend on."""
    return _without_cosmetic(_resolved(config))


def _without_cosmetic(data: dict[str, Any]) -> dict[str, Any]:
    for path in COSMETIC_FIELDS:
        node: Any = data
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return data


def _digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def config_hash(config: PlanConfig) -> str:
    """Hash of :func:`config_identity`; a resume needs the same one."""
    return _digest(config_identity(config))


def dumped_config_hash(data: dict[str, Any]) -> str:
    """:func:`config_hash` of a config as :func:`dump_config` wrote it, computed from the
    dump alone -- with the schema of the opplan that wrote it, not today's (a field added
    since is absent from the dump and from its hash)."""
    return _digest(_without_cosmetic(copy.deepcopy(data)))


def legacy_config_data(data: Any) -> Any:
    """A config dict as older versions dumped it, readable by today's schema: an explicit
    graph's unused axes (dumped at their defaults before they were refused) are dropped."""
    graph = data.get("graph") if isinstance(data, dict) else None
    if isinstance(graph, dict) and graph.get("kind") == "explicit":
        data = {**data, "graph": {k: v for k, v in graph.items() if k not in _EXPLICIT_UNUSED}}
    return data
