"""P3D / G-P3D / DG-P3D structure (paper §4, Fig. 3)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from opplan.errors import ConfigError
from opplan.models import (
    BasicBlock,
    Bottleneck,
    DualHeadFeatures,
    DualHeadLogits,
    P3DConv,
    P3DResNet,
    build_model,
    reset_classifier,
)

FIG3 = {
    "stem": (64, 4, 56, 56),
    "res2": (256, 4, 56, 56),
    "res3": (512, 4, 28, 28),
    "res4": (1024, 4, 14, 14),
    "res5": (2048, 4, 7, 7),  # temporal head
    "spatial_pool": (1024, 1, 14, 14),
    "spatial_res5": (2048, 1, 14, 14),  # spatial head
}


def test_fig3_shapes_for_a_16x224x224_clip() -> None:
    """Every feature map of Fig. 3, exactly, on the meta device (shapes only, no compute)."""
    with torch.device("meta"):
        net = build_model("dg_p3d_resnet50", 400)
        feats = net.forward_intermediates(torch.empty(2, 3, 16, 224, 224))
        out = net(torch.empty(2, 3, 16, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == FIG3
    assert isinstance(out, DualHeadLogits)
    assert out.temporal.shape == out.spatial.shape == (2, 400)


def test_stem_is_4x7x7_with_temporal_stride_4_then_1x3x3_max_pool() -> None:
    net = build_model("dg_p3d_resnet50", 10)
    assert net.stem.conv.kernel_size == (4, 7, 7)
    assert net.stem.conv.stride == (4, 2, 2)
    assert net.stem.pool.kernel_size == (1, 3, 3)
    assert net.stem.pool.stride == (1, 2, 2)


@pytest.mark.parametrize(
    ("name", "block", "depths"),
    [
        ("p3d_resnet18", BasicBlock, (2, 2, 2, 2)),
        ("p3d_resnet34", BasicBlock, (3, 4, 6, 3)),
        ("p3d_resnet50", Bottleneck, (3, 4, 6, 3)),
        ("p3d_resnet101", Bottleneck, (3, 4, 23, 3)),
        ("p3d_resnet152", Bottleneck, (3, 8, 36, 3)),
    ],
)
def test_depths(name: str, block: type, depths: tuple[int, ...]) -> None:
    with torch.device("meta"):
        net = build_model(name, 10)
    stages = (net.res2, net.res3, net.res4, net.res5)
    assert tuple(len(s) for s in stages) == depths
    assert all(isinstance(b, block) for s in stages for b in s)


def test_every_3x3_is_a_1x3x3_spatial_then_3x1x1_temporal_conv() -> None:
    with torch.device("meta"):
        net = build_model("p3d_resnet50", 10)
    convs = [m for m in net.modules() if isinstance(m, P3DConv)]
    assert len(convs) == 16  # one per bottleneck block
    assert all(c.pattern == "A" for c in convs)
    assert all(c.spatial.kernel_size == (1, 3, 3) for c in convs)
    assert all(c.temporal.kernel_size == (3, 1, 1) for c in convs)
    kernels = {m.kernel_size for m in net.modules() if isinstance(m, torch.nn.Conv3d)}
    assert (3, 3, 3) not in kernels


def test_block_pattern_abc_cycles_over_the_whole_network() -> None:
    with torch.device("meta"):
        net = build_model("dg_p3d_resnet50", 10, block_pattern="ABC")
    trunk = [b.conv2.pattern for s in (net.res2, net.res3, net.res4, net.res5) for b in s]
    assert "".join(trunk) == ("ABC" * 6)[:16]
    assert [b.conv2.pattern for b in net.spatial_res5] == trunk[-3:]


@pytest.mark.parametrize("pattern", ["A", "B", "C"])
def test_p3d_patterns_compute_their_formula(pattern: str) -> None:
    conv = P3DConv(4, 4, stride=1, pattern=pattern).eval()
    x = torch.randn(1, 4, 3, 5, 5)
    with torch.no_grad():
        s = conv.bn_s(conv.spatial(x))
        expected = {
            "A": conv.bn_t(conv.temporal(torch.relu(s))),
            "B": s + conv.bn_t(conv.temporal(x)),
            "C": torch.relu(s) + conv.bn_t(conv.temporal(torch.relu(s))),
        }[pattern]
        torch.testing.assert_close(conv(x), expected)


def test_global_context_starts_as_plain_p3d() -> None:
    """G-P3D with its zero-initialised second FC computes exactly P3D's function."""
    p3d = build_model("p3d_tiny", 4).eval()
    g_p3d = build_model("g_p3d_tiny", 4).eval()
    missing, unexpected = g_p3d.load_state_dict(p3d.state_dict(), strict=False)
    assert not unexpected and all(".gc." in k for k in missing)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(g_p3d(x), p3d(x))
        for m in g_p3d.modules():
            if hasattr(m, "gc") and m.gc is not None:
                torch.nn.init.normal_(m.gc.fc2.weight)
        assert not torch.allclose(g_p3d(x), p3d(x))


