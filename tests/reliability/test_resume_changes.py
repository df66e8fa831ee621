"""A resume must refuse what changed (exit 2, one line naming the run, file or field, nothing
written) and let through what cannot change results (``name``, ``epoch_delay``, ...).

Cases: ``opplan train --resume`` with another recipe (mid-step and finished runs), a run
of an older opplan (options added since, at their defaults, pass), a training in use
elsewhere, ``opplan plan --resume`` after the training list changed (cut,
classes dropped; a cosmetic edit passes), an edited ``RUN/config.yaml``, cosmetic fields.
"""

from __future__ import annotations

import copy
import fcntl
import json
import shutil
from pathlib import Path

import pytest
from _opplan_configs import RECIPE, video_config, write_yaml
from _opplan_faults import Fault, comparable, run_cli

from opplan.cli import main

SIMULATED = {
    "name": "sim",
    "graph": {
        "kind": "basic",
        "samplings": ["uniform"],
        "clip_lengths": [8],
        "learning_rates": [0.1, 0.01],
    },
    "planner": {"delay": 2, "max_epochs": 8},
    "trainer": {"kind": "simulated", "landscape": "random", "seed": 1},
}


def one_error_line(capfd) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("opplan: error: "), lines
    return lines[0]


def snapshot(run: Path) -> dict[str, bytes]:
    return {
        p.relative_to(run).as_posix(): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


# -- opplan train --resume ------------------------------------------------------------------
def _trained_copy(train_reference, tmp_path: Path, keep_events: int | None = None) -> Path:
    """A copy of the reference training; ``keep_events``: cut its journal (a killed run)."""
    _, _, run, _, _ = train_reference
    copy_dir = tmp_path / "run"
    shutil.copytree(run, copy_dir)
    if keep_events is not None:
        journal = copy_dir / "train_journal.jsonl"
        lines = journal.read_text().splitlines(keepends=True)
        journal.write_text("".join(lines[:keep_events]))
        (copy_dir / "train.json").unlink()
    return copy_dir


def _changed_recipes() -> dict[str, dict]:
    lr = copy.deepcopy(RECIPE)
    lr["steps"][0]["lr"] = 0.1
    sampling = copy.deepcopy(RECIPE)
    for step in sampling["steps"]:
        step["sampling"] = "consecutive"
    shorter = {"steps": RECIPE["steps"][:1]}
    return {"lr": lr, "sampling": sampling, "shorter": shorter}


@pytest.mark.parametrize("killed", [True, False], ids=["killed-in-step-0", "finished"])
@pytest.mark.parametrize("change", ["lr", "sampling", "shorter"])
def test_train_resume_with_another_recipe_is_refused(
    train_reference, tmp_path, capfd, killed, change
):
    config = train_reference[0]
    run = _trained_copy(train_reference, tmp_path, keep_events=1 if killed else None)
    before = snapshot(run)
    recipe = write_yaml(tmp_path / "other.yaml", _changed_recipes()[change])
    capfd.readouterr()
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(run), "--resume"]
    assert main(argv) == 2
    line = one_error_line(capfd)
    assert str(run) in line and "another recipe" in line and "recipe.yaml" in line
    assert snapshot(run) == before  # recipe.yaml, train.json, model.pt untouched


def _refuses_another_config(run, recipe, videos, tmp_path, capfd) -> None:  # type: ignore[no-untyped-def]
    """A resume with another weight decay is refused and writes nothing; so is one after
    RUN/config.yaml was edited to that config (the journal's hash, not the copy, decides)."""
    before = snapshot(run)
    other = video_config(videos)
    other["trainer"]["optim"]["weight_decay"] = 0.0
    argv = ["train", str(write_yaml(tmp_path / "o.yaml", other)), "--recipe", str(recipe)]
    capfd.readouterr()
    assert main([*argv, "--out", str(run), "--resume"]) == 2
    assert "another config" in one_error_line(capfd)
    assert snapshot(run) == before
    shutil.copy(tmp_path / "o.yaml", run / "config.yaml")
    assert main([*argv, "--out", str(run), "--resume"]) == 2
    assert "another config" in one_error_line(capfd)


def test_train_resume_with_another_config_is_refused_but_not_a_cosmetic_change(
    train_reference, tiny_videos, tmp_path, capfd
):
    _, recipe, _, summary, _ = train_reference
    run = _trained_copy(train_reference, tmp_path)
    _refuses_another_config(run, recipe, tiny_videos, tmp_path, capfd)

    cosmetic = video_config(tiny_videos, name="renamed")
    cosmetic["trainer"]["data"]["num_workers"] = 0  # explicit default, and a new name
    cosmetic["trainer"]["data"]["max_bad_fraction"] = 0.5
    argv = ["train", str(write_yaml(tmp_path / "c.yaml", cosmetic)), "--recipe", str(recipe)]
    assert main([*argv, "--out", str(run), "--resume"]) == 0
    assert json.loads((run / "train.json").read_text())["scores"] == summary["scores"]


