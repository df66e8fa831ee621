"""The trainer's speed switches on CPU (issue 16): bf16 autocast, channels_last and compile
each train one short transition close to fp32 eager, resume mid-transition identically and
plan the same; fp16's GradScaler; SyncBatchNorm; the start-up memory check; optim.amp."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import yaml
from torch import nn

from opplan.cli import main
from opplan.config import parse_config
from opplan.engine import OptimSettings, VideoTrainer
from opplan.engine.performance import PerformanceSettings, sync_batch_norm
from opplan.errors import ConfigError
from opplan.models import build_model, freeze_bn, frozen_bn_names
from opplan.planning import TrainingState
from opplan.video import TransformConfig, internal_val_split, read_video_list
from opplan.video.synthetic import generate_dataset

STATE = TrainingState("uniform", 4, 0.05)
# Tolerances of one 2-epoch transition against fp32 eager (mean loss per epoch, ~2.3):
# NDHWC reorders float sums only; bf16 keeps 8 mantissa bits (relative rounding 2^-9 per op).
TOLERANCE = {"channels_last": 1e-4, "bf16": 3e-2, "compile": 1e-4}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    generate_dataset("order", root, videos_per_class=3, size=32, min_frames=16, max_frames=24)
    return root


class Small(nn.Sequential):
    """A network small enough for dynamo to trace in about a second."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv3d(3, 8, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm3d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Linear(8, 10),
        )


def make_trainer(root, checkpoints, model="dg_p3d_tiny", log=print, **switches):
    torch.set_num_threads(1)
    train = read_video_list(root / "train.txt", root=root)
    plan_train, plan_val = internal_val_split(train, val_size=6, seed=0)
    optim = OptimSettings(
        effective_batch=6, reference_batch=6, base_micro_batch=6, base_clip_length=4
    )
    return VideoTrainer(
        model_factory=Small if model == "small" else lambda: build_model(model, num_classes=10),
        train_records=plan_train,
        val_records=plan_val,
        checkpoint_dir=checkpoints,
        transform=TransformConfig.scaled(32),
        optim=optim,
        performance=PerformanceSettings(**switches),
        log=log,
    )


def transition(trainer, epochs=2):
    trainer.start(STATE, None)
    return [trainer.train_epoch()["loss"] for _ in range(epochs)], trainer.evaluate()


@pytest.fixture(scope="module")
def fp32_eager(tiny_data, tmp_path_factory):
    return transition(make_trainer(tiny_data, tmp_path_factory.mktemp("fp32")))


@pytest.mark.parametrize(
    "name, switches",
    [("channels_last", {"channels_last": True}), ("bf16", {"precision": "bf16"})],
)
def test_switch_trains_like_fp32_eager(tiny_data, tmp_path, fp32_eager, name, switches):
    trainer = make_trainer(tiny_data, tmp_path, **switches)
    losses, _ = transition(trainer)
    assert losses == pytest.approx(fp32_eager[0], rel=TOLERANCE[name])
    if name == "bf16":  # it really ran in bf16: not bit-identical to fp32
        assert losses != fp32_eager[0] and trainer.precision == "bf16"
    if name == "channels_last":
        conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv3d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_compile_trains_like_eager_and_falls_back_with_one_warning(tiny_data, tmp_path):
    # a small network and aot_eager (dynamo + AOT autograd without inductor's C++ build):
    # seconds, not minutes; inductor on DG-P3D is in the slow test below and in
    # benchmarks/device_check.py
    eager = transition(make_trainer(tiny_data, tmp_path / "e", "small"))
    trainer = make_trainer(
        tiny_data, tmp_path / "a", "small", compile=True, compile_backend="aot_eager"
    )
    losses, _ = transition(trainer)
    assert losses == pytest.approx(eager[0], rel=TOLERANCE["compile"])
    assert trainer._compiled is not None and trainer._compiled.compiled is not None

    def broken(gm, example_inputs):
        raise RuntimeError("no compiler here")

    lines: list[str] = []
    trainer = make_trainer(
        tiny_data, tmp_path / "b", "small", compile=True, compile_backend=broken, log=lines.append
    )
    assert transition(trainer) == eager  # eager from the first micro-batch on
    warned = [line for line in lines if "torch.compile" in line]  # (also: loader-bound)
    assert len(warned) == 1 and "torch.compile failed" in warned[0]
    assert "no compiler here" in warned[0] and "training eagerly" in warned[0]


