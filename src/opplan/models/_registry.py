"""Model registry: ``register_model`` / ``build_model`` / ``list_models`` (paper §5.4).

A found optimization path can be transferred to another network (§5.4: the DG-P3D path
trains I3D), so the trainer builds every network by name through this registry: the P3D
family, torchvision's video models, and any user ``nn.Module`` factory registered with
:func:`register_model`. Modelled on timm's ``_registry.py`` and torchvision's
``models/_api.py`` (duplicate names refused).
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from opplan.errors import ConfigError

__all__ = ["ModelEntry", "build_model", "get_model_entry", "list_models", "register_model"]

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)


@dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Attributes:
        name: registry name, e.g. ``"dg_p3d_resnet50"``.
        factory: ``factory(num_classes=..., **options) -> nn.Module``.
        family: ``"p3d"``, ``"torchvision"`` or ``"user"``.
        min_input: the smallest (T, H, W) clip the model accepts (tests use it).
        description: first line of the factory's docstring.
    """

    name: str
    factory: Factory
    family: str
    min_input: tuple[int, int, int]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str | None = None,
    *,
    family: str = "user",
    min_input: tuple[int, int, int] = (8, 32, 32),
) -> Callable[[F], F]:
    """Decorator registering ``factory(num_classes=..., **options) -> nn.Module`` under ``name``.

    Args:
        name: registry name; the function's ``__name__`` when omitted.
        family: a grouping label shown by ``opplan models``.
        min_input: smallest (T, H, W) clip the model accepts.

    Raises:
        ConfigError: the name is already registered.

    Example:
        >>> @register_model("my_net", min_input=(4, 16, 16))
        ... def my_net(num_classes: int = 10) -> nn.Module:
        ...     '''A linear probe.'''
        ...     return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
    """

    def decorator(factory: F) -> F:
        key = name or factory.__name__
        if key in _REGISTRY:
            raise ConfigError(f"model name {key!r} is already registered")
        doc = inspect.getdoc(factory) or ""
        t, h, w = min_input  # a list as well
        _REGISTRY[key] = ModelEntry(
            key, factory, family, (t, h, w), doc.splitlines()[0] if doc else ""
        )
        return factory

    return decorator


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by a shell pattern (``"dg_*"``)."""
    names = sorted(_REGISTRY)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` of ``name``.

    Raises:
        ConfigError: unknown name; the message lists the closest registered names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown model {name!r}{hint} (`opplan models` lists all {len(_REGISTRY)})"
        ) from None


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build the registered model ``name`` with ``num_classes`` outputs.

    Options set to ``None`` are dropped so the factory's defaults apply (as timm does).

    Args:
        name: a registered name (see :func:`list_models`).
        num_classes: number of classes of the classifier(s).
        **options: passed to the factory, e.g. ``drop_rate=0.9`` or ``frozen_bn=True``.

    Raises:
        ConfigError: unknown name, unknown option or invalid option value.

    Example:
        >>> net = build_model("dg_p3d_tiny", num_classes=5)
    """
    entry = get_model_entry(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ConfigError(
            f"model {name!r}: num_classes must be an integer >= 0, got {num_classes!r}"
        )
    kwargs = {k: v for k, v in options.items() if v is not None}
    try:
        inspect.signature(entry.factory).bind(num_classes=num_classes, **kwargs)
    except TypeError as err:
        raise ConfigError(f"model {name!r}: invalid options {sorted(kwargs)}: {err}") from None
    try:
        return entry.factory(num_classes=num_classes, **kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"model {name!r}: {err}") from err
