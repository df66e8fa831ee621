"""Parameters and FLOPs per view (paper Table 7 "GFLOPs × views", Table 8).

FLOPs are counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts
**FLOPs, not multiply-adds**: a convolution or matmul costs 2 FLOPs per multiply-add
(e.g. ``2 * M * N * K`` for a matmul). Only convolutions and matmuls (and attention) are
counted; BatchNorm, ReLU, pooling and additions are not — they are < 1% for these networks.
Divide by 2 to compare with papers that report multiply-adds as "FLOPs" (torchvision's
``_ops`` metadata, fvcore).

Counting runs on the ``meta`` device: shapes propagate, nothing is computed or allocated, so
a DG-P3D ResNet-152 at 16×224×224 is counted in about a second on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from opplan.models._registry import build_model, get_model_entry

__all__ = ["ModelCost", "count_flops", "count_params", "model_costs"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_thw: Sequence[int], in_channels: int = 3) -> int:
    """FLOPs (2 per multiply-add) of one forward pass of one clip of size ``input_thw``.

    The clip is created on the device of ``model``'s parameters (use a ``meta`` model to
    count without computing). The model is put in eval mode.

    Args:
        model: the network.
        input_thw: (T, H, W) of the clip (one view).
        in_channels: channels of the clip.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    clip = torch.zeros(1, in_channels, *input_thw, device=device)
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class ModelCost:
    """One row of ``opplan models``: cost of one view of size ``input_thw``.

    Attributes:
        name: registry name.
        family: registry family.
        params: number of parameters.
        flops: FLOPs per view (2 per multiply-add); ``None`` when the model cannot take
            the input (``error`` says why).
        input_thw: the view size (T, H, W).
        error: why ``flops`` is missing, else ``""``.
    """

    name: str
    family: str
    params: int
    flops: int | None
    input_thw: tuple[int, int, int]
    error: str = ""

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / 1e9


def model_costs(
    names: Iterable[str], input_thw: Sequence[int] = (16, 224, 224), num_classes: int = 400
) -> list[ModelCost]:
    """Parameters and FLOPs per view of each registered model, built on the meta device."""
    thw = (int(input_thw[0]), int(input_thw[1]), int(input_thw[2]))
    rows = []
    for name in names:
        entry = get_model_entry(name)
        with torch.device("meta"):
            model = build_model(name, num_classes)
        try:
            flops: int | None = count_flops(model, thw)
            error = ""
        except RuntimeError as err:  # input smaller than the network's receptive field
            flops, error = None, str(err).splitlines()[0]
        rows.append(ModelCost(name, entry.family, count_params(model), flops, thw, error))
    return rows
