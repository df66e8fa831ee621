"""Checkpoints of opplan, PySlowFast, MMAction2 and torchvision load into the matching network
(``opplan.models.foreign``, §5.5); ones that do not fit are refused naming the keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from opplan.config import ModelConfig
from opplan.engine.build import checkpoint_model, make_model_factory
from opplan.errors import ConfigError
from opplan.models import build_model, load_weights, read_weights
from opplan.models.foreign import unwrap


def _assert_equal(net: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = net.state_dict()
    assert set(expected) <= set(state)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def _save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def test_a_pyslowfast_checkpoint_loads_into_the_matching_network(tmp_path):
    source = build_model("dg_p3d_tiny", num_classes=7)
    path = _save(
        tmp_path / "checkpoint_epoch_00050.pyth",  # PySlowFast's name and layout
        {"epoch": 50, "model_state": source.state_dict(), "optimizer_state": {}, "cfg": "..."},
    )
    net = build_model("dg_p3d_tiny", num_classes=7)
    fit = load_weights(net, path)
    assert fit.layout == "PySlowFast" and fit.new_classifier is None
    _assert_equal(net, source.state_dict())


def test_pyslowfast_head_projection_becomes_the_classifier(tmp_path):
    source = build_model("p3d_tiny", num_classes=7)
    state = source.state_dict()
    rekeyed = {k.replace("head.fc.", "head.projection."): v for k, v in state.items()}
    net = build_model("p3d_tiny", num_classes=7)
    fit = load_weights(net, _save(tmp_path / "s.pyth", {"model_state": rekeyed}))
    assert fit.renamed == {"head.projection": "head.fc"}
    _assert_equal(net, source.state_dict())


def test_an_mmaction2_checkpoint_of_a_torchvision_backbone_loads(tmp_path):
    # MMAction2's Recognizer3D with backbone=dict(type="torchvision.r2plus1d_18"): the
    # backbone's fc is an Identity, the classifier is cls_head.fc_cls (I3DHead)
    source = torchvision.models.video.r2plus1d_18(weights=None, num_classes=10)
    state = {f"backbone.{k}": v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    state["cls_head.fc_cls.weight"] = source.fc.weight.detach().clone()
    state["cls_head.fc_cls.bias"] = source.fc.bias.detach().clone()
    meta = {"epoch": 100, "mmengine_version": "0.10.3", "dataset_meta": {"classes": ["a"]}}
    path = _save(tmp_path / "mmaction2.pth", {"meta": meta, "state_dict": state})
    net = build_model("r2plus1d_18", num_classes=10)
    fit = load_weights(net, path)
    assert fit.layout == "MMAction2"
    assert fit.stripped == ("backbone.",) and fit.renamed == {"cls_head.fc_cls": "fc"}
    _assert_equal(net, source.state_dict())


def test_an_mmaction2_checkpoint_of_a_p3d_backbone_loads_into_dg_p3d(tmp_path):
    source = build_model("dg_p3d_tiny", num_classes=4)
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    net = build_model("dg_p3d_tiny", num_classes=4)
    load_weights(net, _save(tmp_path / "m.pth", {"meta": {}, "state_dict": state}))
    _assert_equal(net, source.state_dict())


def test_a_torchvision_state_dict_loads_into_r3d_18(tmp_path):
    source = torchvision.models.video.r3d_18(weights=None, num_classes=400)
    path = _save(tmp_path / "r3d_18.pth", source.state_dict())
    net = build_model("r3d_18", num_classes=400)
    fit = load_weights(net, path)
    assert fit.layout == "state dict" and fit.new_classifier is None
    _assert_equal(net, source.state_dict())


@pytest.mark.parametrize("prefix", ["module.", "module.module.", "_orig_mod."])
def test_ddp_and_compile_prefixes_are_removed(tmp_path, prefix):
    source = build_model("g_p3d_tiny", num_classes=3)
    state = {prefix + k: v for k, v in source.state_dict().items()}
    net = build_model("g_p3d_tiny", num_classes=3)
    fit = load_weights(net, _save(tmp_path / "ddp.pt", {"model": state, "state": "x"}))
    assert fit.layout == "opplan"
    assert fit.stripped == tuple(dict.fromkeys(p + "." for p in prefix.split(".") if p))
    _assert_equal(net, source.state_dict())


def test_module_prefix_inside_an_mmaction2_backbone(tmp_path):
    source = build_model("p3d_tiny", num_classes=3)
    state = {f"module.backbone.{k}": v for k, v in source.state_dict().items()}
    net = build_model("p3d_tiny", num_classes=3)
    load_weights(net, _save(tmp_path / "m.pth", {"state_dict": state}))
    _assert_equal(net, source.state_dict())


@pytest.mark.parametrize(
    "layout",
    ["opplan", "PySlowFast", "MMAction2", "state dict", "torchvision", "MMAction2 torchvision"],
)
def test_another_class_count_reinitialises_only_the_classifier(tmp_path, layout):
    torchvision_net = layout.endswith("torchvision")
    name = "r3d_18" if torchvision_net else "dg_p3d_tiny"
    if torchvision_net:
        source = torchvision.models.video.r3d_18(weights=None, num_classes=400)
    else:
        source = build_model(name, num_classes=400)
    state = source.state_dict()
    mmaction = {  # MMAction2's torchvision backbone: fc removed, cls_head.fc_cls instead
        **{f"backbone.{k}": v for k, v in state.items() if not k.startswith("fc.")},
        **{f"cls_head.fc_cls.{k[3:]}": v for k, v in state.items() if k.startswith("fc.")},
    }
    obj: object = {
        "opplan": {"model": state, "state": "uniform 8f lr=0.01"},
        "PySlowFast": {"model_state": state},
        "MMAction2": {"state_dict": {f"backbone.{k}": v for k, v in state.items()}},
        "state dict": state,
        "torchvision": state,
        "MMAction2 torchvision": {"meta": {}, "state_dict": mmaction},
    }[layout]
    torch.manual_seed(1)
    fresh = build_model(name, num_classes=51)  # the classifier a fresh network gets
    torch.manual_seed(1)
    net = build_model(name, num_classes=51)
    path = _save(tmp_path / "k400.pt", obj)
    torch.manual_seed(2)
    fit = load_weights(net, path)
    assert fit.file_classes == 400 and fit.new_classifier == "400 classes in the checkpoint"
    heads = ("fc.",) if torchvision_net else ("head.fc.", "spatial_head.fc.")
    backbone = {k: v for k, v in state.items() if not k.startswith(heads)}
    classifier = {k for k in net.state_dict() if k.startswith(heads)}
    assert len(classifier) == 2 * len(heads) and backbone
    _assert_equal(net, backbone)
    for key in classifier:
        assert net.state_dict()[key].shape[0] == 51
        assert not torch.equal(net.state_dict()[key], fresh.state_dict()[key]) or key.endswith(
            "bias"
        ), key  # re-initialised now (seed 2), not the one built with the network (seed 1)


def test_a_backbone_without_a_classifier_keeps_the_new_one(tmp_path):
    source = build_model("p3d_tiny", num_classes=0)  # pooled features, no fc
    net = build_model("p3d_tiny", num_classes=12)
    fit = load_weights(net, _save(tmp_path / "b.pth", source.state_dict()))
    assert fit.new_classifier == "the checkpoint has none"
    _assert_equal(net, source.state_dict())
    assert net.get_classifier().out_features == 12


def test_a_backbone_shape_mismatch_is_never_dropped_silently(tmp_path):
    source = build_model("p3d_tiny", num_classes=5, widths=(16, 32, 64, 96))
    net = build_model("p3d_tiny", num_classes=5)
    with pytest.raises(ConfigError) as info:
        load_weights(net, _save(tmp_path / "w.pth", source.state_dict()), name="p3d_tiny")
    message = str(info.value)
    assert "w.pth (state dict) does not fit p3d_tiny" in message
    assert "mis-shaped (res5.0.conv1.spatial.weight (96, 64, 1, 3, 3) in the file" in message
    assert "\n" not in message


def test_a_wrong_network_names_missing_and_unexpected_keys(tmp_path):
    source = torchvision.models.video.r3d_18(weights=None, num_classes=10)
    net = build_model("dg_p3d_tiny", num_classes=10)
    with pytest.raises(ConfigError) as info:
        load_weights(net, _save(tmp_path / "r3d.pth", {"model_state": source.state_dict()}))
    message = str(info.value)
    assert "(PySlowFast) does not fit" in message
    assert "missing (stem.conv.weight, stem.bn.weight, stem.bn.bias, ..." in message
    assert "unexpected (stem.0.weight, stem.1.weight, stem.1.bias, ..." in message
    assert "no key in common" in message


def test_evaluate_requires_the_exact_classifier():
    source = build_model("p3d_tiny", num_classes=5)
    weights = unwrap({"model": source.state_dict(), "state": "uniform 4f lr=0.1"})
    with pytest.raises(ConfigError, match=r"1 mis-shaped|2 mis-shaped"):
        load_weights(build_model("p3d_tiny", num_classes=6), weights, new_classifier=False)


def test_unreadable_and_unsafe_files_are_named(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"garbage\.pt cannot be read"):
        read_weights(tmp_path / "garbage.pt")

    class Evil:
        def __reduce__(self):  # would run code under weights_only=False
            return (print, ("pwned",))

    torch.save({"model_state": {"w": torch.zeros(1)}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ConfigError, match=r"evil\.pt cannot be read: .*weights_only=True"):
        read_weights(tmp_path / "evil.pt")
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "nothing.pt")
    with pytest.raises(ConfigError, match=r"no state dict found \(top-level keys: 'epoch'"):
        read_weights(tmp_path / "nothing.pt")
    with pytest.raises(ConfigError, match=r"'model_state' is not a state dict of tensors"):
        unwrap({"model_state": {"w": 3}}, "x.pth")


def test_the_model_factory_checks_at_config_time_and_loads_every_layout(tmp_path):
    source = build_model("dg_p3d_tiny", num_classes=5)
    state = {f"module.backbone.{k}": v for k, v in source.state_dict().items()}
    path = _save(tmp_path / "mm.pth", {"meta": {}, "state_dict": state})
    logged: list[str] = []
    factory = make_model_factory(
        ModelConfig(name="dg_p3d_tiny", init=f"checkpoint:{path}"), 9, logged.append
    )
    assert logged and "MMAction2 checkpoint" in logged[0] and "new classifier" in logged[0]
    net = factory()
    assert net.get_classifier()[0].out_features == 9
    _assert_equal(net, {k: v for k, v in source.state_dict().items() if ".fc." not in k})
    wrong = _save(tmp_path / "p3d.pth", build_model("p3d_tiny", num_classes=5).state_dict())
    with pytest.raises(ConfigError, match=r"^model\.init: .*p3d\.pth \(state dict\) does not"):
        make_model_factory(ModelConfig(name="dg_p3d_tiny", init=f"checkpoint:{wrong}"), 9)


def test_checkpoint_model_refuses_what_evaluate_cannot_test():
    cfg = ModelConfig(name="p3d_tiny")
    state = build_model("p3d_tiny", num_classes=4).state_dict()
    with pytest.raises(ConfigError, match=r"^--checkpoint: a state dict checkpoint without"):
        checkpoint_model(cfg, state, 4)
    with pytest.raises(ConfigError, match=r"^--checkpoint: a PySlowFast checkpoint without"):
        checkpoint_model(cfg, {"model_state": state}, 4)
    with pytest.raises(ConfigError, match=r"^--checkpoint: its 'state': cannot parse"):
        checkpoint_model(cfg, {"model": state, "state": "garbage"}, 4)
    with pytest.raises(ConfigError, match=r"^--checkpoint: its 'state': cannot parse"):
        checkpoint_model(cfg, {"model": state, "state": 3}, 4)
    with pytest.raises(ConfigError, match=r"^--checkpoint \(opplan\) does not fit p3d_tiny"):
        checkpoint_model(cfg, {"model": state, "state": "uniform 4f lr=0.1"}, 6)
    parsed, net = checkpoint_model(cfg, {"model": state, "state": "uniform 4f lr=0.1"}, 4)
    assert parsed.clip_length == 4
    _assert_equal(net, state)


@pytest.mark.parametrize(("file_channels", "model_channels", "stream"),
                         [(2, 3, "a flow model"), (3, 2, "an RGB model")])  # fmt: skip
def test_a_checkpoint_of_the_other_stream_names_the_file_and_the_modality(
    file_channels, model_channels, stream
):
    """§5.5: evaluating the flow run's model.pt with the RGB config (or the reverse)."""
    options = {"in_channels": model_channels} if model_channels != 3 else {}
    cfg = ModelConfig(name="dg_p3d_tiny", options=options)
    state = build_model("dg_p3d_tiny", num_classes=4, in_channels=file_channels).state_dict()
    with pytest.raises(ConfigError) as err:
        checkpoint_model(
            cfg, {"model": state, "state": "uniform 4f lr=0.1"}, 4, "--checkpoint f.pt"
        )
    message = str(err.value)
    assert message.startswith("--checkpoint f.pt (opplan) does not fit dg_p3d_tiny")
    assert f"takes {file_channels} input channels ({stream}?), this config's {model_channels}" in (
        message
    )
    # another class count is no stream mix-up: no channel hint
    other = build_model("dg_p3d_tiny", num_classes=7, in_channels=model_channels).state_dict()
    with pytest.raises(ConfigError) as err:
        checkpoint_model(cfg, {"model": other, "state": "uniform 4f lr=0.1"}, 4)
    assert "input channels" not in str(err.value)
