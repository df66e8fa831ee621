"""Speed switches of the video trainer: precision, memory format, compilation, SyncBatchNorm,
backend flags, and the start-up memory check (beyond the paper: §5.2 only says 8 GPUs).

* ``precision``: ``fp32``, ``bf16`` (autocast, no scaler) or ``fp16`` (autocast with a
  ``GradScaler`` whose state goes into the checkpoint and whose skipped steps are counted);
  ``auto`` = bf16 on a CUDA device that supports it, fp32 otherwise (CPU included).
* ``channels_last``: NDHWC (``torch.channels_last_3d``) for the model and its clips.
* ``compile``: ``torch.compile`` of the training forward, inductor's cache in the run folder
  (``RUN/compile_cache``) so a later transition or a resumed run loads the kernels instead of
  compiling again; if compiling fails the trainer warns once and trains eagerly.
* ``sync_bn``: every BatchNorm that is not frozen (§5.2 freezes all but the first from
  ``optim.freeze_bn_from`` frames) becomes a ``SyncBatchNorm`` in data-parallel runs.
* On CUDA: ``cudnn.benchmark`` (the clip shape is fixed within a state) and TF32 matmuls and
  convolutions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from opplan.errors import ConfigError
from opplan.models import heads_loss
from opplan.models._frozen_bn import _FROZEN_TYPES

__all__ = [
    "CompiledModule",
    "MemoryQuery",
    "PerformanceSettings",
    "Precision",
    "autocast",
    "check_memory",
    "configure_backends",
    "cuda_memory_query",
    "kernel_guard",
    "make_scaler",
    "optimizer_step",
    "resolve_precision",
    "sync_batch_norm",
    "to_channels_last",
    "training_memory",
]

Precision = Literal["auto", "fp32", "bf16", "fp16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
GIB = 2**30
T = TypeVar("T")


@dataclass(frozen=True)
class PerformanceSettings:
    """The trainer's speed switches (``trainer.precision`` etc.; see the module docstring).

    Args:
        compile_cache: inductor's cache directory (default: torch's, under /tmp).
        compile_backend: ``torch.compile``'s backend (tests pass a failing one).
    """

    precision: Precision = "auto"
    channels_last: bool = False
    compile: bool = False
    compile_cache: Path | None = None
    compile_backend: str | Callable[..., Any] = "inductor"
    sync_bn: bool = False
    cudnn_benchmark: bool = True
    tf32: bool = True


def resolve_precision(precision: Precision, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the device supports it (CUDA), else ``fp32``."""
    cuda = device.type == "cuda"
    if precision == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise ConfigError(f"trainer.precision: bf16 is not supported by {name}; use fp16")
    return precision


