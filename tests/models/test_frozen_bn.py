"""Frozen BN (§5.2): all BatchNorms but the first keep their statistics and affine params."""

from __future__ import annotations

import torch
from torch import nn

from opplan.models import (
    FrozenBatchNorm3d,
    build_model,
    freeze_bn,
    frozen_bn_names,
    heads_loss,
)


def _bns(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    return [
        (n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


def test_all_but_the_first_bn_keep_their_statistics_in_train_mode() -> None:
    net = build_model("dg_p3d_tiny", 3)
    frozen = freeze_bn(net)
    bns = _bns(net)
    assert bns[0][0] == "stem.bn" and "stem.bn" not in frozen
    assert frozen == [n for n, _ in bns[1:]] == frozen_bn_names(net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()  # the trainer calls this every epoch: frozen BNs must stay in eval mode
    assert all(not m.training for _, m in bns[1:]) and bns[0][1].training
    out = net(torch.randn(2, 3, 8, 32, 32) * 3 + 1)
    heads_loss(out, torch.tensor([0, 1])).backward()
    after = net.state_dict()
    for name, _ in bns[1:]:
        for buf in ("running_mean", "running_var", "num_batches_tracked", "weight", "bias"):
            assert torch.equal(before[f"{name}.{buf}"], after[f"{name}.{buf}"])
        assert net.get_submodule(name).weight.grad is None
    assert not torch.equal(before["stem.bn.running_mean"], after["stem.bn.running_mean"])
    assert net.stem.bn.weight.grad is not None
    assert net.res2[0].conv1.spatial.weight.grad is not None  # convs still train


def test_frozen_bn_normalises_with_running_statistics() -> None:
    bn = nn.BatchNorm3d(4)
    bn.running_mean.fill_(2.0)
    bn.running_var.fill_(4.0)
    net = nn.Sequential(nn.BatchNorm3d(4), bn)
    freeze_bn(net)
    net.train()
    x = torch.randn(2, 4, 2, 3, 3)
    torch.testing.assert_close(net[1](x), (x - 2.0) / torch.sqrt(torch.tensor(4.0 + bn.eps)))
    assert isinstance(net[1], FrozenBatchNorm3d)


def test_freeze_keeps_state_dict_keys_and_is_idempotent() -> None:
    net = build_model("p3d_tiny", 3)
    keys = list(net.state_dict())
    first = freeze_bn(net)
    assert freeze_bn(net) == []
    assert list(net.state_dict()) == keys
    assert len(first) == len(_bns(net)) - 1
    plain = build_model("p3d_tiny", 3)
    plain.load_state_dict(net.state_dict())  # checkpoints move between frozen and not


def test_except_first_false_freezes_every_bn() -> None:
    net = build_model("p3d_tiny", 3)
    assert len(freeze_bn(net, except_first=False)) == len(_bns(net))


def test_frozen_bn_option_and_torchvision_models() -> None:
    net = build_model("dg_p3d_tiny", 3, frozen_bn=True)
    assert len(frozen_bn_names(net)) == len(_bns(net)) - 1
    r3d = build_model("r3d_18", 3)
    frozen = freeze_bn(r3d)
    assert frozen[0] == "layer1.0.conv1.1" and "stem.1" not in frozen
    assert all(not p.requires_grad for n in frozen for p in r3d.get_submodule(n).parameters())