@pytest.mark.parametrize(
    "switches",
    [{"precision": "bf16", "channels_last": True}, {"precision": "fp16"}],
    ids=["bf16+channels_last", "fp16"],
)
def test_resume_mid_transition_is_identical(tiny_data, tmp_path, switches):
    a = make_trainer(tiny_data, tmp_path, **switches)
    a.start(STATE, None)
    a.train_epoch()
    a.save("edge/e001")
    second = a.train_epoch()["loss"], a.evaluate()
    b = make_trainer(tiny_data, tmp_path, **switches)
    b.resume(STATE, "edge/e001")
    assert (b.train_epoch()["loss"], b.evaluate()) == second


def test_fp16_counts_skipped_steps_and_checkpoints_the_scaler(tiny_data, tmp_path):
    trainer = make_trainer(tiny_data, tmp_path, precision="fp16")
    trainer.start(STATE, None)
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # overflows at first
    metrics = trainer.train_epoch()
    steps = -(-len(trainer.train_records) // 6)
    assert 1 <= metrics["skipped_steps"] <= steps
    assert metrics["loss_scale"] == 2.0 ** (40 - metrics["skipped_steps"])
    trainer.save("edge/e001")
    saved = torch.load(tmp_path / "edge" / "e001.pt", weights_only=True)
    assert saved["scaler"]["scale"] == metrics["loss_scale"]
    resumed = make_trainer(tiny_data, tmp_path, precision="fp16")
    resumed.resume(STATE, "edge/e001")
    assert resumed.scaler.get_scale() == metrics["loss_scale"]
    # fp32 and bf16 have no scaler and no such record
    assert "skipped_steps" not in make_trainer(tiny_data, tmp_path).history


def test_fp16_non_finite_loss_still_diverges(tiny_data, tmp_path):
    trainer = make_trainer(tiny_data, tmp_path, precision="fp16")
    trainer.start(TrainingState("uniform", 4, 1e6), None)
    with pytest.raises(FloatingPointError, match="loss is"):
        for _ in range(3):
            trainer.train_epoch()


def test_auto_precision_is_fp32_on_cpu(tiny_data, tmp_path):
    assert make_trainer(tiny_data, tmp_path).precision == "fp32"
    assert make_trainer(tiny_data, tmp_path, precision="bf16").precision == "bf16"


def test_sync_bn_converts_trainable_bns_and_keeps_frozen_ones_frozen():
    model = build_model("dg_p3d_tiny", num_classes=10)
    keys = set(model.state_dict())
    frozen = freeze_bn(model, except_first=True)
    first = next(n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm3d))
    model = sync_batch_norm(model)
    assert frozen_bn_names(model) == frozen  # §5.2 stays
    synced = [n for n, m in model.named_modules() if isinstance(m, nn.SyncBatchNorm)]
    assert synced == [first]
    assert set(model.state_dict()) == keys  # checkpoints move between both
    unfrozen = sync_batch_norm(build_model("dg_p3d_tiny", num_classes=10))
    n_bn = sum(isinstance(m, nn.SyncBatchNorm) for m in unfrozen.modules())
    assert n_bn == len(frozen) + 1


def test_sync_bn_on_cpu_ranks_is_refused(tiny_data, tmp_path):
    from opplan.engine.distributed import DistributedContext

    make_trainer(tiny_data, tmp_path, sync_bn=True)  # one process: nothing to synchronize
    train = read_video_list(tiny_data / "train.txt", root=tiny_data)
    with pytest.raises(ConfigError, match=r"trainer\.sync_bn"):
        VideoTrainer(
            model_factory=lambda: build_model("dg_p3d_tiny", num_classes=10),
            train_records=train,
            val_records=train,
            checkpoint_dir=tmp_path,
            performance=PerformanceSettings(sync_bn=True),
            dist=DistributedContext(rank=0, world_size=2, backend="gloo"),
        )


