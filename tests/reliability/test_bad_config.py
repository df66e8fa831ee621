"""Bad configs, lists and graphs: one clear line naming the field or file:line, exit code 2,
and nothing written to the run directory (``--out`` stays absent). One test per case."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from _opplan_configs import RECIPE, video_config, write_yaml

from opplan.cli import main


def refused(capfd, argv: list[str], out: Path, *expected: str) -> str:
    """Run the CLI; check exit 2, a single stderr line holding ``expected``, no ``out``."""
    capfd.readouterr()
    assert main(argv) == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("opplan: error: "), err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    return lines[0]


def plan_refused(capfd, tmp_path: Path, config: dict[str, Any], *expected: str) -> str:
    path = write_yaml(tmp_path / "bad.yaml", config)
    out = tmp_path / "run"
    return refused(capfd, ["plan", str(path), "--out", str(out)], out, *expected)


def test_unknown_key(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["planner"]["dealy"] = 3
    plan_refused(capfd, tmp_path, config, "bad.yaml", "planner.dealy", "Extra inputs")


def test_unknown_key_in_the_trainer(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["trainer"]["data"]["frame_sise"] = 32
    plan_refused(capfd, tmp_path, config, "data.frame_sise")


def test_wrong_type(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["planner"]["max_epochs"] = "many"
    plan_refused(capfd, tmp_path, config, "planner.max_epochs", "integer")


def test_empty_list_in_the_graph(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["graph"]["learning_rates"] = []
    plan_refused(capfd, tmp_path, config, "learning_rates must not be empty")


def test_empty_training_list(tiny_videos, tmp_path, capfd):
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    (data / "train.txt").write_text("\n")
    plan_refused(capfd, tmp_path, video_config(data), "data.train_list", "has no videos")


def test_clip_length_longer_than_every_video(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["graph"]["clip_lengths"] = [4, 64]  # the videos have 16-24 frames
    plan_refused(
        capfd,
        tmp_path,
        config,
        "graph.clip_lengths: clip length 64 is longer than every",
        "data.train_list",
    )


def test_missing_config_file(tmp_path, capfd):
    out = tmp_path / "run"
    refused(capfd, ["plan", str(tmp_path / "nope.yaml"), "--out", str(out)], out, "nope.yaml")


def test_missing_data_root(tmp_path, capfd):
    plan_refused(capfd, tmp_path, video_config(tmp_path / "nope"), "data.train_list", "nope")


def test_missing_validation_list(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    del config["trainer"]["data"]["internal_val_size"]  # then val_list sizes the split
    config["trainer"]["data"]["val_list"] = "missing_val.txt"
    plan_refused(capfd, tmp_path, config, "data.val_list", "missing_val.txt")


def test_missing_initial_weights(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["trainer"]["model"] = {"init": f"checkpoint:{tmp_path / 'k400.pt'}"}
    plan_refused(capfd, tmp_path, config, "model.init", "k400.pt")


def test_missing_recipe(tiny_videos, tmp_path, capfd):
    config = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    out = tmp_path / "run"
    argv = ["train", str(config), "--recipe", str(tmp_path / "r.yaml"), "--out", str(out)]
    refused(capfd, argv, out, "r.yaml", "recipe not found")


def test_recipe_clip_longer_than_every_video(tiny_videos, tmp_path, capfd):
    config = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    steps = [{**RECIPE["steps"][0], "clip_length": 32}]
    recipe = write_yaml(tmp_path / "r.yaml", {"steps": steps})
    out = tmp_path / "run"
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(out)]
    refused(capfd, argv, out, "recipe: clip length 32 is longer than every")


def test_duplicate_states(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["graph"]["learning_rates"] = [0.05, 0.005, 0.05]
    plan_refused(capfd, tmp_path, config, "learning_rates has duplicates")


def _explicit(
    tiny_videos: Path, edges: list[list[str]], finals: list[str] | None = None
) -> dict[str, Any]:
    graph: dict[str, Any] = {"kind": "explicit", "edges": edges}
    if finals is not None:
        graph["finals"] = finals
    return video_config(tiny_videos, graph=graph)


A, B, C = "uniform 4f lr=0.05", "uniform 4f lr=0.005", "uniform 4f lr=0.0005"


def test_graph_with_a_cycle(tiny_videos, tmp_path, capfd):
    config = _explicit(tiny_videos, [["initial", A], [A, B], [B, C], [C, A]])
    plan_refused(capfd, tmp_path, config, "bad.yaml", "graph", "cycle")


def test_graph_with_an_unreachable_final_state(tiny_videos, tmp_path, capfd):
    config = _explicit(tiny_videos, [["initial", A], [B, C]], finals=[A, C])
    plan_refused(capfd, tmp_path, config, "graph", "not reachable from the initial state")


def test_graph_with_a_final_state_not_in_it(tiny_videos, tmp_path, capfd):
    config = _explicit(tiny_videos, [["initial", A], [A, B]], finals=[C])
    plan_refused(capfd, tmp_path, config, "graph", "final state", "not in the graph")


def test_graph_with_a_malformed_state(tiny_videos, tmp_path, capfd):
    config = _explicit(tiny_videos, [["initial", "uniform 4 frames"]])
    plan_refused(capfd, tmp_path, config, "graph", "edges[0]")


@pytest.mark.parametrize("existing", [False, True])
def test_an_existing_empty_out_stays_empty(tiny_videos, tmp_path, capfd, existing):
    """--out given as an existing empty directory: still nothing written into it."""
    out = tmp_path / "run"
    if existing:
        out.mkdir()
    config = video_config(tiny_videos)
    config["graph"]["clip_lengths"] = [64]
    path = write_yaml(tmp_path / "bad.yaml", config)
    capfd.readouterr()
    assert main(["plan", str(path), "--out", str(out)]) == 2
    assert "clip length 64" in capfd.readouterr().err
    assert (list(out.iterdir()) == []) if existing else not out.exists()
