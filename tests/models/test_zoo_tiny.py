"""The tiny P3D variants see the whole clip from initialisation (geometry for 32-64 px clips).

Regression tests for the demo networks staying near chance on the synthetic ``order`` task:
with the paper's stem and strided 1×1×1 shortcuts, a 32-px frame reaches res5 as 1×1 and, the
residual branches being zero-initialised, the heads read only the top-left ~4% of the pixels.
"""

from __future__ import annotations

import pytest
import torch

from opplan.models import BasicBlock, P3DResNet, build_model
from opplan.models._blocks import _downsample


def _pixels_reaching(net: torch.nn.Module, x: torch.Tensor, head: str) -> torch.Tensor:
    """Boolean (T, H, W) map: which input pixels the ``head`` features depend on (eval mode)."""
    x = x.clone().requires_grad_(True)
    feats = net.forward_features(x)
    f = feats if isinstance(feats, torch.Tensor) else getattr(feats, head)
    f.sum().backward()
    assert x.grad is not None
    return x.grad.abs().sum(dim=(0, 1)) > 0


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("p3d_tiny", "temporal"),
        ("g_p3d_tiny", "temporal"),
        ("dg_p3d_tiny", "temporal"),
        ("dg_p3d_tiny", "spatial"),
    ],
)
def test_tiny_heads_read_every_pixel_at_initialisation(name: str, head: str) -> None:
    net = build_model(name, 10).eval()
    seen = _pixels_reaching(net, torch.randn(1, 3, 8, 32, 32), head)
    assert seen.shape == (8, 32, 32)
    assert seen.all(), f"{name} {head} head reads {seen.float().mean():.0%} of the pixels"


def test_strided_shortcuts_without_avg_down_drop_three_quarters_of_the_positions() -> None:
    """The ResNet-v1 projection reads one position in four; ResNet-D (avg_down) reads all."""
    x = torch.randn(1, 4, 2, 8, 8, requires_grad=True)
    for avg_down, expected in ((False, 0.25), (True, 1.0)):
        down = _downsample(4, 8, 2, avg_down).eval()
        (grad,) = torch.autograd.grad(down(x).sum(), x)
        assert (grad.abs().sum(dim=(0, 1, 2)) > 0).float().mean().item() == expected


def test_avg_down_keeps_the_state_dict_keys_and_values() -> None:
    """Both shortcuts have the same parameters (``downsample.0/1``), so weights transfer and
    the 2D inflation maps them one to one; on a constant map they compute the same thing."""
    plain = BasicBlock(4, 8, stride=2).eval()
    avg = BasicBlock(4, 8, stride=2, avg_down=True).eval()
    assert plain.state_dict().keys() == avg.state_dict().keys()
    avg.load_state_dict(plain.state_dict())
    x = torch.randn(1, 4, 1, 1, 1).expand(2, 4, 3, 8, 8).contiguous()
    assert plain.downsample is not None and avg.downsample is not None
    torch.testing.assert_close(avg.downsample(x), plain.downsample(x))


def test_paper_networks_keep_the_paper_geometry() -> None:
    """The full-size networks are unchanged: 4×7×7 stem, 1×3×3 pool, strided 1×1×1 shortcut."""
    with torch.device("meta"):
        net = build_model("dg_p3d_resnet50", 10)
    assert net.stem.conv.kernel_size == (4, 7, 7)
    assert net.stem.pool.kernel_size == (1, 3, 3)
    assert net.res3[0].downsample[0].stride == (1, 2, 2)
    assert not net.avg_down


def test_tiny_stem_is_a_full_resolution_3x3x3_conv_then_2x3x3_max_pool() -> None:
    net = build_model("dg_p3d_tiny", 10)
    assert net.stem.conv.kernel_size == (3, 3, 3)
    assert net.stem.conv.stride == (1, 1, 1)
    assert net.stem.pool.kernel_size == (2, 3, 3)
    assert net.stem.pool.stride == (2, 2, 2)
    assert net.avg_down


def test_stem_options_are_checked() -> None:
    with pytest.raises(ValueError, match="stem_kernel"):
        P3DResNet(3, stem_kernel=4)
    with pytest.raises(ValueError, match="stem_pool_t"):
        P3DResNet(3, stem_pool_t=0)