def autocast(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    """Autocast to bf16/fp16 (weights stay fp32); nothing for fp32."""
    if precision in _DTYPES:
        return torch.autocast(device.type, dtype=_DTYPES[precision])
    return nullcontext()


def kernel_guard(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    """Around forward *and* backward: bf16 on CPU without oneDNN. Its bf16 Conv3d weight
    gradient is wrong (NaN, 1e37, or a segfault) when the temporal kernel overhangs both
    ends of a 2-frame input (3×1×1, padding 1, T=2: DG-P3D's res2 on 4-frame clips; torch
    2.14.1, AVX-512); ATen's own bf16 convolution is exact (tests/engine/test_performance.py).
    """
    if precision == "bf16" and device.type == "cpu":
        return _without_onednn()
    return nullcontext()


@contextmanager
def _without_onednn() -> Iterator[None]:
    enabled = torch.backends.mkldnn.enabled
    # torch types the flag as a property object; assigning a bool is its documented use
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16 needs loss scaling (its range is too narrow for small gradients); bf16 does not."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def configure_backends(settings: PerformanceSettings, device: torch.device) -> None:
    """cudnn autotuning and TF32 on CUDA (process-wide flags; no effect on CPU)."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = settings.tf32
    torch.backends.cudnn.allow_tf32 = settings.tf32


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last_3d) if x.dim() == 5 else x


def sync_batch_norm(model: nn.Module) -> nn.Module:
    """``SyncBatchNorm`` for every trainable BatchNorm; frozen ones (§5.2) stay as they are.

    ``nn.SyncBatchNorm.convert_sync_batchnorm`` would convert the frozen ones as well (they
    subclass ``BatchNormNd``) and so unfreeze them; it is applied child by child instead.
    """
    if isinstance(model, _FROZEN_TYPES):
        return model
    if isinstance(model, nn.modules.batchnorm._BatchNorm):
        # torch leaves convert_sync_batchnorm unannotated
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[no-untyped-call,no-any-return]
    for name, child in model.named_children():
        model.add_module(name, sync_batch_norm(child))
    return model


def set_compile_cache(directory: Path | None) -> None:
    """Point inductor's on-disk caches (FX graphs, kernels) at ``directory``."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(directory)


class CompiledModule:
    """``torch.compile(module)`` with inductor's cache in ``settings.compile_cache``; if
    the first call fails (compilation happens there), one warning line and eager from then
    on. A fresh dynamo state per instance: each transition builds a new model, and stale
    guards of earlier models would count against dynamo's recompile limit."""

    def __init__(
        self, module: nn.Module, settings: PerformanceSettings, log: Callable[[str], None]
    ) -> None:
        set_compile_cache(settings.compile_cache)
        torch._dynamo.reset()
        self.eager = module
        self.compiled: Callable[..., Any] | None = torch.compile(
            module, backend=settings.compile_backend
        )
        self.checked = False
        self.log = log

    def run(self, attempt: Callable[[Callable[..., Any]], T], undo: Callable[[], None]) -> T:
        """``attempt(forward)`` with the compiled module; after a failed first attempt,
        ``undo()`` (drop its partial gradients) and ``attempt`` again eagerly."""
        if self.compiled is None:
            return attempt(self.eager)
        if self.checked:
            return attempt(self.compiled)
        try:
            out = attempt(self.compiled)
        except (torch.cuda.OutOfMemoryError, KeyboardInterrupt):
            raise
        except Exception as err:
            cause = getattr(err, "inner_exception", None) or err  # dynamo wraps the backend's
            lines = str(cause).strip().splitlines()
            reason = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
            self.log(f"warning: torch.compile failed ({reason}); training eagerly")
            self.compiled = None
            undo()
            return attempt(self.eager)
        self.checked = True
        return out


# -- the start-up memory check -----------------------------------------------------------
MemoryQuery = Callable[[Callable[[], None]], tuple[int | None, int]]
"""Runs a dry training step and returns (peak bytes, or None when it ran out of memory;
the device's total bytes)."""


def cuda_memory_query(device: torch.device) -> MemoryQuery:
    def query(step: Callable[[], None]) -> tuple[int | None, int]:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        total = torch.cuda.get_device_properties(device).total_memory
        try:
            step()
            torch.cuda.synchronize(device)
            peak: int | None = torch.cuda.max_memory_allocated(device)
        except torch.cuda.OutOfMemoryError:
            peak = None
        torch.cuda.empty_cache()
        return peak, total

    return query


def dry_step(
    model: nn.Module,
    batch: int,
    thw: tuple[int, int, int],
    device: torch.device,
    precision: str,
    channels_last: bool,
) -> Callable[[], None]:
    """One forward + backward + SGD-momentum step of ``batch`` random clips (the training
    step's memory: activations, gradients, the momentum buffers)."""

    def step() -> None:
        net = model.to(device).train()
        convs = (m.in_channels for m in net.modules() if isinstance(m, nn.Conv3d))
        channels = next(convs, 3)  # the input's channels: 3 (RGB) or 2 (flow)
        clips = torch.randn(batch, channels, *thw, device=device)
        if channels_last:
            net, clips = net.to(memory_format=torch.channels_last_3d), to_channels_last(clips)
        trainable = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(trainable, lr=1e-3, momentum=0.9)
        labels = torch.zeros(batch, dtype=torch.long, device=device)
        with kernel_guard(precision, device):
            with autocast(precision, device):
                loss = heads_loss(net(clips), labels, nn.CrossEntropyLoss())
            # torch's Tensor.backward has no annotations
            loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    return step


def training_memory(
    model: nn.Module,
    *,
    batch: int,
    thw: tuple[int, int, int],
    device: torch.device,
    precision: str,
    channels_last: bool = False,
) -> tuple[int | None, int]:
    """(peak bytes of one training step of ``batch`` clips, or None when it ran out of
    memory; bytes still held after it: weights, gradients, momentum). CUDA only."""
    if device.type != "cuda":
        raise ValueError("training memory is measured on CUDA devices only")
    held = [0]
    inner = dry_step(model, batch, thw, device, precision, channels_last)

    def step() -> None:
        inner()
        torch.cuda.synchronize(device)
        held[0] = torch.cuda.memory_allocated(device)

    peak, _ = cuda_memory_query(device)(step)
    return peak, held[0]


def check_memory(
    model: nn.Module,
    *,
    micro: int,
    thw: tuple[int, int, int],
    device: torch.device,
    precision: str,
    channels_last: bool,
    query: MemoryQuery | None = None,
    headroom: float = 0.95,
) -> tuple[int, int] | None:
    """Refuse (ConfigError, with the numbers) a micro-batch whose dry step on ``model`` does
    not fit in ``headroom`` of the device; returns (peak bytes, total bytes). Without a
    ``query``: measured on CUDA, nothing checked elsewhere (None)."""
    if query is None:
        if device.type != "cuda":
            return None
        query = cuda_memory_query(device)
    step = dry_step(model, micro, thw, device, precision, channels_last)
    peak, total = query(step)
    where = f"{device} ({precision})"
    size = "×".join(map(str, thw))
    if peak is not None and peak <= headroom * total:
        return peak, total
    need = "more than the whole device" if peak is None else f"{peak / GIB:.1f} GiB"
    fits = 0 if peak is None else int(micro * headroom * total / peak)
    advice = (
        f"about {fits} clips fit: set optim.micro_batch {{{thw[0]}: {fits}}}"
        if fits >= 1
        else f"not even one clip of {thw[0]} frames fits: use shorter clips or a smaller model"
    )
    raise ConfigError(
        f"optim.micro_batch: one training step of {micro} clips of {size} needs {need} on "
        f"{where}, which has {total / GIB:.1f} GiB ({headroom:.0%} usable); {advice}"
    )


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    clip_grad_norm: float | None,
) -> int:
    """One optimizer step (gradients unscaled and clipped first); 1 if the fp16 GradScaler
    skipped it (inf/NaN gradients), else 0. The gradients are zeroed after."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    if clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    skipped = 0
    if scaler is not None:
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped = int(scaler.get_scale() < scale)  # the scale drops only on a skip
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return skipped
