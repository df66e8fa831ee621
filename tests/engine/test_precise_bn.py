"""Precise BN (``trainer.optim.recalibrate_bn``, issue 17 item 1): the recalibrated statistics
are those of a pass over the data, frozen BNs keep theirs, and the knob off changes nothing."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from opplan.config import parse_config
from opplan.engine.checkpoint import load_checkpoint
from opplan.engine.precise_bn import recalibrate_bn, recalibration_batches
from opplan.errors import ConfigError
from opplan.models import freeze_bn
from opplan.planning import TrainingState

from .test_video_plan import make_trainer, tiny_data  # noqa: F401  (the fixture)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), nn.ReLU(), nn.Conv3d(4, 5, 1), nn.BatchNorm3d(5)
    )


@settings(max_examples=25, deadline=None)
@given(
    batches=st.integers(1, 5),
    size=st.integers(2, 4),
    frames=st.integers(1, 3),
    shift=st.floats(-3, 3),
)
def test_recalibrated_statistics_are_those_of_a_pass_over_the_data(batches, size, frames, shift):
    net = small_net()
    data = [torch.randn(size, 3, frames, 2, 2) + shift for _ in range(batches)]
    net.train()  # stale statistics from other data first
    net(torch.randn(6, 3, frames, 2, 2) * 5)
    net.eval()
    assert recalibrate_bn(net, iter(data)) == 2
    first = net[1]
    x = torch.cat([net[0](b) for b in data]).detach()
    # equal micro-batches: the mean of the batch means is the mean over all the data
    torch.testing.assert_close(first.running_mean, x.mean(dim=(0, 2, 3, 4)))
    # the variance: the mean of the batches' unbiased variances (update_bn's estimate)
    var = torch.stack([net[0](b).detach().var(dim=(0, 2, 3, 4)) for b in data]).mean(0)
    torch.testing.assert_close(first.running_var, var)
    assert first.momentum == 0.1 and not net.training  # momenta and mode restored


def test_frozen_bns_keep_their_statistics_and_the_rng_is_untouched():
    net = small_net()
    freeze_bn(net, except_first=True)  # the second BN frozen (§5.2)
    frozen = {k: v.clone() for k, v in net[4].named_buffers()}
    live_before = net[1].running_mean.clone()
    batch = torch.randn(3, 3, 2, 2, 2) + 4
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    assert recalibrate_bn(net, iter([batch])) == 1
    assert torch.rand(1) == expected
    for name, value in net[4].named_buffers():
        assert torch.equal(value, frozen[name]), name
    assert not torch.allclose(net[1].running_mean, live_before)
    only_frozen = nn.Sequential(nn.Conv3d(3, 3, 1), nn.BatchNorm3d(3))
    freeze_bn(only_frozen, except_first=False)
    assert recalibrate_bn(only_frozen, iter([torch.randn(2, 3, 1, 1, 1)])) == 0


def test_recalibration_batches_are_seeded_distinct_and_bounded():
    data = [(torch.full((1,), float(i)), 0, i) for i in range(10)]

    def draw(seed: int) -> list[list[float]]:
        it = recalibration_batches(data, micro_batch=4, batches=5, seed=seed, prepare=lambda c: c)
        return [b.flatten().tolist() for b in it]

    batches = draw(3)
    assert [len(b) for b in batches] == [4, 4, 2]  # one pass at most
    assert sorted(x for b in batches for x in b) == [float(i) for i in range(10)]
    assert draw(3) == batches and draw(4) != batches
    with pytest.raises(ValueError, match="batches must be >= 1"):
        next(recalibration_batches(data, micro_batch=4, batches=0, seed=0, prepare=lambda c: c))


def bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


def test_knob_off_keeps_the_checkpoint_statistics_and_on_recomputes_them(tiny_data, tmp_path):  # noqa: F811
    source = make_trainer(tiny_data, tmp_path)
    source.start(TrainingState("uniform", 4, 0.05), None)
    source.train_epoch()
    source.save("src")
    saved = {k: v for k, v in load_checkpoint(tmp_path / "src.pt")["model"].items()}
    move = TrainingState("uniform", 8, 0.05)
    off = make_trainer(tiny_data, tmp_path)
    off.start(move, "src")
    for name, value in bn_buffers(off.model).items():
        assert torch.equal(value, saved[name]), name
    on = make_trainer(tiny_data, tmp_path, recalibrate_bn=True, recalibrate_bn_batches=2)
    on.start(move, "src")
    recalibrated = bn_buffers(on.model)
    assert any(not torch.equal(v, saved[k]) for k, v in recalibrated.items())
    again = make_trainer(tiny_data, tmp_path, recalibrate_bn=True, recalibrate_bn_batches=2)
    again.start(move, "src")  # deterministic: the same clips, the same statistics
    assert all(torch.equal(v, recalibrated[k]) for k, v in bn_buffers(again.model).items())
    on.start(move, None)  # from the initialization: nothing to recalibrate
    fresh = make_trainer(tiny_data, tmp_path)
    fresh.start(move, None)
    assert all(torch.equal(v, bn_buffers(fresh.model)[k]) for k, v in bn_buffers(on.model).items())


def test_knob_on_still_resumes_exactly(tiny_data, tmp_path):  # noqa: F811
    state = TrainingState("uniform", 4, 0.05)
    a = make_trainer(tiny_data, tmp_path, recalibrate_bn=True, recalibrate_bn_batches=2)
    a.start(state, None)
    a.train_epoch()
    a.save("src")
    a.start(TrainingState("uniform", 8, 0.05), "src")
    a.train_epoch()
    a.save("edge/e001")
    second = a.train_epoch()["loss"], a.evaluate()
    b = make_trainer(tiny_data, tmp_path, recalibrate_bn=True, recalibrate_bn_batches=2)
    b.resume(TrainingState("uniform", 8, 0.05), "edge/e001")
    assert (b.train_epoch()["loss"], b.evaluate()) == second


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        (
            {"recalibrate_bn": "yes"},
            "trainer.video.optim.recalibrate_bn: Input should be a valid boolean",
        ),
        (
            {"recalibrate_bn_batches": 0},
            "trainer.video.optim.recalibrate_bn_batches: Input should be greater",
        ),
    ],
)
def test_config_refuses_bad_recalibration_settings(optim, message):
    data = {"trainer": {"kind": "video", "data": {"root": "x"}, "optim": optim}}
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
    ok = parse_config({"trainer": {"kind": "video", "data": {"root": "x"}}})
    assert ok.trainer.optim.recalibrate_bn is False  # off by default
