"""Validated run configuration (YAML -> pydantic): unknown keys and wrong types are rejected
with the field's path before any work starts (the CLI exits with code 2)."""

from __future__ import annotations

from opplan.config._executor import ExecutorConfig
from opplan.config._loader import (
    COSMETIC_FIELDS,
    config_hash,
    config_identity,
    dump_config,
    dumped_config_hash,
    legacy_config_data,
    load_config,
    parse_config,
)
from opplan.config._schema import (
    GraphConfig,
    PlanConfig,
    PlannerConfig,
    SimulatedTrainerConfig,
)
from opplan.config._video import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    SyntheticConfig,
    VideoTrainerConfig,
)

__all__ = [
    "COSMETIC_FIELDS",
    "DataConfig",
    "ExecutorConfig",
    "GraphConfig",
    "ModelConfig",
    "OptimConfig",
    "PlanConfig",
    "PlannerConfig",
    "SimulatedTrainerConfig",
    "SyntheticConfig",
    "VideoTrainerConfig",
    "config_hash",
    "config_identity",
    "dump_config",
    "dumped_config_hash",
    "legacy_config_data",
    "load_config",
    "parse_config",
]
