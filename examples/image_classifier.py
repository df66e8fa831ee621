"""Plan your own training loop: a plain-PyTorch image classifier over resolution x lr.

No video and no download: the images (noisy oriented gratings, four classes) are made
here. The trainer below implements opplan's six-method protocol and acts on one extra
axis, ``size`` (the input resolution); the planner decides when to grow the resolution and
when to lower the learning rate, and prints the path it found::

    python examples/image_classifier.py --out runs/image_example
    python examples/image_classifier.py --quick      # a few seconds (run by the tests)

Run it again with the same ``--out`` and the finished plan is read back; interrupt it and
run it again and it continues where it stopped.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import opplan
from opplan.planning import TrainingState, TransitionGraph


def make_images(n: int, side: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` grayscale ``side`` x ``side`` gratings at one of four orientations, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    angle = labels.float() * math.pi / 4 + 0.2 * torch.randn(n, generator=g)
    freq = 0.5 + 0.3 * torch.rand(n, generator=g)
    ys, xs = torch.meshgrid(torch.arange(side).float(), torch.arange(side).float(), indexing="ij")
    phase = torch.rand(n, generator=g)[:, None, None] * 2 * math.pi
    proj = xs * torch.cos(angle)[:, None, None] + ys * torch.sin(angle)[:, None, None]
    images = torch.sin(freq[:, None, None] * proj + phase) + 0.5 * torch.randn(
        n, side, side, generator=g
    )
    return images[:, None], labels


class SmallNet(nn.Module):
    """Any input size works: the head pools globally."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2),
            nn.ReLU(),
        )
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


class ImageTrainer:
    """opplan's Trainer protocol around a plain PyTorch loop (checkpoints in ``folder``)."""

    extra_axes = ("size",)  # the one extra axis this loop acts on

    def __init__(self, folder: str | Path, n_train: int = 512, seed: int = 0) -> None:
        self.folder = Path(folder)
        self.seed = seed
        self.train_x, self.train_y = make_images(n_train, 32, seed)
        self.val_x, self.val_y = make_images(n_train // 2, 32, seed + 1)
        self.model = SmallNet()
        self.optimizer: torch.optim.Optimizer | None = None
        self.size, self.epoch = 32, 0

    def _set_state(self, state: TrainingState) -> None:
        self.size = int(dict(state.extra)["size"])
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=state.lr, momentum=0.9)

    def _at_size(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)

    # -- the protocol -------------------------------------------------------------------
    def start(self, state: TrainingState, from_checkpoint: str | None) -> None:
        torch.manual_seed(self.seed)
        self.model = SmallNet()
        if from_checkpoint is not None:
            self.model.load_state_dict(torch.load(self.folder / from_checkpoint)["model"])
        self._set_state(state)
        self.epoch = 0

    def resume(self, state: TrainingState, checkpoint_id: str) -> None:
        saved = torch.load(self.folder / checkpoint_id)
        self.model.load_state_dict(saved["model"])
        self._set_state(state)
        assert self.optimizer is not None
        self.optimizer.load_state_dict(saved["optimizer"])
        self.epoch = saved["epoch"]

    def train_epoch(self) -> dict[str, float]:
        assert self.optimizer is not None
        self.epoch += 1
        order = torch.randperm(
            len(self.train_y), generator=torch.Generator().manual_seed(self.epoch)
        )
        self.model.train()
        total = 0.0
        for batch in order.split(64):
            loss = F.cross_entropy(
                self.model(self._at_size(self.train_x[batch])), self.train_y[batch]
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()}")  # the transition diverged
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch)
        return {"loss": total / len(self.train_y)}

    @torch.no_grad()
    def evaluate(self) -> float:
        self.model.eval()
        predicted = self.model(self._at_size(self.val_x)).argmax(dim=1)
        return (predicted == self.val_y).float().mean().item()

    def save(self, checkpoint_id: str) -> None:
        path = self.folder / checkpoint_id
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.optimizer is not None
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
        }
        torch.save(state, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)  # atomic

    def release(self, checkpoint_id: str) -> None:
        (self.folder / checkpoint_id).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> opplan.planning.Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="run directory (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="tiny data and budgets")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="opplan-image-"))
    torch.set_num_threads(1 if args.quick else torch.get_num_threads())
    sizes = [8, 16] if args.quick else [8, 16, 32]
    graph = TransitionGraph.build(
        "basic", ["uniform"], [1], [0.1, 0.01], extra_axes={"size": sizes}
    )  # one "clip length": images are single frames
    trainer = ImageTrainer(out / "checkpoints", n_train=256 if args.quick else 2048)
    budget = {"delay": 2, "max_epochs": 7} if args.quick else {"delay": 5, "max_epochs": 40}
    plan = opplan.plan(graph, trainer, out, **budget)
    for step in plan.path:
        print(f"{step.state}  for {step.epochs} epochs")
    print(f"value {plan.value:.3f} after {plan.epochs_total} epochs; plan: {out / 'plan.json'}")
    return plan


if __name__ == "__main__":
    main()
