"""Registry: names, errors, user factories (§5.4: any network can be planned)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from opplan.errors import ConfigError
from opplan.models import _registry, build_model, get_model_entry, list_models, register_model

EXPECTED = {
    *(f"{a}_resnet{d}" for a in ("p3d", "g_p3d", "dg_p3d") for d in (18, 34, 50, 101, 152)),
    "p3d_tiny",
    "g_p3d_tiny",
    "dg_p3d_tiny",
    "r3d_18",
    "mc3_18",
    "r2plus1d_18",
    "s3d",
}


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))


def test_the_paper_and_torchvision_names_are_registered() -> None:
    assert set(list_models()) == EXPECTED
    assert list_models() == sorted(EXPECTED)
    assert list_models("dg_*") == sorted(n for n in EXPECTED if n.startswith("dg_"))
    assert get_model_entry("s3d").family == "torchvision"
    assert get_model_entry("dg_p3d_resnet50").description.startswith("DG-P3D ResNet-50")


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'dg_p3d_resnet5'.*dg_p3d_resnet50"):
        build_model("dg_p3d_resnet5", 10)
    with pytest.raises(ConfigError, match="unknown model 'zzz'"):
        build_model("zzz", 10)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"'dg_p3d_tiny'.*widht"):
        build_model("dg_p3d_tiny", 10, widht=(8, 8, 8, 8))
    with pytest.raises(ConfigError, match=r"'r3d_18'.*invalid options"):
        build_model("r3d_18", 10, drop_rate=0.5)
    with pytest.raises(ConfigError, match="block_pattern"):
        build_model("p3d_tiny", 10, block_pattern="BA")
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("p3d_tiny", -1)


def test_options_override_defaults_and_none_is_dropped() -> None:
    net = build_model("dg_p3d_tiny", 4, drop_rate=0.9, widths=(8, 8, 16, 16), block_pattern=None)
    assert net.head.drop.p == 0.9 and net.num_features == 16
    assert net.block_pattern == "A"


def test_user_factories_can_be_registered_and_built(scratch_registry: None) -> None:
    @register_model("linear_probe", min_input=(2, 8, 8))
    def linear_probe(num_classes: int = 10, hidden: int = 4) -> nn.Module:
        """A user network."""
        return nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(3, num_classes))

    assert "linear_probe" in list_models()
    assert get_model_entry("linear_probe").family == "user"
    net = build_model("linear_probe", 5, hidden=2)
    assert net(torch.randn(2, 3, 2, 8, 8)).shape == (2, 5)


def test_duplicate_names_are_refused(scratch_registry: None) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_model("p3d_tiny")(lambda num_classes=1: nn.Identity())
