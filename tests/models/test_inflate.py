"""2D ImageNet ResNet -> P3D inflation: on a clip repeating one frame the features are the 2D
network's features of that frame."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from opplan.errors import ConfigError
from opplan.models import build_model, inflate_from_2d, load_2d_state_dict


@pytest.fixture(scope="module")
def resnet50() -> nn.Module:
    """A randomly initialised torchvision ResNet-50 with non-trivial BN statistics."""
    torch.manual_seed(1)
    net = torchvision.models.resnet50()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.running_mean, 0.0, 0.1)
            nn.init.uniform_(m.running_var, 0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
    return net.eval()


def _features_2d(net: nn.Module, frame: torch.Tensor) -> dict[str, torch.Tensor]:
    x = net.maxpool(net.relu(net.bn1(net.conv1(frame))))
    out = {"stem": x}
    for i in range(1, 5):
        x = getattr(net, f"layer{i}")(x)
        out[f"res{i + 1}"] = x
    # DG-P3D's spatial head = layer4 with spatial stride 1, on res4.
    layer4 = copy.deepcopy(net.layer4)
    layer4[0].conv2.stride = (1, 1)
    layer4[0].downsample[0].stride = (1, 1)
    out["spatial_res5"] = layer4(out["res4"])
    return out


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("dg_p3d_resnet50", {}),
        ("dg_p3d_resnet50", {"block_pattern": "ABC"}),
        ("p3d_resnet50", {"stem_kernel_t": 2, "stem_stride_t": 2}),
    ],
)
@pytest.mark.parametrize("stem", ["center", "mean"])
def test_repeated_frame_features_equal_the_2d_network(
    resnet50: nn.Module, name: str, options: dict[str, object], stem: str
) -> None:
    torch.manual_seed(0)
    net = build_model(name, 7, **options)
    report = inflate_from_2d(net, resnet50.state_dict(), stem=stem)  # type: ignore[arg-type]
    assert report.unexpected == ["fc.bias", "fc.weight"]
    assert all(".gc." in k or "head.fc" in k for k in report.missing)
    net.eval()
    frame = torch.randn(1, 3, 64, 64)
    clip = frame.unsqueeze(2).repeat(1, 1, 8, 1, 1)
    with torch.no_grad():
        feats3d = net.forward_intermediates(clip)
        feats2d = _features_2d(resnet50, frame)
    for key, f2d in feats2d.items():
        if key not in feats3d:
            continue
        f3d = feats3d[key]
        assert f3d.shape[2] >= 1
        for t in range(f3d.shape[2]):
            torch.testing.assert_close(f3d[:, :, t], f2d, rtol=1e-4, atol=1e-4 * f2d.abs().max())


def test_inflation_copies_kernels_and_sets_temporal_identity(resnet50: nn.Module) -> None:
    net = build_model("dg_p3d_resnet50", 3)
    report = inflate_from_2d(net, resnet50.state_dict())
    sd = resnet50.state_dict()
    torch.testing.assert_close(
        net.res3[1].conv2.spatial.weight[:, :, 0], sd["layer2.1.conv2.weight"]
    )
    torch.testing.assert_close(
        net.spatial_res5[2].conv3.weight[:, :, 0, 0, 0], sd["layer4.2.conv3.weight"][:, :, 0, 0]
    )
    stem = net.stem.conv.weight
    torch.testing.assert_close(stem[:, :, 2], sd["conv1.weight"])
    assert not stem[:, :, [0, 1, 3]].any()
    temporal = net.res4[0].conv2.temporal.weight
    assert torch.equal(temporal[:, :, 1, 0, 0], torch.eye(256))
    assert not temporal[:, :, [0, 2]].any()
    assert "res4.0.conv2.temporal.weight" in report.identity
    assert "spatial_res5.0.downsample.0.weight" in report.loaded


def test_loading_from_a_local_file(tmp_path: Path, resnet50: nn.Module) -> None:
    sd = {f"module.{k}": v for k, v in resnet50.state_dict().items()}
    path = tmp_path / "resnet50.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path)
    loaded = load_2d_state_dict(path)
    assert set(loaded) == set(resnet50.state_dict())
    net = build_model("p3d_resnet50", 3)
    assert len(inflate_from_2d(net, path).loaded) == len(
        [k for k in loaded if not k.startswith("fc.")]
    )


def test_bad_files_and_models_are_config_errors(tmp_path: Path, resnet50: nn.Module) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"junk\.pth"):
        load_2d_state_dict(tmp_path / "junk.pth")
    with pytest.raises(ConfigError, match="wrong depth"):
        inflate_from_2d(build_model("p3d_resnet18", 3), resnet50.state_dict())
    with pytest.raises(ConfigError, match="P3D-family"):
        inflate_from_2d(build_model("r3d_18", 3), resnet50.state_dict())
    with pytest.raises(ConfigError, match="stem"):
        inflate_from_2d(build_model("p3d_tiny", 3), {}, stem="first")  # type: ignore[arg-type]


def test_basic_block_depths_inflate_every_2d_tensor() -> None:
    r18 = torchvision.models.resnet18()
    report = inflate_from_2d(build_model("g_p3d_resnet18", 3), r18.state_dict())
    assert report.unexpected == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == len(r18.state_dict()) - 2