@pytest.mark.parametrize("thw", [(8, 32, 32), (16, 32, 32), (8, 64, 64), (16, 64, 64)])
def test_tiny_dual_head_works_on_the_demo_clip_sizes(thw: tuple[int, int, int]) -> None:
    net = build_model("dg_p3d_tiny", 5)
    feats = net.forward_intermediates(torch.randn(2, 3, *thw))
    assert all(v.numel() > 0 for v in feats.values())
    t, h, w = thw
    assert feats["res5"].shape == (2, 128, t // 2, h // 16, w // 16)
    assert feats["spatial_res5"].shape == (2, 128, max(t // 8, 1), h // 8, w // 8)


def test_spatial_head_time_pool_is_clipped_to_short_clips() -> None:
    """A clip whose res4 has fewer than 4 time steps pools them all (no zero-size maps)."""
    net = build_model("dg_p3d_tiny", 5)
    feats = net.forward_intermediates(torch.randn(2, 3, 4, 32, 32))  # res4 has T=2
    assert feats["spatial_pool"].shape[2] == 1
    torch.testing.assert_close(feats["spatial_pool"], feats["res4"].amax(2, keepdim=True))


def test_forward_is_forward_head_of_forward_features() -> None:
    net = build_model("dg_p3d_tiny", 5).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        feats = net.forward_features(x)
        assert isinstance(feats, DualHeadFeatures)
        out = net(x)
        torch.testing.assert_close(net.forward_head(feats), out)
        pooled = net.forward_head(feats, pre_logits=True)
    assert pooled.temporal.shape == pooled.spatial.shape == (2, 128)


def test_reset_classifier_changes_the_class_count_of_both_heads() -> None:
    net = build_model("dg_p3d_tiny", 5)
    net.reset_classifier(7)
    assert net.num_classes == 7
    assert [fc.out_features for fc in net.get_classifier()] == [7, 7]
    out = net(torch.randn(2, 3, 8, 32, 32))
    assert out.temporal.shape == out.spatial.shape == (2, 7)


def test_reset_classifier_keeps_device_and_dtype() -> None:
    net = build_model("dg_p3d_tiny", 5).to(torch.float64)
    net.reset_classifier(3)
    assert {p.dtype for p in net.parameters()} == {torch.float64}
    with torch.device("meta"):
        meta = build_model("p3d_tiny", 5)
    meta.reset_classifier(2)
    assert meta.get_classifier().weight.is_meta


@pytest.mark.parametrize("name", ["p3d_tiny", "r2plus1d_18", "s3d"])
def test_reset_classifier_helper_works_for_other_families(name: str) -> None:
    net = build_model(name, 5).eval()
    reset_classifier(net, 2)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 8, 32, 32)).shape == (1, 2)


def test_reset_classifier_helper_rejects_unknown_heads() -> None:
    with pytest.raises(ConfigError, match="cannot reset the classifier"):
        reset_classifier(torch.nn.Sequential(torch.nn.Flatten()), 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block": "wide"}, "block must be one of"),
        ({"block_pattern": "AB"}, "block_pattern must be"),
        ({"layers": (1, 1, 1)}, "4 positive entries"),
        ({"spatial_pool_t": 0}, "spatial_pool_t"),
    ],
)
def test_invalid_options_raise(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        P3DResNet(3, **options)  # type: ignore[arg-type]


def test_fig3_shapes_computed_for_real() -> None:
    """The same Fig. 3 shapes with real tensors (the meta test could not catch a kernel bug)."""
    net = build_model("dg_p3d_resnet50", 400).eval()
    with torch.no_grad():
        feats = net.forward_intermediates(torch.randn(1, 3, 16, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == FIG3
    assert all(torch.isfinite(v).all() for v in feats.values())


with torch.device("meta"):
    _META_TINY = build_model("dg_p3d_tiny", 3).eval()


@settings(max_examples=40, deadline=None)
@given(t=st.integers(2, 40), h=st.integers(16, 160), w=st.integers(16, 160))
def test_tiny_dual_head_shapes_follow_the_strides_for_any_clip(t: int, h: int, w: int) -> None:
    """Stem: stride-1 3×3×3 conv, then a 2×3×3 max pool of stride 2 (floor in time, ceil in
    space), then spatial stride 2 per stage (ceil for odd sizes); the spatial head pools
    min(4, T') frames with stride min(4, T')."""
    with torch.device("meta"):
        feats = _META_TINY.forward_intermediates(torch.empty(1, 3, t, h, w))
    t4 = t // 2
    k = min(4, t4)
    assert tuple(feats["res5"].shape[2:]) == (t4, -(-h // 16), -(-w // 16))
    assert tuple(feats["spatial_res5"].shape[2:]) == (t4 // k, -(-h // 8), -(-w // 8))
    assert all(v.numel() > 0 for v in feats.values())
