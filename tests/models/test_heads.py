"""The output contract: heads_loss (sum of the heads' CE) and fuse_heads (mean), §4."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from opplan.models import ClassifierHead, DualHeadLogits, build_model, fuse_heads, heads_loss


def test_loss_of_dual_heads_is_the_sum_of_their_cross_entropies() -> None:
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    y = torch.tensor([0, 4, 2, 2])
    out = DualHeadLogits(a, b)
    torch.testing.assert_close(heads_loss(out, y), F.cross_entropy(a, y) + F.cross_entropy(b, y))
    # Uniform zero logits: each head costs ln 5, the pair 2 ln 5.
    zeros = DualHeadLogits(torch.zeros(4, 5), torch.zeros(4, 5))
    assert abs(float(heads_loss(zeros, y)) - 2 * torch.log(torch.tensor(5.0)).item()) < 1e-6


def test_single_head_output_is_plain_cross_entropy_and_identity_fusion() -> None:
    a, y = torch.randn(3, 4), torch.tensor([1, 0, 3])
    torch.testing.assert_close(heads_loss(a, y), F.cross_entropy(a, y))
    assert fuse_heads(a) is a


def test_custom_criterion_is_applied_per_head() -> None:
    out = DualHeadLogits(torch.ones(2, 3), 3 * torch.ones(2, 3))
    total = heads_loss(out, torch.zeros(2, 3), criterion=lambda x, _: x.mean())
    assert float(total) == 4.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=6, max_size=6),
    st.lists(st.floats(-50, 50), min_size=6, max_size=6),
)
def test_fusion_is_the_mean_of_the_heads(t: list[float], s: list[float]) -> None:
    temporal = torch.tensor(t, dtype=torch.float64).view(2, 3)
    spatial = torch.tensor(s, dtype=torch.float64).view(2, 3)
    fused = fuse_heads(DualHeadLogits(temporal, spatial))
    torch.testing.assert_close(fused, (temporal + spatial) / 2)
    # Linear: fusing two views' outputs, or averaging the views' fused scores, agree.
    other = DualHeadLogits(spatial, -temporal)
    views = DualHeadLogits((temporal + other.temporal) / 2, (spatial + other.spatial) / 2)
    torch.testing.assert_close(fuse_heads(views), (fused + fuse_heads(other)) / 2)


def test_dg_model_gradient_flows_into_both_heads_from_the_summed_loss() -> None:
    net = build_model("dg_p3d_tiny", 3)
    heads_loss(net(torch.randn(2, 3, 8, 32, 32)), torch.tensor([0, 1])).backward()
    assert net.head.fc.weight.grad.abs().sum() > 0
    assert net.spatial_head.fc.weight.grad.abs().sum() > 0


def test_classifier_head_pools_drops_and_classifies() -> None:
    head = ClassifierHead(8, 3, drop_rate=0.5).eval()
    x = torch.randn(2, 8, 2, 3, 3)
    pooled = head(x, pre_logits=True)
    torch.testing.assert_close(pooled, x.mean(dim=(2, 3, 4)))
    torch.testing.assert_close(head(x), head.fc(pooled))
    head.reset(0)
    torch.testing.assert_close(head(x), pooled)
