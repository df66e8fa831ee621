"""Global-context residual of G-P3D (paper §4, "Global context").

The block output of every G-P3D residual block receives a global residual learned from the
global-average-pooled residual branch and broadcast to every position (a squeeze-style MLP, in
the spirit of GCNet's "add" fusion, cf. timm ``layers/global_context.py``)::

    branch (N, C, T, H, W) --GAP--> (N, C) --FC C->C/r--ReLU--FC C/r->C--> (N, C, 1, 1, 1)
                                                                                |
    block output = shortcut + branch + broadcast(...) -------------------------+

The second FC is zero-initialised, so a freshly built (or inflated) G-P3D computes exactly the
plain P3D function and training starts from there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["GlobalContext"]


class GlobalContext(nn.Module):
    """Global residual: GAP → FC(C→C/r) → ReLU → FC(C/r→C), returned as (N, C, 1, 1, 1).

    Args:
        channels: C, the channels of the residual branch.
        reduction: r; the hidden width is ``max(channels // reduction, min_hidden)``.
        min_hidden: lower bound on the hidden width, so tiny models keep a usable MLP.

    Example:
        >>> gc = GlobalContext(64)
        >>> gc(torch.randn(2, 64, 4, 8, 8)).shape
        torch.Size([2, 64, 1, 1, 1])
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, min_hidden)
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the second FC so the module starts as the zero function (§4)."""
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        context = torch.flatten(nn.functional.adaptive_avg_pool3d(x, 1), 1)
        context = self.fc2(self.act(self.fc1(context)))
        return context[:, :, None, None, None]