def _as_older_opplan(run: Path, drop: dict[str, tuple[str, ...]]) -> str:
    """Make ``run`` look trained by an opplan without the options in ``drop``: removed from
    RUN/config.yaml, and the journal's epochs hashed like that dump. Returns the hash."""
    import yaml

    from opplan.config import dumped_config_hash

    data = yaml.safe_load((run / "config.yaml").read_text())
    for key, path in drop.items():
        node = data
        for part in path:
            node = node[part]
        del node[key]
    (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    older = dumped_config_hash(data)
    journal = run / "train_journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    journal.write_text("".join(json.dumps({**e, "config_hash": older}) + "\n" for e in events))
    return older


OLDER = {"recalibrate_bn": ("trainer", "optim"), "score_start": ("planner",)}


def test_train_resumes_a_run_of_an_older_opplan_whose_only_difference_is_new_options(
    train_reference, tmp_path, capfd
):
    config, recipe, _, summary, _ = train_reference
    run = tmp_path / "run"
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(run)]
    assert run_cli(argv, fault=Fault("journal_after", 1)) == -9  # killed after one epoch
    older = _as_older_opplan(run, OLDER)
    saved = (run / "config.yaml").read_text()
    assert main([*argv, "--resume"]) == 0
    assert json.loads((run / "train.json").read_text())["scores"] == summary["scores"]
    journal = (run / "train_journal.jsonl").read_text().splitlines()
    hashes = [json.loads(line)["config_hash"] for line in journal]
    assert hashes[0] == older and len(set(hashes)) == 2  # the new epochs: today's hash
    assert (run / "config.yaml").read_text() == saved  # kept: it proves the older epochs
    assert main([*argv, "--resume"]) == 0  # and again, finished, with both hashes


def test_an_older_run_with_another_config_or_a_forged_dump_is_still_refused(
    train_reference, tiny_videos, tmp_path, capfd
):
    _, recipe, _, _, _ = train_reference
    run = _trained_copy(train_reference, tmp_path, keep_events=1)
    _as_older_opplan(run, OLDER)
    _refuses_another_config(run, recipe, tiny_videos, tmp_path, capfd)


def test_train_resume_refused_while_in_use_writes_nothing(train_reference, tmp_path, capfd):
    config, recipe, _, _, _ = train_reference
    run = _trained_copy(train_reference, tmp_path, keep_events=1)
    same = tmp_path / "same.yaml"  # the same steps, another text: passes the recipe check
    same.write_text("# the same recipe\n" + recipe.read_text())
    before = snapshot(run)
    with open(run / ".lock", "w") as lock:  # another opplan holds the run
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        capfd.readouterr()
        argv = ["train", str(config), "--recipe", str(same), "--out", str(run), "--resume"]
        assert main(argv) == 2
        assert "in use by another opplan process" in one_error_line(capfd)
    assert snapshot(run) == before  # RUN/recipe.yaml not overwritten


def test_train_resume_refuses_changed_videos(tiny_videos, tmp_path, capfd):
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    config = write_yaml(tmp_path / "c.yaml", video_config(data))
    recipe = write_yaml(tmp_path / "r.yaml", RECIPE)
    run = tmp_path / "run"
    argv = ["train", str(config), "--recipe", str(recipe), "--out", str(run)]
    assert run_cli(argv, fault=Fault("journal_after", 1)) == -9  # one epoch journaled
    train = data / "train.txt"
    original = train.read_text()
    train.write_text("".join(original.splitlines(keepends=True)[:-3]))
    before = snapshot(run)
    capfd.readouterr()
    assert main([*argv, "--resume"]) == 2
    line = one_error_line(capfd)
    assert "cannot resume" in line and "data.train_list (train.txt)" in line, line
    assert snapshot(run) == before
    train.write_text(original)
    assert run_cli([*argv, "--resume"], fault=Fault("journal_after", 1)) == -9  # got past


