"""Why a clip-length change dips (issue 17 item 1): one source model, one move, one switch.

    nice -n 10 python -m benchmarks.clip_change_dip [--out runs/bench/clip_change_dip]
        [--seeds 0 1 2] [--epochs 5] [--variants base bn_eval ...]

On configs/demo.yaml's trainer (synthetic ``order``, DG-P3D tiny, 32 px; the data and
checkpoints go under ``--out``) it trains the source once (uniform 8f lr 0.1 for 40 epochs,
then 8f lr 0.01 for 3; a 16f source: the 40-epoch model moved to 16f lr 0.1 for 10 epochs,
then 16f lr 0.01 for 3), then moves it with the trainer's own API
(``trainer.start(state, from_checkpoint=source)``) and records the internal-validation top-1
at epoch 0 (the source scored in the new state) and after each of ``--epochs`` epochs, per
trainer seed. Every variant changes one thing against ``base`` (8f -> 16f lr 0.01):

    control     8f -> 8f lr 0.01 (no clip change)
    reverse     16f -> 8f lr 0.01
    reverse_knob  the same with trainer.optim.recalibrate_bn: true
    precise_bn  BN statistics recalibrated at 16 frames (torch.optim.swa_utils.update_bn on
                the planning-train clips) before epoch 0 and before every evaluation
    knob        trainer.optim.recalibrate_bn: true (the trainer's precise BN, before epoch 0)
    bn_eval     BN in eval mode while training (statistics kept from the source; affine trained)
    freeze_bn   trainer.optim.freeze_bn_from: 16 (§5.2: statistics and affine frozen)
    micro16     micro-batch 16 at 16 frames (no accumulation)
    momentum    the source's SGD momentum buffers carried over instead of a fresh optimizer
    warmup      lr rising linearly from lr/steps to lr over the first epoch's steps
    dropout0    the heads' dropout off during the move (the scale of the train-mode logits)

Writes ``results.json`` (every curve, plus the heads' logit scale at 8 and 16 frames) and
prints a table of the mean over seeds. Torch runs on 1 thread.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from opplan.config import load_config
from opplan.config._video import VideoTrainerConfig
from opplan.engine.build import build_video_trainer
from opplan.engine.checkpoint import load_checkpoint
from opplan.engine.trainer import VideoTrainer
from opplan.models import DualHeadLogits
from opplan.planning.state import TrainingState
from opplan.video.transforms import normalize_clips

S8_HI = TrainingState("uniform", 8, 0.1)
S8 = TrainingState("uniform", 8, 0.01)
S16_HI = TrainingState("uniform", 16, 0.1)
S16 = TrainingState("uniform", 16, 0.01)
VARIANTS = (
    "base",
    "control",
    "reverse",
    "reverse_knob",
    "precise_bn",
    "knob",
    "bn_eval",
    "freeze_bn",
    "micro16",
    "momentum",
    "warmup",
    "dropout0",
)


def build(out: Path) -> VideoTrainer:
    config = load_config("configs/demo.yaml").trainer
    assert isinstance(config, VideoTrainerConfig)
    data = config.data.model_copy(update={"root": str(out / "data")})
    config = config.model_copy(update={"data": data})
    return build_video_trainer(config, out, log=lambda m: None)


def train(trainer: VideoTrainer, state: TrainingState, src: str | None, epochs: int) -> float:
    trainer.start(state, from_checkpoint=src)
    score = 0.0
    for _ in range(epochs):
        trainer.train_epoch()
        score = trainer.evaluate()
    return score


def sources(trainer: VideoTrainer, log: Callable[[str], None]) -> None:
    """src8 (8f lr 0.01 after 8f lr 0.1) and src16 (16f lr 0.01 after 16f lr 0.1)."""
    if (trainer.checkpoint_dir / "src16.pt").exists():
        return
    tick = time.perf_counter()
    log(f"src8_hi: {train(trainer, S8_HI, None, 40):.3f} ({time.perf_counter() - tick:.0f} s)")
    trainer.save("src8_hi")
    log(f"src8: {train(trainer, S8, 'src8_hi', 3):.3f}")
    trainer.save("src8")
    log(f"src16_hi: {train(trainer, S16_HI, 'src8_hi', 10):.3f}")
    trainer.save("src16_hi")
    log(f"src16: {train(trainer, S16, 'src16_hi', 3):.3f}")
    trainer.save("src16")


def plan_source(trainer: VideoTrainer, log: Callable[[str], None]) -> None:
    """The demo plan's path (docs/results.md): 8f lr 0.1 (40) -> 16f lr 0.1 (30) -> 8f lr
    0.01 (14), the source of its move 8f lr 0.01 -> 16f lr 0.01 (the issue's dipping move)."""
    if (trainer.checkpoint_dir / "plan8.pt").exists():
        return
    log(f"plan16_hi: {train(trainer, S16_HI, 'src8_hi', 30):.3f}")
    trainer.save("plan16_hi")
    log(f"plan8: {train(trainer, S8, 'plan16_hi', 14):.3f}")
    trainer.save("plan8")


def train_clips(trainer: VideoTrainer, batches: int, seed: int) -> Iterator[torch.Tensor]:
    """``batches`` micro-batches of planning-train clips (training augmentation), normalized."""
    assert trainer.state is not None
    dataset = trainer._dataset(trainer.state, "train")
    micro = trainer.optim.micro_batch_for(trainer.state.clip_length)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    for k in range(batches):
        items = [dataset[int(i)] for i in order[k * micro : (k + 1) * micro]]
        clips = torch.stack([torch.as_tensor(item[0]) for item in items])
        if clips.dtype == torch.uint8:
            clips = normalize_clips(clips, trainer.transform.mean, trainer.transform.std)
        yield clips


def precise_bn(trainer: VideoTrainer, seed: int, batches: int = 15) -> None:
    """PySlowFast's precise BN: the BN statistics of ``batches`` micro-batches."""
    assert trainer.model is not None
    with torch.no_grad():
        update_bn(train_clips(trainer, batches, seed), trainer.model)


def bn_eval(model: nn.Module) -> None:
    """BN stays in eval mode whatever ``model.train()`` says (affine still trained)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train = (lambda m: lambda mode=True: nn.Module.train(m, False))(module)  # type: ignore[method-assign]
            module.eval()


def logit_scale(trainer: VideoTrainer, state: TrainingState, src: str) -> dict[str, float]:
    """Mean std over classes of each head's eval-mode logits on the validation clips."""
    trainer.start(state, from_checkpoint=src)
    assert trainer.model is not None
    model = trainer.model.eval()
    dataset = trainer._dataset(state, "plan_eval")
    out: dict[str, list[float]] = {"temporal": [], "spatial": []}
    with torch.no_grad():
        for i in range(len(dataset)):
            clip = torch.as_tensor(dataset[i][0])[None]
            logits = model(clip)
            assert isinstance(logits, DualHeadLogits)
            out["temporal"].append(float(logits.temporal.std()))
            out["spatial"].append(float(logits.spatial.std()))
    return {k: statistics.fmean(v) for k, v in out.items()}


def move(trainer: VideoTrainer, source: str, variant: str, seed: int, epochs: int) -> list[float]:
    fixed = {"control": (source, S8), "reverse": ("src16", S8), "reverse_knob": ("src16", S8)}
    src, dst = fixed.get(variant, (source, S16))
    base_optim = trainer.optim
    if variant == "freeze_bn":
        trainer.optim = base_optim.model_copy(update={"freeze_bn_from": 16})
    if variant in ("knob", "reverse_knob"):
        trainer.optim = base_optim.model_copy(update={"recalibrate_bn": True})
    if variant == "micro16":
        trainer.optim = base_optim.model_copy(update={"micro_batch": {16: 16}})
    trainer.seed = seed
    trainer.on_batch = None
    try:
        trainer.start(dst, from_checkpoint=src)
        model, optimizer = trainer.model, trainer.optimizer
        assert model is not None and optimizer is not None
        if variant == "momentum":
            optimizer.load_state_dict(load_checkpoint(trainer._path(src))["optimizer"])
            trainer.set_lr(dst.lr)
        if variant == "bn_eval":
            bn_eval(model)
        if variant == "dropout0":
            for module in model.modules():
                if isinstance(module, nn.Dropout):
                    module.p = 0.0
        if variant == "warmup":
            lr = trainer.optim.lr(dst.lr)
            steps = math.ceil(len(trainer.train_records) / trainer.optim.effective_batch)
            for group in optimizer.param_groups:
                group["lr"] = lr / steps

            def ramp(step: int, total: int, metrics: dict[str, float]) -> None:
                if trainer.epoch == 1:
                    for group in optimizer.param_groups:
                        group["lr"] = lr * min(1.0, (step + 1) / total)

            trainer.on_batch = ramp
        if variant == "precise_bn":
            precise_bn(trainer, seed)
        scores = [trainer.evaluate()]
        for _ in range(epochs):
            trainer.train_epoch()
            if variant == "precise_bn":
                precise_bn(trainer, seed + 1000 * trainer.epoch)
            scores.append(trainer.evaluate())
        return scores
    finally:
        trainer.optim = base_optim
        trainer.on_batch = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/clip_change_dip"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--source",
        choices=("src8", "plan8"),
        default="plan8",
        help="the 8f lr 0.01 source: src8 (never trained at 16f) or plan8 (the demo path's)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    def log(message: str) -> None:
        print(message, flush=True)

    trainer = build(args.out)
    sources(trainer, log)
    plan_source(trainer, log)
    path = args.out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    scales = results.setdefault("logit_scale", {})
    for name in ("src8", "plan8"):
        if f"{name} at 16f" not in scales:
            scales[f"{name} at 8f"] = logit_scale(trainer, S8, name)
            scales[f"{name} at 16f"] = logit_scale(trainer, S16, name)
    log(f"logit scale (mean std of the eval logits over classes): {scales}")
    curves = results.setdefault("curves", {})
    for variant in args.variants:
        for seed in args.seeds:
            key = f"{args.source}:{variant}/{seed}"
            if key in curves:
                continue
            tick = time.perf_counter()
            curves[key] = move(trainer, args.source, variant, seed, args.epochs)
            log(f"{key}: {' '.join(f'{s:.3f}' for s in curves[key])} "
                f"({time.perf_counter() - tick:.0f} s)")  # fmt: skip
            path.write_text(json.dumps(results, indent=1))
    log(f"\n| {args.source}: variant | {' | '.join(f'ep {e}' for e in range(args.epochs + 1))} |")
    for variant in VARIANTS:
        runs = [c for k, c in curves.items() if k.split("/")[0] == f"{args.source}:{variant}"]
        if runs:
            means = [statistics.fmean(col) for col in zip(*runs, strict=False)]
            log(f"| {variant} ({len(runs)}) | {' | '.join(f'{m:.3f}' for m in means)} |")


if __name__ == "__main__":
    main()
