"""The loader against the trainer: clips/s of data and compute in the epoch record, the
once-per-transition loader-bound warning, and persistent workers kept for a state's epochs
(training exactly as with a loader per epoch)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from opplan.engine import OptimSettings, VideoTrainer
from opplan.engine.loader import loader_bound_warning
from opplan.models import build_model
from opplan.planning import TrainingState
from opplan.video import ArrayReader, TransformConfig, VideoRecord


class _Videos:
    """In-memory videos (class = brightness); ``delay`` seconds per clip opened."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def __call__(self, record: VideoRecord) -> ArrayReader:
        if self.delay:
            time.sleep(self.delay)
        k = int(record.path.split(":")[1])
        rng = np.random.default_rng(k)
        frames = rng.integers(0, 60, (16, 32, 32, 3)) + 90 * record.label
        return ArrayReader(frames.astype(np.uint8), path=record.path)


def _trainer(tmp_path, *, delay=0.0, log=print, **kw) -> VideoTrainer:
    torch.set_num_threads(1)
    records = [VideoRecord(f"mem:{k}", k % 2) for k in range(8)]
    return VideoTrainer(
        model_factory=lambda: build_model("dg_p3d_tiny", num_classes=2),
        train_records=records[:6],
        val_records=records[6:],
        checkpoint_dir=tmp_path,
        transform=TransformConfig.scaled(32),
        optim=OptimSettings(
            effective_batch=3, reference_batch=3, base_micro_batch=3, base_clip_length=4
        ),
        dataset_options={"reader_factory": _Videos(delay)},
        log=log,
        **kw,
    )


def test_the_warning_names_the_remedies_past_20_percent():
    rates = {"data_clips_per_s": 10.0, "compute_clips_per_s": 40.0}
    assert loader_bound_warning("s", {"data_time": 2.0, "compute_time": 10.0, **rates}, 2) is None
    message = loader_bound_warning("uniform/16", {"data_time": 2.1, "compute_time": 10.0,
                                                  **rates}, 2)  # fmt: skip
    assert message is not None and "loader-bound in uniform/16" in message
    assert "opplan data prepare" in message and "data.num_workers (now 2)" in message
    assert "21 %" in message


def test_a_slow_loader_warns_once_per_transition_with_its_rates(tmp_path):
    lines: list[str] = []
    trainer = _trainer(tmp_path, delay=0.15, log=lines.append)
    state = TrainingState("uniform", 4, 0.05)
    trainer.start(state, None)
    first = trainer.train_epoch()
    trainer.train_epoch()
    assert first["data_time"] > 0.9  # 6 clips x 0.15 s in the training process
    assert first["data_clips_per_s"] == pytest.approx(6 / first["data_time"])
    assert first["compute_clips_per_s"] == pytest.approx(6 / first["compute_time"])
    assert first["data_clips_per_s"] < 7
    warned = [line for line in lines if "loader-bound" in line]
    assert len(warned) == 1 and str(state) in warned[0]  # once, though both epochs were
    trainer.start(TrainingState("uniform", 8, 0.05), None)
    trainer.train_epoch()
    assert len([line for line in lines if "loader-bound" in line]) == 2  # the next transition


def test_a_fast_loader_does_not_warn(tmp_path):
    lines: list[str] = []
    trainer = _trainer(tmp_path, log=lines.append)
    trainer.start(TrainingState("consecutive", 4, 0.05), None)
    metrics = trainer.train_epoch()
    bound = metrics["data_time"] > 0.2 * metrics["compute_time"]
    assert any("loader-bound" in line for line in lines) == bound


def test_persistent_workers_serve_every_epoch_of_a_state_and_train_the_same(tmp_path):
    state = TrainingState("uniform", 4, 0.05)
    reference = _trainer(tmp_path / "a")
    reference.start(state, None)
    expected = [reference.train_epoch()["loss"] for _ in range(2)]
    kept = _trainer(tmp_path / "b", num_workers=1, persistent_workers=True, prefetch_factor=1)
    kept.start(state, None)
    losses = [kept.train_epoch()["loss"] for _ in range(2)]
    assert losses == pytest.approx(expected, rel=0, abs=0)  # the same clips, bit for bit
    assert kept._loaders.created == 1  # one loader (and its workers) for both epochs
    kept.start(TrainingState("uniform", 8, 0.05), None)
    kept.train_epoch()
    assert kept._loaders.created == 2  # a new state, new workers
    fresh = _trainer(tmp_path / "c", num_workers=1)
    fresh.start(state, None)
    fresh.train_epoch(), fresh.train_epoch()
    assert fresh._loaders.created == 2  # without: a loader per epoch


def test_the_short_cycle_trains_the_same_with_persistent_workers(tmp_path):
    """Multigrid's short cycle (batches 4, 2, 1 at 16, 23, 32 px): its items carry their
    crop through the persistent loader's (seed, epoch, item) keys."""
    state = TrainingState("uniform", 4, 0.05, (("size", 32),))
    optim = OptimSettings(effective_batch=1, reference_batch=1, base_micro_batch=1)
    losses = []
    for name, kw in (("a", {}), ("b", {"num_workers": 1, "persistent_workers": True})):
        trainer = _trainer(tmp_path / name, **kw)
        trainer.optim, trainer.short_cycle = optim, 32
        trainer.start(state, None)
        losses.append([trainer.train_epoch()["loss"] for _ in range(2)])
    assert losses[1] == pytest.approx(losses[0], rel=0, abs=0)
    assert trainer._loaders.created == 1


def test_uint8_clips_normalized_on_the_device_give_the_same_bits():
    from dataclasses import replace

    from opplan.video.transforms import build_transform, normalize_clips

    frames = np.random.default_rng(0).integers(0, 256, (4, 40, 48, 3)).astype(np.uint8)
    config = TransformConfig.scaled(32)
    torch.manual_seed(3)
    expected = build_transform(config, "train")(frames)
    torch.manual_seed(3)
    small = build_transform(replace(config, uint8=True), "train")(frames)
    assert small.dtype == torch.uint8 and small.shape == expected.shape  # (C, T, H, W)
    assert torch.equal(normalize_clips(small, config.mean, config.std), expected)
    batch = torch.stack([small, small])
    assert torch.equal(normalize_clips(batch, config.mean, config.std)[1], expected)


def test_the_trainer_moves_uint8_clips_and_trains_as_before(tmp_path):
    state = TrainingState("uniform", 4, 0.05)
    runs = {}
    for flag in (True, False):
        trainer = _trainer(tmp_path / str(flag), device_normalize=flag)
        trainer.start(state, None)
        runs[flag] = [trainer.train_epoch()["loss"] for _ in range(2)] + [trainer.evaluate()]
        clip = trainer._dataset(state, "train")[0][0]
        assert clip.dtype == (torch.uint8 if flag else torch.float32)
        assert trainer._dataset(state, "plan_eval")[0][0].dtype == torch.float32
    assert runs[True] == runs[False]  # bit for bit on CPU
