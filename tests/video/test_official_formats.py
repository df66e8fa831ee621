"""The benchmarks' own annotation files through the config (§5.1, Table 2): each format on a
miniature tree in its exact official layout, `opplan data check CONFIG`, a 1-epoch plan, the
shipped configs/paper/*.yaml, and bad input naming its file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from opplan.cli import main
from opplan.config import parse_config
from opplan.engine.data import class_names, planning_split, read_split
from opplan.testing import official_trees

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "paper"
BUILDERS = {
    "ucf101": official_trees.make_ucf101,
    "hmdb51": official_trees.make_hmdb51,
    "kinetics": official_trees.make_kinetics,
    "ssv1": official_trees.make_ssv1,
    "ssv2": official_trees.make_ssv2,
    "activitynet": official_trees.make_activitynet,
}
# Table 2's config of each dataset (the format's miniature tree stands in for the download)
PAPER = [
    ("ucf101", "ucf101.yaml"),
    ("hmdb51", "hmdb51.yaml"),
    ("kinetics", "kinetics400.yaml"),
    ("kinetics", "kinetics600.yaml"),
    ("ssv1", "ss-v1.yaml"),
    ("ssv2", "ss-v2.yaml"),
    ("activitynet", "activitynet.yaml"),
]
CLASS_NAMES = {
    "ucf101": ["ClassAMotion", "ClassBMotion", "ClassCMotion"],
    "hmdb51": ["brush_hair", "cartwheel", "catch"],
    "kinetics": ["abseiling", "air drumming", "answering questions"],
    "ssv1": [
        "Holding something",
        "Pushing something from left to right",
        "Putting something on a surface",
    ],
    "ssv2": [
        "Holding something",
        "Pushing something from left to right",
        "Putting something on a surface",
    ],
    "activitynet": ["Applying sunscreen", "Archery", "Arm wrestling"],
}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("official")
    return {name: (base / name, build(base / name)) for name, build in BUILDERS.items()}


def _config(data: dict, **data_changes) -> dict:
    return {
        "graph": {
            "kind": "basic",
            "samplings": ["uniform"],
            "clip_lengths": [4],
            "learning_rates": [0.05],
        },
        "planner": {"delay": 1, "max_epochs": 1},
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "threads": 1,
            "data": {**data, "frame_size": 32, **data_changes},
            "optim": {
                "effective_batch": 4,
                "reference_batch": 4,
                "base_micro_batch": 4,
                "base_clip_length": 4,
            },
        },
    }


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _label_from_path(fmt: str, path: str, classes: list[str]) -> int | None:
    """The class a video's path implies in the miniature trees (None: not in the path)."""
    parts = Path(path).parts
    for name in classes:
        if name in parts or f"_{name}_" in parts[-1]:
            return classes.index(name)
    return None


@pytest.mark.parametrize("fmt", list(BUILDERS))
def test_each_official_tree_reads_with_its_class_names(fmt, trees):
    _root, data = trees[fmt]
    config = parse_config(_config(data)).trainer.data
    assert class_names(config) == CLASS_NAMES[fmt]
    train, val, test = (read_split(config, s) for s in ("train", "val", "test"))
    expected = {"hmdb51": (12, 6), "kinetics": (17, 6)}.get(fmt, (18, 6))
    assert (len(train.records), len(test.records)) == expected
    assert len(val.records) == len(test.records)
    for lists in (train, test):
        assert {r.label for r in lists.records} == {0, 1, 2}
        assert all(Path(r.path).exists() for r in lists.records)
        for record in lists.records:
            implied = _label_from_path(fmt, record.path, CLASS_NAMES[fmt])
            assert implied in (None, record.label)
    assert not {r.path for r in train.records} & {r.path for r in test.records}
    fit, internal, num_classes = planning_split(config, seed=0)
    assert num_classes == 3 and len(internal) == len(val.records)
    assert not {r.path for r in internal} & {r.path for r in test.records}  # §5.1
    groups = {r.group for r in fit} & {r.group for r in internal}
    assert groups <= {None}  # no source on both sides


def test_groups_are_the_datasets_own(trees):
    ucf = read_split(parse_config(_config(trees["ucf101"][1])).trainer.data, "train").records
    assert ucf[0].group == "v_ClassAMotion_g02"
    hmdb = read_split(parse_config(_config(trees["hmdb51"][1])).trainer.data, "train").records
    assert {r.group for r in hmdb} == {"Film2", "Film3"}  # film 1 tests, film 4 unused
    kin = read_split(parse_config(_config(trees["kinetics"][1])).trainer.data, "train").records
    assert len({r.group for r in kin}) == 9  # two clips a youtube_id (one missing)


