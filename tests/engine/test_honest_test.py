"""The final test never substitutes: an unreadable test video is excluded and reported (its
views credited to no other video), ``--strict`` stops at it, and the per-video scores are
saved to ``OUT.scores.npz`` for offline fusion."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import yaml

from opplan.cli import main
from opplan.engine.checkpoint import save_checkpoint
from opplan.engine.evaluate import evaluate_views, read_scores
from opplan.models import build_model
from opplan.video import DataHealthError, TransformConfig, VideoRecord, read_video_list
from opplan.video.synthetic import generate_dataset

CFG = TransformConfig.scaled(32)
STATE = "uniform 4f lr=0.05"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """10 classes x 5 videos of 16-24 frames (10 test videos)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("honest")
    generate_dataset("order", root, videos_per_class=5, size=32, min_frames=16, max_frames=24)
    return root


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("dg_p3d_tiny", num_classes=10).eval()


def _faststart_truncated(path: Path) -> None:
    """An mp4 with its index first, cut in half: it opens and its first frames decode, the
    later ones do not (so some views of it read and others fail)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(24):
            image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _break(kind: str, path: Path) -> str:
    """Make ``path`` unreadable; returns a word of its reason."""
    if kind == "zero-byte":
        path.write_bytes(b"")
        return "zero-byte"
    _faststart_truncated(path)
    return "decoding failed"


def _evaluate(model, records, **options):
    defaults = {"batch_size": 6, "num_workers": 0, "views": (2, 3)}
    return evaluate_views(  # consecutive: the truncated video's first clip reads, its last not
        model,
        records,
        sampling="consecutive",
        clip_length=4,
        num_classes=10,
        transform=CFG,
        **{**defaults, **options},
    )


@pytest.mark.parametrize(
    ("kind", "workers", "batch"),
    [("zero-byte", 0, 6), ("truncated-faststart", 0, 4), ("truncated-faststart", 2, 4)],
)
def test_a_broken_test_video_is_excluded_and_no_other_score_changes(
    tiny_data, model, tmp_path, kind, workers, batch
):
    good = read_video_list(tiny_data / "test.txt", root=tiny_data)
    bad = tmp_path / "broken.mp4"
    word = _break(kind, bad)
    records = [*good[:3], VideoRecord(str(bad), good[3].label), *good[3:]]
    health = tmp_path / "eval.data_health.json"
    result = _evaluate(model, records, num_workers=workers, batch_size=batch, health_file=health)
    reference = _evaluate(model, good)  # the same model on the list without it

    assert result.num_excluded == 1 and result.num_videos == len(good) == 10
    assert list(result.excluded) == [str(bad)] and word in result.excluded[str(bad)]
    assert result.readable.tolist() == [True] * 3 + [False] + [True] * 7
    assert torch.isnan(result.video_scores[3]).all()
    # every other video keeps exactly its own score: nothing was credited to it
    readable_scores = result.video_scores[result.readable]
    torch.testing.assert_close(readable_scores, reference.video_scores, rtol=0, atol=1e-6)
    if batch == 6:  # the same batches as the reference (6 views = 1 video): bit for bit
        assert torch.equal(readable_scores, reference.video_scores)
    assert (result.top1, result.top5) == (reference.top1, reference.top5)
    assert result.confusion == reference.confusion
    assert sum(map(sum, result.confusion)) == 10
    written = json.loads(health.read_text())
    assert written["num_videos"] == 11 and written["num_excluded"] == 1
    assert list(written["bad_files"]) == [str(bad)] and word in written["bad_files"][str(bad)]
    as_json = result.to_dict()
    assert as_json["num_excluded"] == 1 and as_json["num_videos"] == 10
    assert as_json["excluded"] == [{"path": str(bad), "reason": result.excluded[str(bad)]}]


def test_strict_and_the_budget_stop_the_evaluation(tiny_data, model, tmp_path):
    good = read_video_list(tiny_data / "test.txt", root=tiny_data)
    bad = tmp_path / "broken.mp4"
    _break("zero-byte", bad)
    records = [*good[:5], VideoRecord(str(bad), 0), *good[5:]]
    health = tmp_path / "h.json"
    with pytest.raises(DataHealthError, match=r"strict.*broken\.mp4: zero-byte"):
        _evaluate(model, records, views=(1, 1), strict=True, health_file=health, num_workers=2)
    assert list(json.loads(health.read_text())["bad_files"]) == [str(bad)]
    with pytest.raises(DataHealthError, match=r"1 of 11 test videos unreadable"):
        _evaluate(model, records, views=(1, 1), max_bad_fraction=0.05)
    assert _evaluate(model, records, views=(1, 1), max_bad_fraction=0.1).num_excluded == 1


def _cli_setup(tiny_data, model, tmp_path, max_bad_fraction):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    test_list = (data / "test.txt").read_text().splitlines()
    broken = data / test_list[2].rsplit(maxsplit=1)[0]
    broken.write_bytes(b"")
    config = {
        "trainer": {
            "kind": "video",
            "device": "cpu",
            "threads": 1,
            "eval_batch": 4,
            "data": {
                "root": str(data),
                "frame_size": 32,
                "internal_val_size": 6,
                "max_bad_fraction": max_bad_fraction,
            },
        }
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, {"model": model.state_dict(), "state": STATE})
    return path, checkpoint, broken


def test_evaluate_cli_strict_budget_and_scores_file(tiny_data, model, tmp_path, capfd):
    path, checkpoint, broken = _cli_setup(tiny_data, model, tmp_path, 0.2)
    out = tmp_path / "test.json"
    args = ["evaluate", str(path), "--checkpoint", str(checkpoint), "--views", "1x1"]
    capfd.readouterr()
    assert main([*args, "--out", str(out), "--strict"]) == 1
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(broken) in err and "strict" in err
    assert not out.exists() and not (tmp_path / "test.scores.npz").exists()

    assert main([*args, "--out", str(out)]) == 0
    assert "1 unreadable excluded" in capfd.readouterr().out
    result = json.loads(out.read_text())
    assert result["num_videos"] == 9 and result["num_excluded"] == 1
    assert result["excluded"][0]["path"] == str(broken)
    assert result["excluded"][0]["reason"] == "zero-byte file"
    assert result["scores_file"] == "test.scores.npz"
    health = json.loads((tmp_path / result["data_health_file"]).read_text())
    assert health["bad_files"] == {str(broken): "zero-byte file"}

    saved = read_scores(tmp_path / "test.scores.npz")
    listed = read_video_list(tmp_path / "data" / "test.txt", root=tmp_path / "data")
    assert saved["paths"].tolist() == [r.path for r in listed]
    assert saved["labels"].tolist() == [r.label for r in listed]
    assert saved["scores"].dtype == np.float32 and saved["scores"].shape == (10, 10)
    assert saved["readable"].tolist() == [r.path != str(broken) for r in listed]
    assert np.isnan(saved["scores"][~saved["readable"]]).all()
    np.testing.assert_allclose(saved["scores"][saved["readable"]].sum(1), 1.0, atol=1e-5)
    hits = saved["scores"].argmax(1) == saved["labels"]
    assert hits[saved["readable"]].mean() == pytest.approx(result["top1"])
    assert saved["views"].tolist() == [1, 1]


def test_evaluate_cli_past_the_default_budget_lists_the_file(tiny_data, model, tmp_path, capfd):
    path, checkpoint, broken = _cli_setup(tiny_data, model, tmp_path, 0.01)
    out = tmp_path / "test.json"
    args = ["evaluate", str(path), "--checkpoint", str(checkpoint), "--views", "1x1"]
    capfd.readouterr()
    assert main([*args, "--out", str(out)]) == 1
    err = capfd.readouterr().err
    assert "1 of 10 test videos unreadable" in err and str(broken) in err
    assert not out.exists()
    health = json.loads((tmp_path / "test.data_health.json").read_text())
    assert health["num_excluded"] == 1 and str(broken) in health["bad_files"]


def test_an_unreadable_validation_video_has_no_weight_in_the_planning_score(tiny_data, tmp_path):
    """Planning's internal validation (plan_eval) excludes a bad video too: the score is the
    one of the list without it (a stand-in would add another video's prediction)."""
    from opplan.engine import VideoTrainer
    from opplan.planning import TrainingState
    from opplan.video import DataHealth

    val = read_video_list(tiny_data / "val.txt", root=tiny_data)
    bad = tmp_path / "broken.mp4"
    _break("zero-byte", bad)

    def score(records, run):
        trainer = VideoTrainer(
            model_factory=lambda: build_model("dg_p3d_tiny", num_classes=10),
            train_records=val,
            val_records=records,
            checkpoint_dir=tmp_path / run,
            transform=CFG,
            eval_batch=4,
            metric="mean_top135",
            health=DataHealth(tmp_path / run, max_bad_fraction=0.5),
        )
        trainer.start(TrainingState.parse(STATE), None)
        return trainer.evaluate()

    with_bad = score([*val[:4], VideoRecord(str(bad), 0), *val[4:]], "bad")
    assert with_bad == score(val, "good") and 0 < with_bad < 1
    health = json.loads((tmp_path / "bad" / "data_health.json").read_text())
    assert health["bad_files"] == {str(bad): "zero-byte file"}
