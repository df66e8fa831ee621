"""Load the trainer of ``trainer.kind: python``; every way it can be wrong exits 2 naming it."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path

from opplan.config._python import PythonTrainerConfig
from opplan.errors import ConfigError
from opplan.planning.api import missing_methods
from opplan.planning.protocol import Trainer

__all__ = ["load_python_trainer"]


def load_python_trainer(cfg: PythonTrainerConfig, checkpoint_dir: Path) -> Trainer:
    """``make(checkpoint_dir, **options)`` of ``cfg.factory``, checked against the protocol."""
    for folder in reversed(cfg.path):
        entry = os.path.abspath(folder)
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module_name, _, attr = cfg.factory.partition(":")
    where = f"trainer.factory {cfg.factory!r}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{where}: cannot import {module_name!r} ({err})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"{where}: module {module_name!r} has no callable {attr!r}")
    try:
        inspect.signature(factory).bind(checkpoint_dir, **cfg.options)
    except TypeError as err:
        raise ConfigError(f"trainer.options: {attr}() does not take them ({err})") from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass
    try:
        trainer = factory(checkpoint_dir, **cfg.options)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"trainer.options: {attr}() refused them ({type(err).__name__}: {err})"
        ) from None
    missing = missing_methods(trainer)
    if missing:
        raise ConfigError(
            f"{where}: {type(trainer).__name__} lacks {', '.join(missing)} of the Trainer "
            "protocol (opplan.planning.Trainer)"
        )
    assert isinstance(trainer, Trainer)
    return trainer
