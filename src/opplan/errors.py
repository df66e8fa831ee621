"""Errors that the command line turns into clear messages and exit codes."""

from __future__ import annotations

__all__ = ["ConfigError", "OpplanError", "RunDirError"]


class OpplanError(Exception):
    """Base class of every error opplan raises on purpose."""


class ConfigError(OpplanError, ValueError):
    """A config, annotation list or option is invalid (the CLI exits with code 2)."""


class RunDirError(ConfigError):
    """A run directory cannot be used as asked (e.g. a different config without --resume).

    Raised before any work starts, so the CLI exits with code 2 as for a bad config.
    """
