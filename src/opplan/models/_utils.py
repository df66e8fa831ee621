"""Helpers that work on any registered network (P3D family and torchvision's models)."""

from __future__ import annotations

from typing import cast

from torch import nn

from opplan.errors import ConfigError

__all__ = ["reset_classifier"]


def reset_classifier(model: nn.Module, num_classes: int) -> None:
    """Give ``model`` a freshly initialised classifier with ``num_classes`` outputs.

    Used when a network trained on one dataset is fine-tuned on another (§5.5: Kinetics-400
    then HMDB51/UCF101). Handles models with a ``reset_classifier`` method (P3D family,
    timm-style), a final ``fc`` Linear (torchvision's R3D / MC3 / R(2+1)D) and S3D's 1×1×1
    convolution classifier.

    Raises:
        ConfigError: the model's classifier is not recognised.
    """
    reset = getattr(model, "reset_classifier", None)
    if callable(reset):
        reset(num_classes)
        return
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear):
        model.fc = nn.Linear(fc.in_features, num_classes, device=fc.weight.device)
        return
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Sequential) and isinstance(classifier[-1], nn.Conv3d):
        last = classifier[-1]
        classifier[-1] = nn.Conv3d(
            last.in_channels,
            num_classes,
            cast("tuple[int, int, int]", last.kernel_size),
            bias=True,
            device=last.weight.device,
        )
        return
    raise ConfigError(
        f"cannot reset the classifier of {type(model).__name__}: no reset_classifier(), "
        "fc Linear or classifier Conv3d"
    )