@pytest.mark.parametrize("fmt", list(BUILDERS))
def test_data_check_and_a_one_epoch_plan_on_the_tree(fmt, trees, tmp_path, capfd):
    _root, data = trees[fmt]
    config = _write(tmp_path / "c.yaml", _config(data))
    assert main(["data", "check", str(config)]) == 0
    out = capfd.readouterr().out
    assert "data usable" in out and "3 classes" in out
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 0
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["path"] and (tmp_path / "run" / "recipe.yaml").is_file()


def test_kinetics_missing_videos_are_counted_listed_once_and_skipped(trees, tmp_path, capfd):
    _root, data = trees["kinetics"]
    config = _write(tmp_path / "c.yaml", _config(data))
    assert main(["data", "check", str(config)]) == 0
    out = capfd.readouterr().out
    assert "train: 18 videos listed, 1 missing" in out and "missing: " in out
    assert main(["plan", str(config), "--out", str(tmp_path / "run")]) == 0
    health = json.loads((tmp_path / "run" / "data_health.json").read_text())
    [listed] = health["missing_from_download"]
    assert listed.endswith("_000010_000020.mp4") and health["bad_files"] == {}
    assert "1 listed videos are missing from the download" in capfd.readouterr().out
    strict = _write(tmp_path / "e.yaml", _config(data, missing="error"))
    assert main(["plan", str(strict), "--out", str(tmp_path / "strict")]) == 2
    err = capfd.readouterr().err
    assert "1 of 18 videos missing" in err and "train.csv" in err
    assert not (tmp_path / "strict").exists()


def test_kinetics_flat_layout_and_an_explicit_template(tmp_path):
    data = official_trees.make_kinetics(tmp_path / "k", layout="flat", missing=0)
    config = parse_config(_config(data)).trainer.data
    records = read_split(config, "train").records
    assert len(records) == 18 and all(Path(r.path).parent.name == "train" for r in records)
    template = "train/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
    pinned = parse_config(_config(data, video_template=template)).trainer.data
    assert read_split(pinned, "train").records == records


@pytest.mark.parametrize(("fmt", "name"), PAPER)
def test_the_paper_configs_pass_data_check_on_the_miniature_trees(
    fmt, name, trees, tmp_path, capfd
):
    """configs/paper/*.yaml name the official files: filling in data.root is all it takes."""
    root, _ = trees[fmt]
    config = yaml.safe_load((CONFIGS / name).read_text())
    data = config["trainer"]["data"]
    assert data["format"] == fmt
    data.update(root=str(root), num_workers=0)
    if fmt == "activitynet":
        data["videos"] = "videos"
    assert main(["data", "check", str(_write(tmp_path / "p.yaml", config))]) == 0
    assert "data usable" in capfd.readouterr().out


def _expect_exit_2(config: dict, tmp_path: Path, capfd, *needles: str) -> None:
    path = _write(tmp_path / "bad.yaml", config)
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capfd.readouterr().err
    for needle in needles:
        assert needle in err, err
    assert not (tmp_path / "run").exists()
    assert main(["data", "check", str(path)]) == 2
    capfd.readouterr()


def test_a_missing_label_file_exits_2_naming_it(trees, tmp_path, capfd):
    root, data = trees["ucf101"]
    copy = tmp_path / "ucf"
    shutil.copytree(root, copy)
    (copy / "ucfTrainTestlist" / "classInd.txt").unlink()
    _expect_exit_2(_config({**data, "root": str(copy)}), tmp_path, capfd, "classInd.txt")


def test_an_unknown_class_name_exits_2_naming_file_and_line(trees, tmp_path, capfd):
    root, data = trees["ssv1"]
    copy = tmp_path / "ssv1"
    shutil.copytree(root, copy, symlinks=True)
    file = copy / "something-something-v1-train.csv"
    lines = file.read_text().splitlines()
    lines[2] = lines[2].split(";")[0] + ";Juggling something"
    file.write_text("\n".join(lines) + "\n")
    _expect_exit_2(_config({**data, "root": str(copy)}), tmp_path, capfd,
                   "something-something-v1-train.csv:3", "Juggling something")  # fmt: skip


def test_a_split_out_of_range_exits_2_naming_the_field(trees, tmp_path, capfd):
    _, data = trees["ucf101"]
    _expect_exit_2(_config(data, split=4), tmp_path, capfd, "split")


def test_activitynet_json_without_database_exits_2(trees, tmp_path, capfd):
    root, data = trees["activitynet"]
    copy = tmp_path / "anet"
    shutil.copytree(root, copy)
    (copy / "activity_net.v1-3.min.json").write_text(json.dumps({"version": "1.3"}))
    _expect_exit_2(_config({**data, "root": str(copy)}), tmp_path, capfd, "'database'")