# -- opplan plan --resume: the data -----------------------------------------------------
def _started_plan(tiny_videos: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the tiny dataset and a video plan on it killed right after its first
    journal event (plan_started, which holds the data fingerprint)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    config = write_yaml(tmp_path / "plan.yaml", video_config(data))
    run = tmp_path / "run"
    argv = ["plan", str(config), "--out", str(run)]
    assert run_cli(argv, fault=Fault("journal_after", 1)) == -9
    return data, config, run


def _resume_gets_past_the_checks(config: Path, run: Path) -> bool:
    """Resume, killed at its own first journal event: True if it got that far."""
    before = len((run / "journal.jsonl").read_text().splitlines())
    code = run_cli(["plan", str(config), "--out", str(run), "--resume"],
                   fault=Fault("journal_after", 1))  # fmt: skip
    return code == -9 and len((run / "journal.jsonl").read_text().splitlines()) == before + 1


def test_plan_resume_refuses_a_changed_training_list(tiny_videos, tmp_path, capfd):
    data, config, run = _started_plan(tiny_videos, tmp_path)
    train = data / "train.txt"
    original = train.read_text()
    lines = original.splitlines()
    before = snapshot(run)
    argv = ["plan", str(config), "--out", str(run), "--resume"]

    train.write_text("\n".join(lines[:-10]) + "\n")  # 10 videos fewer
    capfd.readouterr()
    assert main(argv) == 2
    line = one_error_line(capfd)
    now = f"now {len(lines) - 10 - 4} / 4"  # internal_val_size: 4
    assert "data.train_list" in line and str(train) in line and now in line, line
    assert snapshot(run) == before

    kept = [x for x in lines if int(x.split()[-1]) < 8]  # two classes dropped
    train.write_text("\n".join(kept) + "\n")
    assert main(argv) == 2
    line = one_error_line(capfd)
    assert "data.train_list" in line and "of 10 classes, now" in line and "of 8" in line, line
    assert snapshot(run) == before

    train.write_text(original.replace("\n", "\r\n") + "\n\n")  # the same records: no change
    assert _resume_gets_past_the_checks(config, run)


def test_plan_resume_refuses_another_internal_split(tiny_videos, tmp_path, capfd):
    """The files are unchanged but the split is not (e.g. the lists' videos changed under a
    frame-list root; forged here in the journal): refused, naming the internal split."""
    _, config, run = _started_plan(tiny_videos, tmp_path)
    journal = run / "journal.jsonl"
    event = json.loads(journal.read_text().splitlines()[0])
    event["data"]["split"] = "0" * 64  # as if the records had been others
    journal.write_text(json.dumps(event) + "\n")
    before = snapshot(run)
    capfd.readouterr()
    assert main(["plan", str(config), "--out", str(run), "--resume"]) == 2
    assert "the internal split has changed" in one_error_line(capfd)
    assert snapshot(run) == before


# -- opplan plan --resume: the config -----------------------------------------------------
def _killed_simulated_plan(tmp_path: Path, config: dict, kill_at: int = 12) -> Path:
    run = tmp_path / "run"
    path = write_yaml(tmp_path / "sim.yaml", config)
    argv = ["plan", str(path), "--out", str(run)]
    assert run_cli(argv, fault=Fault("journal_after", kill_at)) == -9
    assert not (run / "plan.json").exists()
    return run


def test_plan_resume_compares_with_the_journal_not_run_config_yaml(tmp_path, capfd):
    run = _killed_simulated_plan(tmp_path, SIMULATED)
    other = {**SIMULATED, "planner": {"delay": 3, "max_epochs": 12}}
    other_path = write_yaml(tmp_path / "other.yaml", other)
    shutil.copy(other_path, run / "config.yaml")  # the user edits the stored copy
    before = snapshot(run)
    capfd.readouterr()
    assert main(["plan", str(other_path), "--out", str(run), "--resume"]) == 2
    line = one_error_line(capfd)
    assert "different config" in line and "journal.jsonl" in line
    assert snapshot(run) == before
    # the journal's own config still resumes (whatever RUN/config.yaml says)
    original = write_yaml(tmp_path / "sim.yaml", SIMULATED)
    assert main(["plan", str(original), "--out", str(run), "--resume"]) == 0
    hashes = {json.loads(x).get("config_hash") for x in (run / "journal.jsonl").open()}
    assert len(hashes - {None}) == 1


def test_cosmetic_fields_do_not_block_a_resume(tmp_path, capfd):
    ref = tmp_path / "ref"
    assert main(["plan", str(write_yaml(tmp_path / "r.yaml", SIMULATED)), "--out", str(ref)]) == 0
    reference = comparable(json.loads((ref / "plan.json").read_text()))
    run = _killed_simulated_plan(tmp_path, SIMULATED)
    cosmetic = copy.deepcopy(SIMULATED)
    cosmetic["name"] = "renamed"
    cosmetic["trainer"]["epoch_delay"] = 0.001
    cosmetic["planner"]["keep_checkpoints"] = False
    cosmetic["executor"] = {"kind": "local", "max_retries": 1}
    path = write_yaml(tmp_path / "cosmetic.yaml", cosmetic)
    assert main(["plan", str(path), "--out", str(run), "--resume"]) == 0
    assert comparable(json.loads((run / "plan.json").read_text())) == reference


@pytest.mark.parametrize(
    "section, change",
    [("planner", {"family": "power"}), ("trainer", {"noise": 0.02})],
)
def test_a_change_of_results_blocks_a_resume(tmp_path, capfd, section, change):
    run = _killed_simulated_plan(tmp_path, SIMULATED)
    other = copy.deepcopy(SIMULATED)
    other[section] = {**other[section], **change}
    before = snapshot(run)
    capfd.readouterr()
    path = write_yaml(tmp_path / "other.yaml", other)
    assert main(["plan", str(path), "--out", str(run), "--resume"]) == 2
    assert "different config" in one_error_line(capfd)
    assert snapshot(run) == before
