"""The image classifier of ``image_classifier.py``, trained through PyTorch Lightning.

The LightningModule stays an ordinary one; a thin adapter implements opplan's Trainer
protocol around it (one ``L.Trainer.fit`` of one epoch per ``train_epoch``). The planner
chooses when to grow the resolution (``size``) and when to lower the learning rate::

    pip install 'opplan[lightning]'
    python examples/lightning_classifier.py --out runs/lightning_example
    python examples/lightning_classifier.py --quick     # a few seconds (run by the tests)
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import opplan
from opplan.planning import TrainingState, TransitionGraph

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_classifier import SmallNet, make_images  # the sibling example


class Classifier(L.LightningModule):
    """A plain LightningModule; ``size`` and ``lr`` are set by the planner's state."""

    def __init__(self) -> None:
        super().__init__()
        self.net = SmallNet()
        self.size, self.lr = 32, 0.1
        self.optimizer: torch.optim.Optimizer | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()}")  # the transition diverged
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        assert self.optimizer is not None  # kept across fits: momentum carries over epochs
        return self.optimizer


class LightningTrainer:
    """opplan's Trainer protocol around a LightningModule (checkpoints in ``folder``)."""

    extra_axes = ("size",)

    def __init__(self, folder: str | Path, n_train: int = 512, seed: int = 0) -> None:
        self.folder, self.seed = Path(folder), seed
        self.train = TensorDataset(*make_images(n_train, 32, seed))
        self.val_x, self.val_y = make_images(n_train // 2, 32, seed + 1)
        self.module = Classifier()
        self.epoch = 0

    def _set_state(self, state: TrainingState) -> None:
        self.module.size = int(dict(state.extra)["size"])
        self.module.optimizer = torch.optim.SGD(
            self.module.parameters(), lr=state.lr, momentum=0.9
        )

    def start(self, state: TrainingState, from_checkpoint: str | None) -> None:
        torch.manual_seed(self.seed)
        self.module = Classifier()
        if from_checkpoint is not None:
            self.module.load_state_dict(torch.load(self.folder / from_checkpoint)["model"])
        self._set_state(state)
        self.epoch = 0

    def resume(self, state: TrainingState, checkpoint_id: str) -> None:
        saved = torch.load(self.folder / checkpoint_id)
        self.module.load_state_dict(saved["model"])
        self._set_state(state)
        assert self.module.optimizer is not None
        self.module.optimizer.load_state_dict(saved["optimizer"])
        self.epoch = saved["epoch"]

    def train_epoch(self) -> None:
        self.epoch += 1
        shuffle = torch.Generator().manual_seed(self.epoch)
        loader = DataLoader(self.train, batch_size=64, shuffle=True, generator=shuffle)
        trainer = L.Trainer(
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(self.module, loader)

    @torch.no_grad()
    def evaluate(self) -> float:
        self.module.eval()
        return (self.module(self.val_x).argmax(dim=1) == self.val_y).float().mean().item()

    def save(self, checkpoint_id: str) -> None:
        path = self.folder / checkpoint_id
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.module.optimizer is not None
        state = {
            "model": self.module.state_dict(),
            "optimizer": self.module.optimizer.state_dict(),
            "epoch": self.epoch,
        }
        torch.save(state, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)

    def release(self, checkpoint_id: str) -> None:
        (self.folder / checkpoint_id).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> opplan.planning.Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="run directory (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="tiny data and budgets")
    args = parser.parse_args(argv)
    logging.getLogger("lightning").setLevel(logging.ERROR)  # one line per fit otherwise
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")  # "no validation loop", workers
    out = args.out or Path(tempfile.mkdtemp(prefix="opplan-lightning-"))
    if args.quick:
        torch.set_num_threads(1)
    sizes = [8, 16] if args.quick else [8, 16, 32]
    graph = TransitionGraph.build(
        "basic", ["uniform"], [1], [0.1, 0.01], extra_axes={"size": sizes}
    )  # one "clip length": images are single frames
    trainer = LightningTrainer(out / "checkpoints", n_train=256 if args.quick else 2048)
    budget = {"delay": 2, "max_epochs": 6} if args.quick else {"delay": 5, "max_epochs": 40}
    plan = opplan.plan(graph, trainer, out, **budget)
    for step in plan.path:
        print(f"{step.state}  for {step.epochs} epochs")
    print(f"value {plan.value:.3f} after {plan.epochs_total} epochs; plan: {out / 'plan.json'}")
    return plan


if __name__ == "__main__":
    main()