def test_videos_not_where_the_config_says_exit_2_saying_where(trees, tmp_path, capfd):
    _, data = trees["ssv2"]
    _expect_exit_2(_config(data, videos="elsewhere"), tmp_path, capfd,
                   "none of its 18 videos", "data.videos")  # fmt: skip


def test_a_user_group_pattern_keeps_sources_together(tmp_path):
    """``data.group_pattern`` over a plain list: clips ``s<k>_<n>.mp4`` of source k."""
    from opplan.video.synthetic import write_mp4

    lines = []
    for label in range(2):
        for source in range(4):
            for n in range(3):
                name = f"c{label}/s{label}{source}_{n}.mp4"
                write_mp4(tmp_path / name, official_trees._frames(n, label, 8, 32))
                lines.append(f"{name} {label}")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    data = {"root": str(tmp_path), "internal_val_size": 6, "val_list": None}
    config = parse_config(_config(data, group_pattern=r"/(s\d+)_\d+\.mp4$")).trainer.data
    fit, val, _ = planning_split(config, seed=3)
    assert len(val) == 6 and {r.group for r in val}.isdisjoint({r.group for r in fit})
    assert sorted({r.label for r in val}) == [0, 1]
    bad = parse_config(_config(data, group_pattern=r"nomatch(\d)")).trainer.data
    with pytest.raises(Exception, match="group_pattern"):
        planning_split(bad, seed=0)


def test_slowfast_csv_with_absolute_paths(tmp_path):
    from opplan.video.synthetic import write_mp4

    videos = tmp_path / "elsewhere"
    rows = []
    for i in range(4):
        write_mp4(videos / f"v {i}.mp4", official_trees._frames(i, i % 2, 8, 32))
        rows.append(f"{videos / f'v {i}.mp4'} {i % 2}")
    root = tmp_path / "lists"
    root.mkdir()
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    data = {"root": str(root), "format": "slowfast_csv", "train_list": "train.csv"}
    with pytest.raises(Exception, match="outside the dataset root"):
        read_split(parse_config(_config(data)).trainer.data, "train")
    config = parse_config(_config(data, allow_outside_root=True)).trainer.data
    records = read_split(config, "train").records
    assert [r.label for r in records] == [0, 1, 0, 1] and Path(records[2].path).is_file()


def test_class_names_travel_into_test_json_and_scores(trees, tmp_path, capfd):
    """UCF101 end to end: plan, train the recipe, the final test names the classes."""
    import numpy as np

    _, data = trees["ucf101"]
    config = _write(tmp_path / "c.yaml", _config(data))
    run = tmp_path / "run"
    assert main(["plan", str(config), "--out", str(run)]) == 0
    argv = ["train", str(config), "--recipe", str(run / "recipe.yaml"), "--out", str(run / "f")]
    assert main(argv) == 0
    out = run / "f" / "test.json"
    argv = ["evaluate", str(config), "--checkpoint", str(run / "f" / "model.pt")]
    assert main([*argv, "--views", "2x1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["class_names"] == CLASS_NAMES["ucf101"]
    assert "weakest classes: Class" in capfd.readouterr().out
    assert result["num_videos"] == 6
    scores = np.load(out.with_suffix(".scores.npz"))
    assert list(scores["class_names"]) == CLASS_NAMES["ucf101"]
    assert scores["scores"].shape == (6, 3)


def test_the_final_test_reports_videos_missing_from_the_download_outside_the_budget(
    tmp_path, capfd
):
    """Kinetics' validation misses videos too: the test excludes and lists them (reason
    'missing from the download') and still scores the rest at the default 1 % budget."""
    data = official_trees.make_kinetics(tmp_path / "k", missing=0)
    gone = sorted((tmp_path / "k" / "val").rglob("*.mp4"))[0]
    gone.unlink()
    config = _write(tmp_path / "c.yaml", _config(data))
    run = tmp_path / "run"
    assert main(["plan", str(config), "--out", str(run)]) == 0
    argv = ["train", str(config), "--recipe", str(run / "recipe.yaml"), "--out", str(run / "f")]
    assert main(argv) == 0
    out = tmp_path / "test.json"
    argv = ["evaluate", str(config), "--checkpoint", str(run / "f" / "model.pt")]
    assert main([*argv, "--views", "1x1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["num_videos"] == 5 and result["num_excluded"] == 1
    [excluded] = result["excluded"]
    assert Path(excluded["path"]).name == gone.name  # where the video was expected
    assert "missing from the download" in excluded["reason"]
