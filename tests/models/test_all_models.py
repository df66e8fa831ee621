"""Forward/backward of every registered network (timm's tests/test_models.py pattern)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from opplan.models import (
    DualHeadLogits,
    build_model,
    fuse_heads,
    get_model_entry,
    heads_loss,
    list_models,
)

NUM_CLASSES = 3
# The ResNet-101/152 variants take 1-2.5 s each on one core even at their minimum input;
# they differ from ResNet-50 only in depth (run them with `pytest -m slow`).
_SLOW = {n for n in list_models() if n.endswith(("resnet101", "resnet152"))}


def _params(names: list[str]) -> list[object]:
    return [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n for n in names]


def _step(model: nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    output = model(clips)
    loss = heads_loss(output, labels)
    loss.backward()
    return fuse_heads(output)


@pytest.mark.parametrize("name", _params(list_models()))
def test_forward_backward_every_model(name: str) -> None:
    """Finite outputs of the right shape, and a gradient on every parameter.

    Zero-initialised parts (the global context's second FC, the last BN of each residual
    branch with ``zero_init_last``) block the gradient of the layers before them on the very
    first step, so those get an all-zero (but present) gradient. We therefore take one SGD
    step and check again: after it every parameter must receive a non-zero gradient.
    """
    t, h, w = get_model_entry(name).min_input
    model = build_model(name, NUM_CLASSES)
    model.train()
    clips = torch.randn(2, 3, t, h, w)
    labels = torch.tensor([0, 2])
    scores = _step(model, clips, labels)
    assert scores.shape == (2, NUM_CLASSES)
    assert torch.isfinite(scores).all()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    _step(model, clips, labels)
    zero = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not zero, f"{name}: zero gradient after one step for {zero[:5]}"


@pytest.mark.parametrize("name", list_models("dg_*"))
def test_dual_head_models_return_both_heads(name: str) -> None:
    if name in _SLOW:
        pytest.skip("covered by the slow test")
    model = build_model(name, NUM_CLASSES).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *get_model_entry(name).min_input))
    assert isinstance(out, DualHeadLogits)
    assert out.temporal.shape == out.spatial.shape == (1, NUM_CLASSES)
    assert not torch.equal(out.temporal, out.spatial)


@pytest.mark.parametrize("name", ["p3d_tiny", "g_p3d_tiny", "r3d_18"])
def test_single_head_models_return_logits(name: str) -> None:
    model = build_model(name, NUM_CLASSES).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *get_model_entry(name).min_input))
    assert isinstance(out, torch.Tensor) and out.shape == (1, NUM_CLASSES)
