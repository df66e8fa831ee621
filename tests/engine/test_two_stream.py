"""The flow stream end to end (issue 19, §5.5): a flow config (data.modality: flow, folders
in MMAction2's layout written here, no OpenCV) trains along an RGB run's recipe, is tested
like RGB, and its scores fuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from opplan.cli import main
from opplan.engine.evaluate import read_scores


def _flow_tree(root: Path) -> None:
    """4 classes told apart by the flow's direction (x right/left, y up/down), 16 px."""
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    directions = [(40, 0), (-40, 0), (0, 40), (0, -40)]
    for label, (dx, dy) in enumerate(directions):
        for k, split in enumerate(["train", "train", "train", "val", "test"]):
            folder = root / "flow" / f"c{label}" / f"{k}"
            folder.mkdir(parents=True)
            for n in range(1, 9):
                for axis, d in (("x", dx), ("y", dy)):
                    plane = np.clip(128 + d + rng.normal(0, 8, (16, 16)), 0, 255)
                    Image.fromarray(plane.astype(np.uint8)).save(
                        folder / f"flow_{axis}_{n:05d}.png"
                    )
            lists[split].append(f"flow/c{label}/{k} 8 {label}")
    for split, lines in lists.items():
        (root / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines))


@pytest.mark.slow
def test_flow_trains_along_the_rgb_recipe_is_tested_and_fuses(tmp_path):
    root = tmp_path / "data"
    _flow_tree(root)
    config = {
        "graph": {"kind": "basic", "samplings": ["consecutive"], "clip_lengths": [4],
                  "learning_rates": [0.1]},
        "planner": {"delay": 1, "max_epochs": 2},
        "trainer": {
            "kind": "video", "device": "cpu", "threads": 1, "eval_batch": 8,
            "data": {"root": str(root), "format": "frame_list", "modality": "flow",
                     "flow_template": "flow_{axis}_{:05d}.png", "frame_size": 16,
                     "cache": "memory"},
            "model": {"name": "dg_p3d_tiny"},
            "optim": {"effective_batch": 4, "reference_batch": 4, "base_micro_batch": 4,
                      "base_clip_length": 4},
        },
    }  # fmt: skip
    flow_config = tmp_path / "flow.yaml"
    flow_config.write_text(yaml.safe_dump(config))
    rgb_run = tmp_path / "rgb"  # the RGB run's recipe, as `opplan plan` writes it
    rgb_run.mkdir()
    recipe = "steps:\n- {sampling: consecutive, clip_length: 4, lr: 0.1, epochs: 2}\n"
    (rgb_run / "recipe.yaml").write_text(recipe)
    run = tmp_path / "flow-run"
    args = [str(flow_config), "--recipe", str(rgb_run / "recipe.yaml"), "--out", str(run)]
    assert main(["train", *args]) == 0
    assert (run / "recipe.yaml").read_text() == recipe  # the RGB path, reused (§5.5)
    assert json.loads((run / "train.json").read_text())["final_state"] == "consecutive 4f lr=0.1"
    out = run / "final" / "test.json"
    assert main(["evaluate", str(flow_config), "--checkpoint", str(run / "model.pt"),
                 "--views", "2x1", "--out", str(out)]) == 0  # fmt: skip
    scores = read_scores(out.with_suffix(".scores.npz"))
    assert scores["scores"].shape == (4, 4) and scores["readable"].all()
    fused = tmp_path / "fused.json"
    npz = str(out.with_suffix(".scores.npz"))
    assert main(["fuse", npz, npz, "--out", str(fused)]) == 0
    assert json.loads(fused.read_text())["top1"] == json.loads(out.read_text())["top1"]
    # planning on the flow config plans its own path
    assert main(["plan", str(flow_config), "--out", str(tmp_path / "flow-plan")]) == 0
    assert (tmp_path / "flow-plan" / "recipe.yaml").is_file()
