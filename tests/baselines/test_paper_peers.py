"""``benchmarks.paper_tables peers`` at toy sizes: every method runs, the Markdown has a
row per method and a verdict per task, and a repeated command resumes without training."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import paper_tables
from opplan.engine import VideoTrainer

pytest.importorskip("optuna", reason="ASHA/Hyperband need the 'hpo' extra (optuna)")

TOY = ["--tasks", "order", "--videos-per-class", "4", "--frames", "24,40", "--lengths", "2,8"]
TOY += ["--lrs", "0.05,0.005", "--budgets", "2", "--decays", "3step", "--delay", "1"]
TOY += ["--max-epochs", "2", "--min-epochs-from-initial", "0", "--views", "1x1"]
TOY += ["--samplings", "uniform", "--multigrid-epochs", "3", "--keep", "1", "--probe-epochs", "1"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_peers_runs_every_method_and_resumes(tmp_path, monkeypatch):
    argv = ["peers", *TOY, "--work", str(tmp_path)]
    paper_tables.main(argv)
    text = (tmp_path / "peers.md").read_text()
    for label in (
        "planner (rise 3)",
        "planner (paper's rule)",
        "best hand-tuned (full grid)",
        "multigrid",
        "ASHA over the grid",
        "Hyperband over the grid",
        "top-k",
    ):
        assert f"| order | {label} |" in text, label
    assert "`order`: planner (rise 3):" in text and "target" in text
    calls = {"n": 0}
    original = VideoTrainer.train_epoch

    def counting(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(VideoTrainer, "train_epoch", counting)
    paper_tables.main(argv)
    assert calls["n"] == 0  # everything resumed from its run directory
    assert (tmp_path / "peers.md").read_text() == text
    # the searches replayed the seed's grid; trained instead, they decide and score the same
    root = tmp_path / "runs" / "order-dg_p3d_tiny-uniform-seed0"
    assert not any((root / s).exists() for s in ("asha", "hyperband", "topk"))
    paper_tables.main([*argv, "--train-searches"])
    for search in ("asha", "hyperband", "topk"):
        replayed = json.loads((root / f"{search}-replay" / "results.json").read_text())
        trained = json.loads((root / search / "results.json").read_text())
        assert calls["n"] > 0 and replayed["tests"] == trained["tests"]
        for r, t in zip(replayed["runs"], trained["runs"], strict=True):
            assert (r["schedule"], r["status"], r["epochs"]) == (
                t["schedule"], t["status"], t["epochs"]
            )  # fmt: skip
            assert r["val_score"] == t["val_score"]
