"""The network of a video trainer: the initialization's factory (random, inflated ImageNet
weights, a video checkpoint) and the model of a checkpoint opplan wrote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from opplan.config import ModelConfig
from opplan.errors import ConfigError
from opplan.models import build_model, fit_weights, load_weights, read_weights
from opplan.models.foreign import unwrap
from opplan.planning import TrainingState

__all__ = ["checkpoint_model", "make_model_factory"]


def make_model_factory(
    model: ModelConfig, num_classes: int, log: Callable[[str], None] | None = None
) -> Callable[[], nn.Module]:
    """A factory of the initialization: random, inflated ImageNet weights, or a video model
    (a checkpoint of opplan, PySlowFast, MMAction2 or torchvision, checked here to fit)."""
    kind, _, path = model.init.partition(":")
    if kind not in ("random", "imagenet", "checkpoint") or (kind != "random") != bool(path):
        raise ConfigError(
            "model.init must be 'random', 'imagenet:PATH' or 'checkpoint:PATH', "
            f"got {model.init!r}"
        )
    if path and not Path(path).is_file():
        raise ConfigError(f"model.init: {path} not found")
    if kind == "imagenet":
        from opplan.models.inflate import load_2d_state_dict

        try:
            load_2d_state_dict(path)
        except ConfigError as err:
            raise ConfigError(f"model.init: {err}") from None
    net = build_model(model.name, num_classes, **model.options)  # fail fast on a bad name
    if kind == "checkpoint":  # fail fast on an unreadable, unsafe or ill-fitting checkpoint
        try:
            _, fit = fit_weights(net, read_weights(path), name=model.name)
        except ConfigError as err:
            raise ConfigError(f"model.init: {err}") from None
        if log is not None:
            log(f"model.init: {path}: {fit.summary()}")

    def factory() -> nn.Module:
        net = build_model(model.name, num_classes, **model.options)
        if kind == "imagenet":
            from opplan.models import inflate_from_2d

            inflate_from_2d(net, path)
        elif kind == "checkpoint":  # another class count: new classifier (§5.5)
            load_weights(net, path, name=model.name)
        return net

    return factory


def checkpoint_model(
    model: ModelConfig, checkpoint: dict[str, Any], num_classes: int, source: str = "--checkpoint"
) -> tuple[TrainingState, nn.Module]:
    """The training state and network of a checkpoint opplan wrote (``opplan evaluate``).

    The state (sampling, clip length) sets the test protocol, so a checkpoint without one (a
    bare state dict, PySlowFast, MMAction2) is refused: fine-tune from it with ``model.init:
    checkpoint:PATH`` instead. Another network or class count is refused naming the keys.
    ``source`` starts every message (``opplan evaluate``: ``--checkpoint PATH``)."""
    weights = unwrap(checkpoint, source)
    text = weights.extra.get("state")
    if weights.layout != "opplan" or text is None:
        raise ConfigError(
            f"{source}: a {weights.layout} checkpoint without opplan's training 'state' "
            "(the sampling and clip length to test in); evaluate a model opplan trained "
            "(RUN/final/model.pt), or fine-tune from this one with model.init: checkpoint:PATH"
        )
    try:
        state = TrainingState.parse(text if isinstance(text, str) else repr(text))
    except ValueError as err:
        raise ConfigError(f"{source}: its 'state': {err}") from None
    if state.is_initial:
        raise ConfigError(f"{source}: its 'state' is 'initial', not a trained state")
    net = build_model(model.name, num_classes, **model.options)
    try:
        load_weights(net, weights, new_classifier=False, name=model.name)
    except ConfigError as err:
        raise ConfigError(f"{err}{_channels_hint(net, weights.tensors)}") from None
    return state, net


def _channels_hint(net: nn.Module, tensors: dict[str, Any]) -> str:
    """For a stem of another input width: the two streams' configs swapped (§5.5: RGB 3
    channels, flow 2, ``data.modality``)."""
    for key, ours in net.state_dict().items():
        if ours.ndim == 5:  # the first 3D convolution: [out, in, t, h, w]
            theirs = tensors.get(key)
            if theirs is None or theirs.ndim != 5 or theirs.shape[1] == ours.shape[1]:
                return ""
            stream = {2: "a flow", 3: "an RGB"}.get(int(theirs.shape[1]), "another")
            return (
                f"; its network takes {theirs.shape[1]} input channels ({stream} model?), "
                f"this config's {ours.shape[1]}: evaluate it with its own stream's config "
                "(data.modality: flow for 2, rgb for 3)"
            )
    return ""
