"""A checkpoint that does not fit the network is refused at start-up through the real CLI:
exit 2, one line naming the keys, nothing written to the run directory (§5.5 fine-tuning)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torchvision
from _opplan_configs import video_config, write_yaml

from opplan.cli import main
from opplan.models import build_model


def _refused(capfd, argv: list[str], out: Path, *expected: str) -> str:
    capfd.readouterr()
    assert main(argv) == 2
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("opplan: error: "), lines
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    return lines[0]


def _plan_config(tiny_videos: Path, tmp_path: Path, checkpoint: Path) -> Path:
    config = video_config(tiny_videos)
    config["trainer"]["model"] = {"name": "dg_p3d_tiny", "init": f"checkpoint:{checkpoint}"}
    return write_yaml(tmp_path / "finetune.yaml", config)


def test_plan_refuses_a_checkpoint_of_another_network(tiny_videos, tmp_path, capfd):
    # a torchvision R3D-18 saved as PySlowFast does, for a DG-P3D plan
    source = torchvision.models.video.r3d_18(weights=None, num_classes=400)
    torch.save({"model_state": source.state_dict(), "epoch": 196}, tmp_path / "r3d.pyth")
    config = _plan_config(tiny_videos, tmp_path, tmp_path / "r3d.pyth")
    out = tmp_path / "run"
    _refused(
        capfd,
        ["plan", str(config), "--out", str(out)],
        out,
        "model.init: ",
        "r3d.pyth (PySlowFast) does not fit dg_p3d_tiny",
        "missing (stem.conv.weight, stem.bn.weight, stem.bn.bias, ...",
        "unexpected (stem.0.weight, stem.1.weight, stem.1.bias, ...",
    )


def test_plan_refuses_a_single_head_checkpoint_for_dg_p3d(tiny_videos, tmp_path, capfd):
    # MMAction2 layout of the single-head P3D: DG-P3D's global context and spatial head miss
    source = build_model("p3d_tiny", num_classes=400)
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    torch.save({"meta": {}, "state_dict": state}, tmp_path / "p3d.pth")
    config = _plan_config(tiny_videos, tmp_path, tmp_path / "p3d.pth")
    out = tmp_path / "run"
    _refused(
        capfd,
        ["plan", str(config), "--out", str(out)],
        out,
        "p3d.pth (MMAction2) does not fit dg_p3d_tiny: ",
        "missing (res2.0.gc.",
        "after removing backbone.",
    )


def test_evaluate_refuses_foreign_and_mismatched_checkpoints(tiny_videos, tmp_path, capfd):
    config = write_yaml(tmp_path / "eval.yaml", video_config(tiny_videos))  # dg_p3d_tiny
    state = build_model("dg_p3d_tiny", num_classes=10).state_dict()
    cases = {
        "bare.pt": (state, "a state dict checkpoint without opplan's training 'state'"),
        "other.pt": (
            {
                "model": build_model("p3d_tiny", num_classes=10).state_dict(),
                "state": "uniform 4f lr=0.05",
            },
            "other.pt (opplan) does not fit dg_p3d_tiny: ",  # the file named
        ),
        "classes.pt": (
            {
                "model": build_model("dg_p3d_tiny", num_classes=7).state_dict(),
                "state": "uniform 4f lr=0.05",
            },
            "mis-shaped (head.fc.weight (7, 128) in the file, (10, 128) in the model",
        ),
        "garbage_state.pt": ({"model": state, "state": "twelve"}, "its 'state': cannot parse"),
        "no_state.pt": ({"model": state}, "without opplan's training 'state'"),
    }
    for name, (obj, expected) in cases.items():
        torch.save(obj, tmp_path / name)
        out = tmp_path / f"{name}.json"
        argv = ["evaluate", str(config), "--checkpoint", str(tmp_path / name), "--views", "1x1"]
        _refused(capfd, [*argv, "--out", str(out)], out, "--checkpoint", expected)


def test_plan_fine_tunes_from_a_pyslowfast_checkpoint(tiny_videos, tmp_path, capfd):
    # the §5.5 flow: a 400-class (Kinetics-400) DG-P3D in PySlowFast's layout, 10 classes here
    source = build_model("dg_p3d_tiny", num_classes=400)
    torch.save({"model_state": source.state_dict(), "epoch": 196}, tmp_path / "k400.pyth")
    config = video_config(tiny_videos, planner={"delay": 1, "max_epochs": 1})
    config["graph"]["learning_rates"] = [0.005]
    config["trainer"]["model"] = {"init": f"checkpoint:{tmp_path / 'k400.pyth'}"}
    path = write_yaml(tmp_path / "finetune.yaml", config)
    capfd.readouterr()
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 0
    printed = capfd.readouterr().out
    assert "PySlowFast checkpoint, " in printed
    assert "new classifier (400 classes in the checkpoint)" in printed
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    ckpt = tmp_path / "run" / "checkpoints" / f"{plan['final_checkpoint']}.pt"
    trained = torch.load(ckpt, weights_only=True)["model"]
    assert trained["head.fc.weight"].shape == (10, 128)
    for key in ("stem.conv.weight", "res5.0.conv1.spatial.weight"):  # one epoch from the file
        start = source.state_dict()[key]
        assert (trained[key] - start).norm() < 0.05 * start.norm(), key
