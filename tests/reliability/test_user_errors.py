"""User errors that used to end in a traceback, and silent wrong results: each through the
real CLI, now exit 2 (or 1 for bad data) with one line naming the field, file or run, and
nothing written. See docs/reliability.md ("Resumes after edits, odd paths, ...")."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _opplan_configs import RECIPE, video_config, write_yaml

import opplan.baselines._run
import opplan.engine.checkpoint
from opplan.cli import main
from opplan.planning import TrainingState

SIMULATED = {
    "graph": {"kind": "basic", "samplings": ["uniform"], "clip_lengths": [8],
              "learning_rates": [0.1, 0.01]},
    "planner": {"delay": 2, "max_epochs": 8},
    "trainer": {"kind": "simulated", "landscape": "random", "seed": 1},
}  # fmt: skip


def one_error_line(capfd, *expected: str) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("opplan: error: "), lines
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


# -- --out that cannot be a run directory -------------------------------------------------
def _argv(command: str, tmp_path: Path, out: Path, videos: Path) -> list[str]:
    if command == "plan":
        return ["plan", str(write_yaml(tmp_path / "c.yaml", SIMULATED)), "--out", str(out)]
    if command == "train":
        config = write_yaml(tmp_path / "c.yaml", video_config(videos))
        recipe = write_yaml(tmp_path / "r.yaml", RECIPE)
        return ["train", str(config), "--recipe", str(recipe), "--out", str(out)]
    return ["data", "synth", "order", "--videos-per-class", "1", "--out", str(out)]


@pytest.mark.parametrize("command", ["plan", "train", "synth"])
def test_out_that_is_a_file(command, tiny_videos, tmp_path, capfd):
    out = tmp_path / "taken"
    out.write_text("not a directory\n")
    capfd.readouterr()
    assert main(_argv(command, tmp_path, out, tiny_videos)) == 2
    one_error_line(capfd, "--out", str(out), "is a file")
    assert out.read_text() == "not a directory\n"


def _read_only_parent(tmp_path: Path) -> Path:
    """A folder this process cannot create directories in (root ignores chmod: /sys)."""
    if os.geteuid() == 0:
        if not Path("/sys").is_dir():
            pytest.skip("root without /sys: no read-only folder to try")
        return Path("/sys")
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    return parent


@pytest.mark.parametrize("command", ["plan", "synth"])
def test_out_below_a_read_only_folder(command, tiny_videos, tmp_path, capfd):
    out = _read_only_parent(tmp_path) / "opplan-test-run"
    capfd.readouterr()
    assert main(_argv(command, tmp_path, out, tiny_videos)) == 2
    one_error_line(capfd, str(out))
    assert not out.exists()


# -- the graph against the values and the model ----------------------------------------------
def test_an_infinite_learning_rate_names_the_field(tmp_path, capfd):
    graph = {**SIMULATED["graph"], "learning_rates": [0.1, float("inf")]}
    path = write_yaml(tmp_path / "c.yaml", {**SIMULATED, "graph": graph})  # YAML: .inf
    assert ".inf" in path.read_text()
    capfd.readouterr()
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    one_error_line(capfd, "graph.learning_rates.1", "finite")
    assert not (tmp_path / "run").exists()


def test_clip_lengths_shorter_than_the_model_accepts(tiny_videos, tmp_path, capfd):
    config = video_config(tiny_videos)
    config["graph"]["clip_lengths"] = [1, 2]  # dg_p3d_tiny needs 2 frames at least
    path = write_yaml(tmp_path / "c.yaml", config)
    capfd.readouterr()
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    one_error_line(capfd, "graph.clip_lengths", "clip length 1", "dg_p3d_tiny", "2 frames")
    assert not (tmp_path / "run").exists()


def test_baseline_lengths_shorter_than_the_model_accepts(tiny_videos, tmp_path, capfd):
    path = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    out = tmp_path / "run"
    argv = ["baseline", str(path), "--lengths", "1,4", "--decay", "cosine", "--epochs", "2",
            "--sampling", "uniform", "--out", str(out), "--views", "none"]  # fmt: skip
    capfd.readouterr()
    assert main(argv) == 2
    one_error_line(capfd, "--lengths", "clip length 1", "dg_p3d_tiny")
    assert not out.exists()


def test_explicit_graph_refuses_unused_axes(tmp_path, capfd):
    graph = {"kind": "explicit", "edges": [["initial", "uniform 8f lr=0.1"]],
             "clip_lengths": [8, 16]}  # fmt: skip
    path = write_yaml(tmp_path / "c.yaml", {**SIMULATED, "graph": graph})
    capfd.readouterr()
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    one_error_line(capfd, "graph", "clip_lengths: not used with kind 'explicit'")


class _Captured(Exception):
    pass


EXPLICIT = {
    "kind": "explicit",
    "edges": [["initial", "uniform 4f lr=0.07"], ["uniform 4f lr=0.07", "uniform 8f lr=0.007"]],
}


def test_grid_and_baseline_search_the_explicit_graphs_own_axes(tiny_videos, tmp_path, monkeypatch):
    path = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos, graph=EXPLICIT))
    seen = {}

    def capture(name):  # type: ignore[no-untyped-def]
        def fake(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen[name] = args
            raise _Captured

        return fake

    monkeypatch.setattr(opplan.baselines._run, "run_grid", capture("grid"))
    monkeypatch.setattr(opplan.baselines._run, "run_schedule", capture("schedule"))
    with pytest.raises(_Captured):
        main(["grid", str(path), "--out", str(tmp_path / "grid"), "--budgets", "4"])
    spec = seen["grid"][1]
    assert {s.sampling for s in spec.schedules} == {"uniform"}
    assert {s.lrs for s in spec.schedules} == {(0.07, 0.007)}
    assert {tuple(s.lengths) for s in spec.schedules} <= {(4,), (8,), (4, 8)}
    assert spec.reference_length == 4
    out = str(tmp_path / "one")
    argv = ["baseline", str(path), "--lengths", "4", "--decay", "cosine", "--epochs", "2",
            "--sampling", "uniform", "--out", out, "--views", "none"]  # fmt: skip
    with pytest.raises(_Captured):
        main(argv)
    assert seen["schedule"][1].lrs == (0.07, 0.007)


# -- checkpoint ids ---------------------------------------------------------------------------
def test_states_differing_in_dropped_characters_keep_their_own_checkpoints(tmp_path, capfd):
    """Two explicit states whose names differ only in characters a file name drops: once
    they shared a checkpoint folder, and a state's checkpoint could be the other's."""
    a, b = "uniform 8f lr=0.1 aug=a+b", "uniform 8f lr=0.1 aug=a*b"
    graph = {"kind": "explicit", "edges": [["initial", a], ["initial", b]]}
    config = {**SIMULATED, "graph": graph, "planner": {"delay": 2, "max_epochs": 8}}
    run = tmp_path / "run"
    assert main(["plan", str(write_yaml(tmp_path / "c.yaml", config)), "--out", str(run)]) == 0
    events = [json.loads(x) for x in (run / "journal.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["op"] == "transition_finished"]
    assert len(finished) == 2 and len({e["checkpoint"].split("/")[0] for e in finished}) == 2
    for event in finished:
        saved = json.loads((run / "checkpoints" / f"{event['checkpoint']}.json").read_text())
        assert saved["state"] == event["dst"]
    plan = json.loads((run / "plan.json").read_text())
    final = json.loads((run / "checkpoints" / f"{plan['final_checkpoint']}.json").read_text())
    assert final["state"] == plan["best_final_state"]


def _old_slug(state: TrainingState) -> str:  # the id scheme before the hash
    return re.sub(r"[^A-Za-z0-9.=_-]+", "-", str(state).replace(" lr=", "-lr").strip())


def test_a_run_with_old_checkpoint_ids_still_resumes(tmp_path):
    from _opplan_faults import Fault, comparable, run_cli

    config = write_yaml(tmp_path / "c.yaml", SIMULATED)
    ref = tmp_path / "ref"
    assert main(["plan", str(config), "--out", str(ref)]) == 0
    run = tmp_path / "run"
    assert (
        run_cli(["plan", str(config), "--out", str(run)], fault=Fault("journal_after", 25)) == -9
    )
    # rename every checkpoint and journaled id to the old scheme
    journal = run / "journal.jsonl"
    text = journal.read_text()
    for line in text.splitlines():
        event = json.loads(line)
        if "src" in event and "dst" in event:
            src, dst = (TrainingState.parse(event[k]) for k in ("src", "dst"))
            new, old = f"{src.slug}__{dst.slug}", f"{_old_slug(src)}__{_old_slug(dst)}"
            if (run / "checkpoints" / new).exists():
                (run / "checkpoints" / new).rename(run / "checkpoints" / old)
            text = text.replace(new, old)
    journal.write_text(text)
    assert "initial__uniform-8f-lr0.1/e001" in text  # old ids in use
    assert main(["plan", str(config), "--out", str(run), "--resume"]) == 0
    plan, reference = (json.loads((d / "plan.json").read_text()) for d in (run, ref))
    final = json.loads((run / "checkpoints" / f"{plan.pop('final_checkpoint')}.json").read_text())
    assert final["state"] == plan["best_final_state"]
    reference.pop("final_checkpoint")
    assert comparable(plan) == comparable(reference)


# -- show on files that are not a plan's ----------------------------------------------------------
def test_show_on_a_garbage_plan_json(tmp_path, capfd):
    run = tmp_path / "run"
    run.mkdir()
    (run / "plan.json").write_text('{"transitions": [')
    capfd.readouterr()
    assert main(["show", str(run)]) == 2
    one_error_line(capfd, "plan.json", "invalid JSON")
    (run / "plan.json").write_text('{"transitions": 3}')
    assert main(["show", str(run)]) == 2
    one_error_line(capfd, "plan.json", "not a plan.json")


def test_show_and_resume_on_a_journal_with_an_unknown_op(tmp_path, capfd):
    config = write_yaml(tmp_path / "c.yaml", SIMULATED)
    run = tmp_path / "run"
    assert main(["plan", str(config), "--out", str(run)]) == 0
    (run / "plan.json").unlink()
    with open(run / "journal.jsonl", "a") as handle:
        handle.write(json.dumps({"op": "state_forgotten", "state": "x"}) + "\n")
    before = (run / "journal.jsonl").read_bytes()
    capfd.readouterr()
    assert main(["show", str(run)]) == 2
    line = one_error_line(capfd, "journal.jsonl:", "unknown journal op 'state_forgotten'")
    assert main(["plan", str(config), "--out", str(run), "--resume"]) == 2
    assert one_error_line(capfd) == line
    assert (run / "journal.jsonl").read_bytes() == before  # not cut off as a torn line


# -- bad data ---------------------------------------------------------------------------------
def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def test_an_audio_only_file_is_named_no_video_stream(tmp_path, capfd):
    _audio_only(tmp_path / "sound.mp4")
    (tmp_path / "list.txt").write_text("sound.mp4 0\n")
    out = tmp_path / "unreadable.txt"
    argv = [
        "data",
        "check",
        str(tmp_path / "list.txt"),
        "--root",
        str(tmp_path),
        "--out",
        str(out),
    ]
    main(argv)
    text = out.read_text()
    assert "no video stream" in text and "audio" in text and "tuple index" not in text


def test_bad_data_stop_from_a_dataloader_worker_is_one_message(tiny_videos, tmp_path, capfd):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    first = (data / "train.txt").read_text().splitlines()[0].rsplit(maxsplit=1)[0]
    (data / first).unlink()
    graph = {"kind": "basic", "samplings": ["uniform"], "clip_lengths": [4],
             "learning_rates": [0.05]}  # fmt: skip
    config = video_config(data, graph=graph, planner={"delay": 1, "max_epochs": 1})
    config["trainer"]["data"]["num_workers"] = 1
    config["trainer"]["data"]["max_bad_fraction"] = 0.0
    capfd.readouterr()
    path = write_yaml(tmp_path / "c.yaml", config)
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capfd.readouterr().err
    assert "DataLoader worker" not in err and "Traceback" not in err, err
    assert str(data / first) in err and err.count("opplan: error:") == 1


# -- recipes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "steps, expected",
    [
        ([{"sampling": "uniform", "clip_length": 4, "epochs": 2}], "steps[0].lr: Field required"),
        ([5], "steps[0]: Input should be a valid dictionary"),
        (
            [{**RECIPE["steps"][0], "lr_schedule": "cosine"}],
            "steps[0].lr_schedule: Extra inputs are not permitted",
        ),
        ([{**RECIPE["steps"][0], "weight_decay": 0.0}], "steps[0].weight_decay: Extra inputs"),
        ([{**RECIPE["steps"][0], "epochs": True}], "steps[0].epochs: Input should be a valid"),
        ([{**RECIPE["steps"][0], "lr": float("nan")}], "steps[0].lr: Input should be a finite"),
        ([{**RECIPE["steps"][0], "clip_length": 1}], "clip length 1 is shorter than model"),
    ],
)
def test_recipe_errors_name_the_field(tiny_videos, tmp_path, capfd, steps, expected):
    config = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    recipe = write_yaml(tmp_path / "r.yaml", {"steps": steps})
    out = tmp_path / "run"
    capfd.readouterr()
    assert main(["train", str(config), "--recipe", str(recipe), "--out", str(out)]) == 2
    one_error_line(capfd, "r.yaml", expected)
    assert not out.exists()


# -- signals ----------------------------------------------------------------------------------
def test_sigterm_during_a_plan_says_what_was_kept_and_how_to_resume(tmp_path):
    data = {**SIMULATED, "trainer": {**SIMULATED["trainer"], "epoch_delay": 0.02}}
    config = write_yaml(tmp_path / "c.yaml", data)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "opplan", "plan", str(config), "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        journal = run / "journal.jsonl"
        if journal.exists() and len(journal.read_text().splitlines()) > 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "terminated (SIGTERM)" in lines[0], err
    assert str(run) in lines[0] and "--resume" in lines[0] and "kept" in lines[0]
    assert main(["plan", str(config), "--out", str(run), "--resume"]) == 0


def test_ctrl_c_during_evaluate_does_not_suggest_resume(tiny_videos, tmp_path, capfd, monkeypatch):
    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(opplan.engine.checkpoint, "load_checkpoint", interrupted)
    config = write_yaml(tmp_path / "c.yaml", video_config(tiny_videos))
    capfd.readouterr()
    code = main(["evaluate", str(config), "--checkpoint", str(tmp_path / "m.pt")])
    assert code == 130
    err = capfd.readouterr().err
    assert "interrupted" in err and "--resume" not in err and "run `opplan evaluate`" in err
