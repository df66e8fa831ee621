"""Two-channel (optical flow) networks and their ImageNet inflation (issue 19, §5.5): the
first convolution's RGB kernel averaged over R, G, B and repeated for x and y (TSN's
cross-modality initialisation); every other tensor as for RGB."""

from __future__ import annotations

import torch
import torchvision

from opplan.models import build_model, inflate_from_2d


def test_tiny_flow_network_takes_2_channels_and_refuses_3():
    net = build_model("dg_p3d_tiny", 10, in_channels=2).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 2, 8, 32, 32))
    logits = out if isinstance(out, torch.Tensor) else out[0]
    assert logits.shape[-1] == 10
    try:
        net(torch.randn(1, 3, 8, 32, 32))
    except RuntimeError as err:
        assert "channels" in str(err)
    else:
        raise AssertionError("a 3-channel clip into a 2-channel net must fail")


def test_flow_inflation_averages_the_rgb_kernel_and_repeats_it():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().state_dict()
    flow = build_model("p3d_resnet18", 5, in_channels=2)
    rgb = build_model("p3d_resnet18", 5)
    report_flow = inflate_from_2d(flow, resnet)
    report_rgb = inflate_from_2d(rgb, resnet)
    assert report_flow.loaded == report_rgb.loaded
    assert report_flow.unexpected == ["fc.bias", "fc.weight"]
    stem = flow.state_dict()["stem.conv.weight"]  # (64, 2, k_t, 7, 7)
    assert stem.shape[1] == 2
    centre = stem.shape[2] // 2
    mean = resnet["conv1.weight"].mean(dim=1)
    for channel in range(2):
        torch.testing.assert_close(stem[:, channel, centre], mean)
    assert stem[:, :, :centre].abs().sum() == 0  # the other taps as for RGB (zero)
    flow_sd, rgb_sd = flow.state_dict(), rgb.state_dict()
    for key in report_rgb.loaded:
        if key != "stem.conv.weight":
            torch.testing.assert_close(flow_sd[key], rgb_sd[key])
