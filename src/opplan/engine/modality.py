"""RGB or optical flow (``data.modality``, §5.5's two streams): what changes for flow.

A flow clip is 2×T×H×W (x, y) read from flow folders (:class:`~opplan.video.io.FlowOpener`),
normalised around 128, flipped with x negated; the network takes ``in_channels: 2``. The
samplers, crops, planner and recipes are shared with RGB.
"""

from __future__ import annotations

from typing import Any

from opplan.config import DataConfig, ModelConfig
from opplan.video.transforms import FLOW_MEAN, FLOW_STD, TransformConfig

__all__ = ["flow_dataset_options", "modality_model", "modality_transform"]


def modality_transform(data: DataConfig, transform: TransformConfig) -> TransformConfig:
    """``transform`` for ``data.modality``: flow gets 2 channels and the flow normalisation."""
    if data.modality != "flow":
        return transform
    from dataclasses import replace

    return replace(transform, modality="flow", mean=FLOW_MEAN, std=FLOW_STD)


def modality_model(model: ModelConfig, data: DataConfig) -> ModelConfig:
    """The model config with ``in_channels: 2`` for flow (unless the user set it)."""
    if data.modality != "flow" or "in_channels" in model.options:
        return model
    return model.model_copy(update={"options": {**model.options, "in_channels": 2}})


def flow_dataset_options(data: DataConfig, options: dict[str, Any]) -> dict[str, Any]:
    """Dataset options for flow: every record is a flow folder, read by a FlowOpener
    (``data.cache: memory`` keeps the decoded flow, as for RGB)."""
    if data.modality != "flow":
        return options
    from opplan.video.io import FlowOpener

    opener = FlowOpener(data.flow_template, data.frame_start_index, cache=data.cache == "memory")
    return {**options, "reader_factory": opener}
