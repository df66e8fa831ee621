"""Initialise a registered network from a video checkpoint of opplan, PySlowFast, MMAction2
or torchvision (paper §5.5: Kinetics-400 weights fine-tuned on HMDB51 / UCF101).

A file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only) and
its state dict is found by layout::

    {"model": {...}, "state": ...}          opplan (RUN/final/model.pt, planning checkpoints)
    {"model_state": {...}, "cfg": ...}      PySlowFast / PyTorchVideo
    {"state_dict": {...}, "meta": ...}      MMAction2 (also Lightning, timm)
    {"conv1.weight": tensor, ...}           a plain state dict (torchvision's ``state_dict()``)

Keys are then mapped onto the network's own by name:

* wrapper prefixes are removed, in any order and nesting, unless the network has a top-level
  module of that name: ``module.`` (DataParallel / DDP), ``_orig_mod.`` (``torch.compile``),
  ``backbone.`` (MMAction2 recognizers) and ``model.`` (Lightning);
* a classifier the network lacks is taken from MMAction2's ``cls_head.fc_cls`` or PySlowFast's
  ``head.projection`` when both sides have exactly one;
* BatchNorm's ``num_batches_tracked`` counters may be absent on either side.

What is left must fit exactly: a missing, unexpected or mis-shaped key is an error naming the
first few of each, raised before any training. Only the classifier may differ, and only in
its class count (its output rows); it is then re-initialised (§5.5, fine-tuning on a dataset
with other classes). A file without any classifier (a backbone) keeps the new one too.

Tensors are never matched by their shapes alone: equal shape sequences do not mean equal
layers. MMAction2's ResNet3d-18 and torchvision's R3D-18 have the same sequence of shapes, but
the former max-pools after its stem; within a stage every block has the same shapes, and
PySlowFast registers a block's shortcut before its branch where torchvision registers it after.
A shape match would load such files without a word and train a network that is not the one
the file describes. Rename the keys instead (a dict comprehension over the state dict) and
save the result as a plain state dict.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from opplan.errors import ConfigError
from opplan.models._utils import reset_classifier

__all__ = ["Weights", "WeightsFit", "fit_weights", "load_weights", "read_weights", "unwrap"]

# (key of the state dict inside the checkpoint, the framework writing it)
_LAYOUTS = (("model", "opplan"), ("model_state", "PySlowFast"), ("state_dict", "MMAction2"))
_WRAPPERS = ("module.", "_orig_mod.", "backbone.", "model.")
_FOREIGN_CLASSIFIERS = ("cls_head.fc_cls", "head.projection")  # MMAction2, PySlowFast
_COUNTER = "num_batches_tracked"
_SHOWN = 3  # keys named per kind in an error


@dataclass(frozen=True)
class Weights:
    """The state dict of a checkpoint and where it came from.

    Attributes:
        tensors: the state dict, keys as the file holds them.
        layout: ``"opplan"``, ``"PySlowFast"``, ``"MMAction2"`` or ``"state dict"``.
        source: the file (or a description) named in errors.
        extra: the checkpoint's other top-level entries (e.g. opplan's training ``state``).
    """

    tensors: dict[str, Tensor]
    layout: str
    source: str
    extra: dict[str, Any]


@dataclass(frozen=True)
class WeightsFit:
    """How a checkpoint was mapped onto a network (see :func:`fit_weights`).

    Attributes:
        layout: the checkpoint's layout.
        loaded: tensors taken from the file.
        stripped: the wrapper prefixes removed (``"module."``, ``"backbone."`` ...).
        renamed: foreign classifier prefix -> the network's (``{"cls_head.fc_cls": "fc"}``).
        new_classifier: the classifier was (re-)initialised: another class count, or the file
            has none; ``None`` when it was loaded.
        file_classes: the file's class count when it differs from the network's.
    """

    layout: str
    loaded: int
    stripped: tuple[str, ...]
    renamed: dict[str, str]
    new_classifier: str | None
    file_classes: int | None = None

    def summary(self) -> str:
        """One line for logs."""
        parts = [f"{self.layout} checkpoint, {self.loaded} tensors"]
        if self.stripped:
            parts.append(f"removed {', '.join(self.stripped)}")
        parts += [f"{src} -> {dst}" for src, dst in self.renamed.items()]
        if self.new_classifier is not None:
            parts.append(f"new classifier ({self.new_classifier})")
        return "; ".join(parts)


def read_weights(path: str | os.PathLike[str]) -> Weights:
    """Read a checkpoint of any known layout (``weights_only=True``).

    Raises:
        ConfigError: the file is missing, unreadable, refused by ``weights_only`` or holds no
            state dict; the message names the file.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise ConfigError(f"{source} not found")
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a bad or unsafe file
        raise ConfigError(f"{source} cannot be read: {_load_reason(err)}") from None
    return unwrap(obj, source)


