"""Untrusted files cannot run code: checkpoints and weights load with ``weights_only=True``,
YAML with the safe loader; list paths stay under the dataset root unless the config allows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from _opplan_configs import RECIPE, video_config, write_yaml

from opplan.cli import main
from opplan.config import parse_config
from opplan.engine.build import load_lists
from opplan.engine.checkpoint import load_checkpoint
from opplan.errors import ConfigError
from opplan.planning.journal import read_journal


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def _malicious_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"model": {}, "state": "uniform 4f lr=0.05", "x": _Payload(marker)}, path)
    return path


def test_a_pickled_payload_in_a_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(ValueError, match=r"evil\.pt cannot be read"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_a_malicious_checkpoint_given_to_evaluate_is_refused(tiny_videos, tmp_path, capfd):
    marker = tmp_path / "pwned"
    evil = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    config = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    out = tmp_path / "eval.json"
    args = ["evaluate", str(config), "--checkpoint", str(evil), "--views", "1x1"]
    assert main([*args, "--out", str(out)]) == 2
    assert "--checkpoint" in capfd.readouterr().err
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("kind", ["checkpoint", "imagenet"])
def test_malicious_initial_weights_are_refused_at_start_up(tiny_videos, tmp_path, capfd, kind):
    marker = tmp_path / "pwned"
    evil = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    config = video_config(tiny_videos)
    config["trainer"]["model"] = {"name": "p3d_resnet18", "init": f"{kind}:{evil}"}
    path = write_yaml(tmp_path / "c.yaml", config)
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "model.init" in capfd.readouterr().err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_a_tampered_checkpoint_in_a_run_is_refused_on_resume(plan_reference, tmp_path, capfd):
    """A plan killed mid-transition, whose latest checkpoint is then replaced by a pickled
    payload: the resume refuses it with one line naming the file."""
    from _opplan_faults import Fault, run_cli

    config = plan_reference[0]
    run = tmp_path / "run"
    argv = ["plan", str(config), "--out", str(run)]
    assert run_cli(argv, fault=Fault("evaluate", 2)) == -9  # epoch 1 journaled, then killed
    latest = [e for e in read_journal(run / "journal.jsonl") if e["op"] == "epoch_scored"][-1]
    checkpoint = run / "checkpoints" / f"{latest['checkpoint']}.pt"
    marker = tmp_path / "pwned"
    _malicious_checkpoint(checkpoint, marker)
    capfd.readouterr()
    assert run_cli([*argv, "--resume"]) == 1
    err = capfd.readouterr().err
    assert f"opplan: error: checkpoint {checkpoint} cannot be read" in err
    assert "Traceback" not in err and not marker.exists()


PYTHON_TAG = "!!python/object/apply:builtins.open ['{marker}', 'w']\n"


def test_a_python_tag_in_the_config_is_refused(tmp_path, capfd):
    marker = tmp_path / "pwned"
    config = tmp_path / "c.yaml"
    config.write_text("name: x\ngraph:\n  kind: " + PYTHON_TAG.format(marker=marker))
    out = tmp_path / "run"
    assert main(["plan", str(config), "--out", str(out)]) == 2
    err = capfd.readouterr().err
    assert "c.yaml:3" in err and "Traceback" not in err
    assert not marker.exists() and not out.exists()


def test_a_python_tag_in_a_recipe_is_refused(tiny_videos, tmp_path, capfd):
    marker = tmp_path / "pwned"
    config = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps: " + PYTHON_TAG.format(marker=marker))
    out = tmp_path / "run"
    assert main(["train", str(config), "--recipe", str(recipe), "--out", str(out)]) == 2
    err = capfd.readouterr().err
    assert "r.yaml:1" in err and "Traceback" not in err
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("outside", ["../elsewhere/v.mp4", "/etc/passwd", "videos/../../v.mp4"])
def test_a_list_path_outside_the_root_is_refused(tiny_videos, tmp_path, capfd, outside):
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    with open(data / "train.txt", "a") as handle:
        handle.write(f"{outside} 3\n")
    line = len((data / "train.txt").read_text().splitlines())
    path = write_yaml(tmp_path / "c.yaml", video_config(data))
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capfd.readouterr().err
    assert f"train.txt:{line}: path '{outside}' lies outside the dataset root" in err
    assert "allow_outside_root" in err and not (tmp_path / "run").exists()


def test_outside_paths_are_accepted_when_the_config_allows_them(tiny_videos, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    elsewhere = tmp_path / "elsewhere.mp4"
    shutil.copy(data / (data / "train.txt").read_text().split()[0], elsewhere)
    with open(data / "train.txt", "a") as handle:
        handle.write(f"../elsewhere.mp4 3\n{elsewhere} 4\n")
    config = video_config(data)
    with pytest.raises(ConfigError, match="outside the dataset root"):
        load_lists(parse_config(config).trainer.data, "train")
    config["trainer"]["data"]["allow_outside_root"] = True
    records, _ = load_lists(parse_config(config).trainer.data, "train")
    assert [Path(r.path).resolve() for r in records[-2:]] == [elsewhere, elsewhere]
    assert [r.label for r in records[-2:]] == [3, 4]


def test_a_recipe_is_parsed_with_plain_types_only(tmp_path):
    """A recipe (as a plan writes it) round-trips through the safe loader."""
    from opplan.engine.recipe import read_recipe

    steps = read_recipe(write_yaml(tmp_path / "r.yaml", RECIPE))
    assert [(str(s.state), s.epochs) for s in steps] == [
        ("uniform 4f lr=0.05", 2),
        ("uniform 4f lr=0.005", 2),
    ]