def test_memory_check_refuses_a_micro_batch_that_cannot_fit(tiny_data, tmp_path):
    trainer = make_trainer(tiny_data, tmp_path)
    trainer.check_memory(8)  # on CPU nothing is measured without a query
    ran: list[bool] = []

    def query(peak, total):
        def measure(step):
            step()  # the real dry step, on CPU
            ran.append(True)
            return peak, total

        return measure

    trainer.check_memory(8, query=query(2 * 2**30, 80 * 2**30))  # fits
    with pytest.raises(ConfigError) as err:
        trainer.check_memory(8, query=query(30 * 2**30, 16 * 2**30))
    message = str(err.value)
    # micro-batch of 8 frames: floor(6 * 4 / 8) = 3 clips of 8×32×32
    assert "optim.micro_batch" in message and "3 clips of 8×32×32" in message
    assert "30.0 GiB" in message and "16.0 GiB" in message and "{8: 1}" in message
    with pytest.raises(ConfigError, match="more than the whole device"):
        trainer.check_memory(8, query=query(None, 16 * 2**30))
    assert len(ran) == 3


def test_optim_amp_still_loads_as_precision(tiny_data):
    def config(optim, **trainer):
        return {
            "trainer": {"kind": "video", "data": {"root": str(tiny_data)}, "optim": optim}
            | trainer
        }

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # amp: null (every old resolved config) is silent
        assert parse_config(config({"amp": None})).trainer.precision == "auto"
    with pytest.warns(FutureWarning, match="trainer.precision: fp16"):
        assert parse_config(config({"amp": True})).trainer.precision == "fp16"
    with pytest.warns(FutureWarning, match="trainer.precision: fp32"):
        assert parse_config(config({"amp": False})).trainer.precision == "fp32"
    with pytest.raises(ConfigError, match=r"optim\.amp: true contradicts trainer\.precision"):
        parse_config(config({"amp": True}, precision="bf16"))
    with pytest.raises(ConfigError, match="precision"):
        parse_config(config({}, precision="fp8"))


def _plan(root, out, **switches):
    config = {
        "graph": {
            "kind": "basic",
            "samplings": ["uniform"],
            "clip_lengths": [4],
            "learning_rates": [0.05, 0.005],
        },
        "planner": {"delay": 1, "max_epochs": 2},
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "threads": 1,
            "metric": "mean_top135",
            "data": {"root": str(root), "frame_size": 32, "internal_val_size": 6},
            "optim": {
                "effective_batch": 6,
                "reference_batch": 6,
                "base_micro_batch": 6,
                "base_clip_length": 4,
            },
            **switches,
        },
    }
    out.mkdir()
    (out / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["plan", str(out / "c.yaml"), "--out", str(out / "run")]) == 0
    plan = json.loads((out / "run" / "plan.json").read_text())
    return plan["path"], [(t["from"], t["to"], t["epochs_trained"]) for t in plan["transitions"]]


@pytest.mark.slow
def test_the_switches_plan_the_same_path(tiny_data, tmp_path):
    """channels_last only reorders float sums: the identical plan. bf16 rounds every op to
    8 mantissa bits: the same path of states, but on these 6 validation videos a knee may
    move (measured: the second move stopped at epoch 1 instead of 2)."""
    reference = _plan(tiny_data, tmp_path / "fp32")
    assert _plan(tiny_data, tmp_path / "nhwc", channels_last=True) == reference

    def states(path):
        return [(s["sampling"], s["clip_length"], s["lr"]) for s in path]

    fast = _plan(tiny_data, tmp_path / "fast", precision="bf16", channels_last=True)
    assert states(fast[0]) == states(reference[0]) and len(reference[0]) == 2


@pytest.mark.slow
def test_inductor_compile_trains_like_eager_with_its_cache_in_the_run(
    tiny_data, tmp_path, fp32_eager, monkeypatch
):
    import torch._inductor.config as inductor_config

    # inductor draws dropout masks from its own RNG unless told to fall back to eager's:
    # without this the heads' dropout differs and the losses with it (measured: 1.4 %)
    monkeypatch.setattr(inductor_config, "fallback_random", True)
    cache = tmp_path / "compile_cache"
    trainer = make_trainer(tiny_data, tmp_path, compile=True, compile_cache=cache)
    losses, _ = transition(trainer)
    assert losses == pytest.approx(fp32_eager[0], rel=TOLERANCE["compile"])
    assert trainer._compiled.compiled is not None and any(cache.rglob("*"))
    trainer.train_epoch()
    trainer.save("edge/e003")
    resumed = make_trainer(tiny_data, tmp_path, compile=True, compile_cache=cache)
    resumed.resume(STATE, "edge/e003")
    assert resumed.train_epoch()["loss"] == trainer.train_epoch()["loss"]