def unwrap(obj: Any, source: str = "the checkpoint") -> Weights:
    """The state dict inside a loaded checkpoint ``obj`` (see the module docstring).

    Raises:
        ConfigError: ``obj`` is neither a state dict nor holds one under a known key.
    """
    if isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        return Weights(dict(obj), "state dict", source, {})
    if isinstance(obj, Mapping):
        for key, layout in _LAYOUTS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                bad = [k for k, v in inner.items() if not isinstance(v, Tensor)]
                if bad or not inner:
                    raise ConfigError(
                        f"{source}: its {key!r} is not a state dict of tensors"
                        + (f" (e.g. {bad[0]!r})" if bad else " (empty)")
                    )
                extra = {k: v for k, v in obj.items() if k != key}
                return Weights(dict(inner), layout, source, extra)
        found = ", ".join(repr(k) for k in list(obj)[:6]) or "none"
    else:
        found = type(obj).__name__
    raise ConfigError(
        f"{source}: no state dict found (top-level keys: {found}); expected a state dict or one "
        "under 'model' (opplan), 'model_state' (PySlowFast) or 'state_dict' (MMAction2)"
    )


def fit_weights(
    model: nn.Module,
    weights: Weights,
    *,
    new_classifier: bool = True,
    name: str | None = None,
) -> tuple[dict[str, Tensor], WeightsFit]:
    """Map ``weights`` onto ``model``'s state-dict keys and check that they fit.

    Args:
        model: the target network (not modified).
        weights: from :func:`read_weights` or :func:`unwrap`.
        new_classifier: accept a classifier of another class count (or none) and leave the
            model's own (fine-tuning, §5.5); ``False`` requires the file's classifier.
        name: the network's name in errors (its class name otherwise).

    Returns:
        The mapped state dict (without a classifier that is to be re-initialised) and a
        :class:`WeightsFit`.

    Raises:
        ConfigError: keys or shapes do not fit; names the first missing, unexpected and
            mis-shaped keys.
    """
    target = model.state_dict()
    roots = {k.split(".", 1)[0] for k in target}
    stripped: list[str] = []
    mapped: dict[str, Tensor] = {}
    for key, value in weights.tensors.items():
        new = _strip(key, roots, stripped)
        if new in mapped:
            raise ConfigError(
                f"{weights.source}: two keys map onto {new!r} after removing the wrapper "
                f"prefixes ({', '.join(stripped)})"
            )
        mapped[new] = value
    heads = _classifier_names(model)
    renamed = _rename_classifier(mapped, heads)
    head_keys = {k for k in target if any(k.startswith(h + ".") for h in heads)}
    for key in [k for k in mapped if k.endswith(_COUNTER) and k not in target]:
        del mapped[key]  # a BN counter the model does not keep
    for key in [k for k in target if k.endswith(_COUNTER) and k not in mapped]:
        mapped[key] = target[key]  # a file without BN counters (version-1 BN)
    missing = [k for k in target if k not in mapped]
    unexpected = [k for k in mapped if k not in target]
    misshaped = [k for k in target if k in mapped and mapped[k].shape != target[k].shape]

    reason: str | None = None
    file_classes: int | None = None
    if new_classifier and head_keys and not unexpected:
        if set(missing) == head_keys and not misshaped:
            reason = "the checkpoint has none"
        elif not missing and misshaped and set(misshaped) <= head_keys:
            rows = {tuple(mapped[k].shape[1:]) == tuple(target[k].shape[1:]) for k in misshaped}
            if rows == {True}:
                file_classes = int(mapped[misshaped[0]].shape[0])
                reason = f"{file_classes} classes in the checkpoint"
    if reason is not None:
        missing = misshaped = []
        mapped = {k: v for k, v in mapped.items() if k not in head_keys}
    if missing or unexpected or misshaped:
        how = f"by name after removing {', '.join(stripped)}" if stripped else "by name"
        raise ConfigError(
            _misfit(
                weights,
                name or type(model).__name__,
                missing,
                unexpected,
                [(k, tuple(mapped[k].shape), tuple(target[k].shape)) for k in misshaped],
                overlap=sum(1 for k in target if k in mapped and not k.endswith(_COUNTER)),
            )
            + f" (keys are matched {how}, never by shape alone)"
        )
    loaded = sum(1 for k in mapped if not (k.endswith(_COUNTER) and k not in weights.tensors))
    fit = WeightsFit(weights.layout, loaded, tuple(stripped), renamed, reason, file_classes)
    return mapped, fit


