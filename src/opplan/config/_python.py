"""``trainer: {kind: python, factory: "package.module:make", options: {...}}``: your own loop.

The factory is called as ``make(checkpoint_dir, **options)`` and returns an object that
implements :class:`opplan.planning.Trainer`; it is built where transitions run (here, or in
each Ray actor), so its module must be importable there too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PythonTrainerConfig"]


class PythonTrainerConfig(BaseModel):
    """A user's trainer, loaded by import path (opplan.cli._python_trainer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["python"]
    factory: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="'package.module:make', called as make(checkpoint_dir, **options)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the factory (plain YAML values)"
    )
    path: list[str] = Field(
        default_factory=list,
        description="folders put first on the import path before the factory is imported "
        "(relative ones from the current directory)",
    )
