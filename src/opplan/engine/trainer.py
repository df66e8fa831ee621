"""The video trainer: the torch side of the planner's protocol (§3.3, §5.2).

``VideoTrainer`` implements :class:`opplan.planning.Trainer`: for a transition it fine-tunes
the starting model with the state's sampling, clip length and learning rate, one epoch at
a time, and scores it on the internal validation split with one centre clip and crop.
Every random choice derives from (seed, transition, epoch), so a transition resumed from
its last epoch checkpoint trains exactly like an uninterrupted one (on CPU, bit for bit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import opplan.engine.short_cycle as sc
from opplan.engine.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from opplan.engine.distributed import (
    DistributedContext,
    RunningStats,
    all_reduce_gradients,
    average_buffers,
)
from opplan.engine.loader import TrainLoaders, loader_bound_warning
from opplan.engine.metrics import PlanMetric, epoch_metrics
from opplan.engine.performance import (
    CompiledModule,
    MemoryQuery,
    PerformanceSettings,
    autocast,
    check_memory,
    configure_backends,
    kernel_guard,
    make_scaler,
    optimizer_step,
    resolve_precision,
    sync_batch_norm,
    to_channels_last,
)
from opplan.engine.precise_bn import recalibrate_bn, recalibration_batches
from opplan.engine.settings import OptimSettings, classifier_parameters, derive_seed
from opplan.engine.state_axes import VIDEO_AXES, at_size, state_key, state_transform
from opplan.engine.validation import validation_score
from opplan.errors import ConfigError
from opplan.models import freeze_bn, heads_loss
from opplan.planning.state import TrainingState
from opplan.video import DataHealth, TransformConfig, VideoClipDataset, VideoRecord
from opplan.video.sampling import Sampling
from opplan.video.transforms import Mode, normalize_clips

__all__ = ["VideoTrainer"]


class VideoTrainer:
    """Trains and scores one model along the planner's transitions (and their ``size``,
    :mod:`opplan.engine.state_axes`).

    Args:
        model_factory: returns the initialization (random with a fixed seed, inflated 2D
            weights or an earlier video checkpoint); called once per transition.
        train_records, val_records: the planning training list and the internal validation
            split (§5.1) -- the original validation/test lists are never given here.
        checkpoint_dir: where ``save(id)`` writes ``<id>.pt``.
        transform: spatial sizes and normalization.
        optim: SGD and batch settings.
        metric: ``top1`` or ``mean_top135`` (the reference implementation's score).
        on_batch: called after each optimizer step with ``(step, steps, metrics)``.
        dist: the process group of a data-parallel transition (torchrun); default one
            process. Each rank then trains on its share of every optimizer step (same
            effective batch and learning rate), scores its shard of the validation split,
            and only rank 0 writes checkpoints (see :mod:`opplan.engine.distributed`).
        performance: precision, channels_last, compile, SyncBatchNorm
            (:mod:`opplan.engine.performance`).
        log: where the one-line warnings go (a compile that fell back to eager, a
            loader-bound transition).
        device_normalize: training clips leave the workers as uint8 and are converted and
            normalized on ``device`` (a quarter of the bytes to move; same bits on CPU).
        persistent_workers, prefetch_factor: DataLoader settings of the training loader;
            persistent workers live as long as the state (one loader per state, not per
            epoch; the epoch reaches the workers with every index).
    """

    extra_axes = VIDEO_AXES  # the state axes it acts on beyond sampling, clip length, lr

    def __init__(
        self,
        *,
        model_factory: Callable[[], nn.Module],
        train_records: Sequence[VideoRecord],
        val_records: Sequence[VideoRecord],
        checkpoint_dir: str | Path,
        transform: TransformConfig | None = None,
        optim: OptimSettings | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        num_workers: int = 0,
        eval_batch: int = 16,
        metric: PlanMetric = "top1",
        dataset_options: Mapping[str, Any] | None = None,
        health: DataHealth | None = None,
        on_batch: Callable[[int, int, dict[str, float]], None] | None = None,
        dist: DistributedContext | None = None,
        performance: PerformanceSettings | None = None,
        log: Callable[[str], None] = print,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
        device_normalize: bool = True,
    ) -> None:
        self.device_normalize = device_normalize
        self.model_factory = model_factory
        self._loaders = TrainLoaders(
            num_workers,
            persistent_workers,
            prefetch_factor,
            pin_memory=torch.device(device).type == "cuda",
        )
        self._loader_warned = False
        self.train_records = list(train_records)
        self.val_records = list(val_records)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.transform = transform or TransformConfig()
        self.optim = optim or OptimSettings()
        self.seed = seed
        self.device = torch.device(device)
        self.num_workers = num_workers
        self.eval_batch = eval_batch
        self.metric: PlanMetric = metric
        self.dataset_options = dict(dataset_options or {})
        self.health = health or DataHealth()
        self.on_batch = on_batch
        self.dist = dist or DistributedContext(device=self.device)
        self._ddp: DistributedDataParallel | None = None
        self.performance = performance or PerformanceSettings()
        self.precision = resolve_precision(self.performance.precision, self.device)
        self.log = log
        # SyncBatchNorm only means something (and only runs: CUDA) across processes
        self.sync_bn = self.performance.sync_bn and self.dist.enabled
        if self.sync_bn and self.device.type != "cuda":
            raise ConfigError("trainer.sync_bn: SyncBatchNorm needs CUDA devices (NCCL)")
        configure_backends(self.performance, self.device)
        self._compiled: CompiledModule | None = None
        self._datasets: dict[tuple[str, int, int | None, str], VideoClipDataset] = {}
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.state: TrainingState | None = None
        self.origin = ""  # the checkpoint this transition started from
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.short_cycle: int | None = None  # its default side (set by train_recipe; sc)

    # -- the planner's protocol ---------------------------------------------------------
    def start(self, state: TrainingState, from_checkpoint: str | None) -> None:
        self._build(state)
        assert self.model is not None
        if from_checkpoint is not None:
            data = load_checkpoint(self._path(from_checkpoint), map_location=self.device)
            self.model.load_state_dict(data["model"])
        self.origin = from_checkpoint or "initial"
        if from_checkpoint is not None and self.optim.recalibrate_bn:
            self._recalibrate_bn(state)
        self.epoch = 0
        self.history = []
        self._loader_warned = False

    def resume(self, state: TrainingState, checkpoint_id: str) -> None:
        data = load_checkpoint(self._path(checkpoint_id), map_location=self.device)
        if data["state"] != str(state):
            raise ValueError(f"{checkpoint_id} was saved in {data['state']}, not {state}")
        self._build(state)
        assert self.model is not None and self.optimizer is not None
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        if self.scaler is not None and "scaler" in data:
            self.scaler.load_state_dict(data["scaler"])
        self.origin = data["origin"]
        self.epoch = int(data["epoch"])
        self.history = list(data["history"])
        self._loader_warned = False
        set_rng_states(data["rng"])

    def train_epoch(self) -> dict[str, float]:
        model, optimizer, state = self._require()
        world, rank = self.dist.world_size, self.dist.rank
        self.epoch += 1
        seed = derive_seed(self.seed, self.origin, state, self.epoch)
        torch.manual_seed(seed)
        dataset, steps, divisors = self._epoch_steps(state, seed)
        if self.sync_bn:  # SyncBatchNorm's collectives need every rank in every forward:
            kept = [k for k, s in enumerate(steps) if len({len(share) for share in s}) == 1]
            steps, divisors = [steps[k] for k in kept], [divisors[k] for k in kept]  # no uneven
        rank_batches = [batch for step in steps for batch in step[rank]]
        key = (*state_key(state), self.short_cycle)
        loader = self._loaders.epoch(key, dataset, rank_batches, seed)
        model.train()
        net = self._ddp if self._ddp is not None else model
        # BatchNorm statistics: merged step by step as one process would have them when
        # ranks take whole micro-batches; averaged once per epoch when they take pieces
        whole = self.optim.accumulation_steps(state.clip_length) % world == 0
        running = RunningStats(model) if self.dist.enabled and whole else None
        running = None if self.sync_bn else running  # synchronized in every forward
        criterion = nn.CrossEntropyLoss(label_smoothing=self.optim.label_smoothing)
        totals = {"loss": 0.0, "data_time": 0.0, "compute_time": 0.0, "clips": 0.0}
        skipped = 0
        optimizer.zero_grad(set_to_none=True)
        batches = iter(loader)
        tick = time.perf_counter()
        for k, step in enumerate(steps):
            mine = step[rank]
            # DDP synchronizes on each rank's last micro-batch; only the epoch's last step
            # can leave ranks with different counts, reduced by hand below
            even = all(len(share) == len(mine) for share in step)
            diverged = ""
            if running is not None:
                running.begin()
            for j in range(len(mine)):
                clips, labels, _ = next(batches)
                fetched = time.perf_counter()
                totals["data_time"] += fetched - tick
                clips = self._prepare(clips)
                labels = labels.to(self.device, non_blocking=True)
                sync = self._ddp is None or (even and j == len(mine) - 1)
                # random draws (dropout) seeded by the micro-batch's first clip: the same
                # masks whichever rank trains it, so N ranks train like one process
                torch.manual_seed(derive_seed(seed, "batch", mine[j][0]))
                weight = (len(labels) * world) / divisors[k]
                # no_sync is DistributedDataParallel's; net is one whenever sync can be False
                with nullcontext() if sync else net.no_sync():  # type: ignore[operator]
                    loss = self._forward_backward(net, clips, labels, criterion, weight)
                if not torch.isfinite(loss):
                    diverged = f"loss is {loss.item()} at epoch {self.epoch}, step {k + 1}"
                    if not self.dist.enabled:
                        raise FloatingPointError(diverged)
                totals["loss"] += loss.item() * len(labels)
                totals["clips"] += len(labels)
                tick = time.perf_counter()
                totals["compute_time"] += tick - fetched
            # every rank stops at the same step when any of them diverged
            if self.dist.enabled and self.dist.all_reduce_sum([bool(diverged)], torch.int64)[0]:
                raise FloatingPointError(
                    diverged or f"loss not finite on another rank, step {k + 1}"
                )
            if not even:
                all_reduce_gradients([p for p in model.parameters() if p.requires_grad], world)
            if running is not None:
                running.merge([len(share) for share in step], rank)
            skipped += optimizer_step(model, optimizer, self.scaler, self.optim.clip_grad_norm)
            totals["compute_time"] += time.perf_counter() - tick
            tick = time.perf_counter()
            if self.on_batch is not None:
                self.on_batch(k + 1, len(steps), {"loss": loss.item() if mine else float("nan")})
        if self.dist.enabled:
            if running is None:
                average_buffers(model, world)  # one set of BatchNorm statistics
            totals["loss"], totals["clips"] = self.dist.all_reduce_sum(
                [totals["loss"], totals["clips"]], torch.float64
            )
        if self.dist.is_main:  # every rank's records are in RUN/.data_health by now
            self.health.end_epoch(num_samples=dataset.num_videos)  # stops past the budget
        metrics = epoch_metrics(totals, optimizer.param_groups[0]["lr"], world)
        if self.scaler is not None:  # fp16: steps the GradScaler skipped (inf/NaN gradients)
            metrics["skipped_steps"] = float(skipped)
            metrics["loss_scale"] = float(self.scaler.get_scale())
        self.history.append(metrics)
        # once per transition: the model waited for data over 20 % of its compute
        message = loader_bound_warning(self.state, metrics, self.num_workers)
        if message is not None and not self._loader_warned and self.dist.is_main:
            self._loader_warned = True
            self.log(message)
        return metrics

    def evaluate(self) -> float:
        """Top-1 (or mean top-1/3/5) on the planning validation split, one clip per video
        (data parallel: each rank scores the shard ``rank::world``; see
        :func:`opplan.engine.validation.validation_score`)."""
        model, _, state = self._require()
        score = validation_score(
            model,
            self._dataset(state, "plan_eval"),
            batch_size=self.eval_batch,
            num_workers=self.num_workers,
            device=self.device,
            autocast=self._autocast,
            channels_last=self.performance.channels_last,
            metric=self.metric,
            dist=self.dist,
        )
        if self.history:
            self.history[-1]["score"] = score
        if self.dist.is_main:
            self.health.write()  # this evaluation's unreadable videos into data_health.json
        return score

    def save(self, checkpoint_id: str) -> None:
        """Rank 0 writes (the unwrapped model's weights); every rank waits for the file."""
        model, optimizer, state = self._require()
        if self.dist.is_main:
            payload: dict[str, Any] = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "state": str(state),
                "origin": self.origin,
                "epoch": self.epoch,
                "history": self.history,
                "rng": rng_states(),
            }
            if self.scaler is not None:
                payload["scaler"] = self.scaler.state_dict()
            save_checkpoint(self._path(checkpoint_id), payload)
        self.dist.barrier()

    def release(self, checkpoint_id: str) -> None:
        if self.dist.is_main:
            self._path(checkpoint_id).unlink(missing_ok=True)

    def set_lr(self, graph_lr: float) -> None:
        """Change the learning rate within a state (per-epoch schedules such as the cosine
        decay of the hand-tuned baselines, §5.3); linear scaling and the classifier's
        multiplier apply as in :meth:`start`."""
        _, optimizer, _ = self._require()
        lr = self.optim.lr(graph_lr)
        mults = (1.0, self.optim.classifier_lr_mult)  # the groups built by _build
        for group, mult in zip(optimizer.param_groups, mults, strict=False):
            group["lr"] = lr * mult

    # -- internals ----------------------------------------------------------------------
    def _prepare(self, clips: torch.Tensor) -> torch.Tensor:
        """A training micro-batch on the device: uint8 converted and normalized there."""
        clips = clips.to(self.device, non_blocking=True)
        if clips.dtype == torch.uint8:
            clips = normalize_clips(clips, self.transform.mean, self.transform.std)
        return to_channels_last(clips) if self.performance.channels_last else clips

    def _recalibrate_bn(self, state: TrainingState) -> None:
        """Precise BN (``optim.recalibrate_bn``): the BN statistics of the state's own
        planning-train clips (epoch 0's augmentation), the same on every rank."""
        model, _, _ = self._require()
        batches = recalibration_batches(
            self._train_dataset(state, 0),
            micro_batch=self.optim.micro_batch_for(state.clip_length),
            batches=self.optim.recalibrate_bn_batches,
            seed=derive_seed(self.seed, self.origin, state, "precise_bn"),
            prepare=self._prepare,
        )
        with self._autocast():
            recalibrate_bn(model, batches)

    def _path(self, checkpoint_id: str) -> Path:
        return self.checkpoint_dir / f"{checkpoint_id}.pt"

    def _require(self) -> tuple[nn.Module, torch.optim.Optimizer, TrainingState]:
        if self.model is None or self.optimizer is None or self.state is None:
            raise RuntimeError("call start() or resume() first")
        return self.model, self.optimizer, self.state

    def _fresh_model(self, clip_length: int) -> nn.Module:
        """The initialization, BN frozen for long clips (§5.2), SyncBatchNorm otherwise."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, "init"))  # same init for every transition
            model = self.model_factory()
        threshold = self.optim.freeze_bn_from
        if threshold is not None and clip_length >= threshold:
            freeze_bn(model, except_first=True)
        if self.sync_bn:
            model = sync_batch_norm(model)
        return model

    def _build(self, state: TrainingState) -> None:
        """A fresh model (the initialization), BN frozen for long clips, a fresh optimizer."""
        model = self._fresh_model(state.clip_length)
        model.to(self.device)
        if self.performance.channels_last:
            model.to(memory_format=torch.channels_last_3d)
        lr = self.optim.lr(state.lr)
        head = {id(p) for p in classifier_parameters(model)}
        trainable = [p for p in model.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": [p for p in trainable if id(p) not in head]}]
        if self.optim.classifier_lr_mult != 1.0 and head:
            groups.append(
                {
                    "params": [p for p in trainable if id(p) in head],
                    "lr": lr * self.optim.classifier_lr_mult,
                }
            )
        else:
            groups[0]["params"] = trainable
        self.optimizer = torch.optim.SGD(
            groups,
            lr=lr,
            momentum=self.optim.momentum,
            nesterov=self.optim.nesterov and self.optim.momentum > 0,
            weight_decay=self.optim.weight_decay,
        )
        self.scaler = make_scaler(self.precision, self.device)
        self.model, self.state = model, state
        if self.dist.enabled:  # parameters broadcast from rank 0; BatchNorm: average_buffers
            self._ddp = DistributedDataParallel(
                model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
            )
        self._compiled = None
        if self.performance.compile:
            net = self._ddp if self._ddp is not None else model
            self._compiled = CompiledModule(net, self.performance, self.log)

    def _forward_backward(
        self,
        net: nn.Module,
        clips: torch.Tensor,
        labels: torch.Tensor,
        criterion: nn.Module,
        weight: float,
    ) -> torch.Tensor:
        """Loss of one micro-batch; its gradient times ``weight`` accumulated (DDP averages
        over ranks: scaled by world, a step's gradient is the effective batch's mean)."""

        def attempt(forward: Callable[[torch.Tensor], Any]) -> torch.Tensor:
            with kernel_guard(self.precision, self.device):
                with self._autocast():
                    loss = heads_loss(forward(clips), labels, criterion)
                scaled = loss * weight
                # torch's Tensor.backward has no annotations
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()  # type: ignore[no-untyped-call]
            return loss

        if self._compiled is None:
            return attempt(net)
        optimizer = self.optimizer
        assert optimizer is not None
        return self._compiled.run(attempt, lambda: optimizer.zero_grad(set_to_none=True))

    @contextmanager
    def _autocast(self) -> Iterator[None]:
        """bf16/fp16 autocast per ``trainer.precision`` (nothing for fp32)."""
        with kernel_guard(self.precision, self.device), autocast(self.precision, self.device):
            yield

    def check_memory(
        self, clip_length: int, query: MemoryQuery | None = None, crop: int | None = None
    ) -> None:
        """Refuse at start-up (ConfigError) a micro-batch of ``clip_length`` frames of side
        ``crop`` (default: the run's) that does not fit, by one dry training step of a fresh
        model; CUDA only, unless a ``query`` (runs the step, reports the memory) is given."""
        crop = crop or self.transform.crop_size
        check_memory(
            self._fresh_model(clip_length),
            micro=self.optim.micro_batch_for(clip_length),
            thw=(clip_length, crop, crop),
            device=self.device,
            precision=self.precision,
            channels_last=self.performance.channels_last,
            query=query,
        )

    def _epoch_steps(
        self, state: TrainingState, seed: int
    ) -> tuple[VideoClipDataset | sc.ShortCycleDataset, sc.Steps, list[int]]:
        """The epoch's dataset, steps and gradient divisors (:func:`sc.epoch_steps`); with
        the short cycle, the state's clips at the cycle's 3 crop sides."""
        train = self._train_dataset(state, self.epoch)
        if self.short_cycle is None:
            return train, *sc.epoch_steps(len(train), seed, self.optim, state, self.dist)
        cycle = sc.ShortCycle(self.short_cycle, train.config.crop_size, self.optim.effective_batch)
        smaller = [self._dataset(at_size(state, s), "train") for s in cycle.sides[:2]]
        dataset = sc.ShortCycleDataset([*smaller, train], train.seed, self.epoch)
        return dataset, *sc.epoch_steps(len(train), seed, self.optim, state, self.dist, cycle)

    def _train_dataset(self, state: TrainingState, epoch: int) -> VideoClipDataset:
        """The state's training clips as seeded for ``epoch`` (this origin's own draws)."""
        dataset = self._dataset(state, "train")
        dataset.seed = derive_seed(self.seed, self.origin, state)
        dataset.set_epoch(epoch)
        return dataset

    def _dataset(self, state: TrainingState, mode: Mode) -> VideoClipDataset:
        key = (*state_key(state), mode)
        if key not in self._datasets:
            transform = state_transform(self.transform, state)  # the state's size
            self._datasets[key] = VideoClipDataset(
                self.train_records if mode == "train" else self.val_records,
                sampling=cast(Sampling, state.sampling),  # TrainingState checked it
                clip_length=state.clip_length,
                mode=mode,
                transform=replace(transform, uint8=True)
                if mode == "train" and self.device_normalize
                else transform,
                seed=self.seed,
                health=self.health,
                **self.dataset_options,
            )
        return self._datasets[key]