def load_weights(
    model: nn.Module,
    weights: Weights | str | os.PathLike[str],
    *,
    new_classifier: bool = True,
    name: str | None = None,
) -> WeightsFit:
    """Load a checkpoint of any known layout into ``model`` in place (see :func:`fit_weights`);
    a classifier of another class count is re-initialised with :func:`reset_classifier`.

    Example:
        >>> import torchvision
        >>> from opplan.models import build_model
        >>> source = torchvision.models.video.r3d_18(weights=None, num_classes=400)
        >>> net = build_model("r3d_18", num_classes=101)
        >>> fit = load_weights(net, unwrap(source.state_dict(), "r3d_18.pth"))
        >>> fit.new_classifier
        '400 classes in the checkpoint'
    """
    if not isinstance(weights, Weights):
        weights = read_weights(weights)
    state, fit = fit_weights(model, weights, new_classifier=new_classifier, name=name)
    if fit.new_classifier is not None and fit.file_classes is not None:
        reset_classifier(model, _num_classes(model))
    result = model.load_state_dict(state, strict=fit.new_classifier is None)
    assert not result.unexpected_keys, result.unexpected_keys  # checked by fit_weights
    return fit


def _strip(key: str, roots: set[str], stripped: list[str]) -> str:
    """``key`` without wrapper prefixes the target has no module of."""
    changed = True
    while changed:
        changed = False
        for wrapper in _WRAPPERS:
            if key.startswith(wrapper) and wrapper[:-1] not in roots:
                key = key[len(wrapper) :]
                changed = True
                if wrapper not in stripped:
                    stripped.append(wrapper)
    return key


def _classifier_names(model: nn.Module) -> list[str]:
    """Module names of the model's classifier(s), as :func:`reset_classifier` finds them."""
    getter = getattr(model, "get_classifier", None)
    head: Any = getter() if callable(getter) else None
    if head is None and isinstance(getattr(model, "fc", None), nn.Linear):
        head = model.fc
    classifier = getattr(model, "classifier", None)
    if head is None and isinstance(classifier, nn.Sequential) and len(classifier):
        head = classifier[-1]
    if head is None:
        return []
    names = {id(m): n for n, m in model.named_modules()}
    modules = list(head) if isinstance(head, nn.ModuleList) else [head]
    return [
        names[id(m)] for m in modules if id(m) in names and next(m.parameters(), None) is not None
    ]


def _rename_classifier(mapped: dict[str, Tensor], heads: list[str]) -> dict[str, str]:
    """MMAction2's ``cls_head.fc_cls`` / PySlowFast's ``head.projection`` -> the model's single
    classifier, when the file does not already hold that one."""
    if len(heads) != 1 or any(k.startswith(heads[0] + ".") for k in mapped):
        return {}
    found = [p for p in _FOREIGN_CLASSIFIERS if any(k.startswith(p + ".") for k in mapped)]
    if len(found) != 1:
        return {}
    prefix = found[0]
    for key in [k for k in mapped if k.startswith(prefix + ".")]:
        mapped[heads[0] + key[len(prefix) :]] = mapped.pop(key)
    return {prefix: heads[0]}


def _num_classes(model: nn.Module) -> int:
    heads = _classifier_names(model)
    weight = model.get_parameter(f"{heads[0]}.weight")
    return int(weight.shape[0])


def _misfit(
    weights: Weights,
    name: str,
    missing: list[str],
    unexpected: list[str],
    misshaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    overlap: int,
) -> str:
    """One line naming the first few missing, unexpected and mis-shaped keys."""

    def first(keys: list[str]) -> str:
        more = f", ... {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
        return ", ".join(keys[:_SHOWN]) + more

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({first(unexpected)})")
    if misshaped:
        shown = [f"{k} {a} in the file, {b} in the model" for k, a, b in misshaped]
        parts.append(f"{len(misshaped)} mis-shaped ({first(shown)})")
    hint = "; no key in common: a checkpoint of another network?" if overlap == 0 else ""
    return f"{weights.source} ({weights.layout}) does not fit {name}: {'; '.join(parts)}{hint}"


def _load_reason(err: Exception) -> str:
    """One line out of torch's (long) loading error, with a hint for framework objects."""
    text = str(err)
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if found is None:
        return text.strip().splitlines()[0] if text.strip() else type(err).__name__
    detail = found.group(1).split(". ")[0].strip()
    hint = " (only tensors and plain containers are loaded: weights_only=True)"
    if re.search(r"mmengine|mmcv", detail):
        hint += (
            "; an MMAction2 training checkpoint keeps logger objects: publish it first "
            "(tools/misc/publish_model.py) or torch.save its 'state_dict' alone"
        )
    elif "numpy" in detail:
        hint += "; numpy arrays (e.g. Caffe2 'blobs'): torch.save them as tensors first"
    return detail + hint
