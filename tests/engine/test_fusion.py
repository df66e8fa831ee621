"""Late fusion of two-stream scores (issue 19, §5.5 Table 7): ``opplan fuse``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from opplan.cli import main
from opplan.engine.evaluate import EvalResult, read_scores, save_evaluation
from opplan.engine.fusion import fuse_scores, load_score_file, video_keys


def _save(out: Path, paths: list[str], labels: np.ndarray, scores: np.ndarray) -> Path:
    """An ``opplan evaluate`` result file pair (OUT.json + OUT.scores.npz) for these scores."""
    t = torch.from_numpy(scores.astype(np.float32))
    readable = ~torch.isnan(t).any(dim=1)
    result = EvalResult(
        top1=0.0, top5=0.0, num_videos=int(readable.sum()), views=(10, 3),
        per_class_accuracy=[], confusion=[], video_scores=t,
        labels=torch.from_numpy(labels), readable=readable, paths=tuple(paths),
    )  # fmt: skip
    save_evaluation(out, result, {"split": "test"})
    return out.with_suffix(".scores.npz")


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 12), st.integers(2, 7), st.integers(0, 2**31 - 1))
def test_fusing_identical_files_equals_either(videos, classes, seed):
    import tempfile

    rng = np.random.default_rng(seed)
    scores = _softmax(rng.standard_normal((videos, classes)))
    labels = rng.integers(0, classes, videos)
    with tempfile.TemporaryDirectory() as tmp:
        file = load_score_file(_save(Path(tmp) / "a.json", [f"v{k}.mp4" for k in range(videos)],
                                     labels, scores))  # fmt: skip
        fused = fuse_scores([file, file], [1.0, 2.5])
    np.testing.assert_allclose(fused.video_scores.numpy(), scores, rtol=1e-6)
    hits = scores.argmax(1) == labels
    assert fused.top1 == pytest.approx(hits.mean())
    top5 = np.argsort(-scores, 1)[:, :5] == labels[:, None]
    assert fused.top5 == pytest.approx(top5.any(1).mean())
    for c, acc in enumerate(fused.per_class_accuracy):
        assert acc == (
            None if not (labels == c).any() else pytest.approx(hits[labels == c].mean())
        )


def test_rgb_and_flow_paths_line_up_and_weights_average(tmp_path):
    rgb_paths = ["videos/a/0001.mp4", "videos/b/0001.mp4", "videos/b/0002.mp4"]
    flow_paths = ["/data/flow/videos/videos/b/0002", "/data/flow/videos/videos/a/0001",
                  "/data/flow/videos/videos/b/0001"]  # fmt: skip
    assert video_keys(rgb_paths, flow_paths) == [["a/0001", "b/0001", "b/0002"],
                                                 ["b/0002", "a/0001", "b/0001"]]  # fmt: skip
    labels = np.array([0, 1, 1])
    rgb = np.array([[0.6, 0.4], [0.6, 0.4], [0.2, 0.8]])
    flow = np.array([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9]])  # rows in flow_paths' order
    a = _save(tmp_path / "rgb.json", rgb_paths, labels, rgb)
    b = _save(tmp_path / "flow.json", flow_paths, labels[[2, 0, 1]], flow)
    out = tmp_path / "fused.json"
    assert main(["fuse", str(a), str(b), "--weights", "1,3", "--out", str(out)]) == 0
    fused = read_scores(out.with_suffix(".scores.npz"))["scores"]
    expected = (rgb + 3 * flow[[1, 2, 0]]) / 4
    np.testing.assert_allclose(fused, expected, rtol=1e-6)
    summary = json.loads(out.read_text())
    assert summary["top1"] == 1.0 and summary["weights"] == [1.0, 3.0]  # RGB alone: 2/3
    assert summary["per_class_accuracy"] == [1.0, 1.0]


def test_a_mismatched_video_set_exits_2_naming_the_first_missing_video(tmp_path, capsys):
    labels, scores = np.array([0, 1]), np.full((2, 2), 0.5)
    a = _save(tmp_path / "a.json", ["x/1.mp4", "x/2.mp4"], labels, scores)
    b = _save(tmp_path / "b.json", ["x/1.mp4", "x/3.mp4"], labels, scores)
    assert main(["fuse", str(a), str(b), "--out", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert "x/2.mp4" in err and "missing" in err
    c = _save(tmp_path / "c.json", ["x/1.mp4", "x/2.mp4"], np.array([1, 1]), scores)
    assert main(["fuse", str(a), str(c), "--out", str(tmp_path / "f.json")]) == 2
    assert "label" in capsys.readouterr().err
    assert (
        main(["fuse", str(a), str(tmp_path / "nope.npz"), "--out", str(tmp_path / "f.json")]) == 2
    )


def test_a_video_excluded_in_either_stream_is_excluded_from_the_fusion():
    import tempfile

    labels = np.array([0, 1, 1])
    with tempfile.TemporaryDirectory() as tmp:
        a = load_score_file(_save(Path(tmp) / "a.json", ["1", "2", "3"], labels,
                                  np.array([[1.0, 0], [np.nan, np.nan], [0, 1]])))  # fmt: skip
        b = load_score_file(_save(Path(tmp) / "b.json", ["1", "2", "3"], labels,
                                  np.array([[1.0, 0], [0, 1], [1, 0]])))  # fmt: skip
    fused = fuse_scores([a, b])
    assert fused.num_videos == 2 and list(fused.excluded) == ["2"]
    assert fused.top1 == pytest.approx(0.5)  # video 3: 0.5/0.5, the tie goes to class 0


def test_search_picks_the_weight_on_another_split_and_refuses_the_test(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 40)
    good = _softmax(np.eye(4)[labels] * 3 + rng.standard_normal((40, 4)))
    bad = _softmax(rng.standard_normal((40, 4)))
    val = [f"val/{k}.mp4" for k in range(40)]
    test = [f"test/{k}.mp4" for k in range(40)]
    a_val, b_val = (_save(tmp_path / f"{n}_val.json", val, labels, s)
                    for n, s in (("a", bad), ("b", good)))  # fmt: skip
    a, b = (_save(tmp_path / f"{n}.json", test, labels, s) for n, s in (("a", bad), ("b", good)))
    out = tmp_path / "fused.json"
    assert (
        main(["fuse", str(a), str(b), "--search", str(a_val), str(b_val), "--out", str(out)]) == 0
    )
    summary = json.loads(out.read_text())
    assert summary["search"]["weight"] > 1  # the informative stream weighs more
    assert summary["top1"] >= np.mean(bad.argmax(1) == labels)
    # the test's own videos are never used to choose the weight
    assert main(["fuse", str(a), str(b), "--search", str(a), str(b), "--out", str(out)]) == 2
    assert "never on the test" in capsys.readouterr().err


def test_a_result_json_in_place_of_its_scores_names_the_npz_beside_it(tmp_path, capsys):
    labels, scores = np.array([0, 1]), np.full((2, 2), 0.5)
    a = _save(tmp_path / "a.json", ["x/1.mp4", "x/2.mp4"], labels, scores)
    result = tmp_path / "a.json"  # what evaluate printed; the scores are a.scores.npz
    assert main(["fuse", str(result), str(a), "--out", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert "not an .npz archive" in err and str(a) in err and "pickle" not in err
    (tmp_path / "b.txt").write_text("x")  # not an archive, nothing beside it: no hint
    assert main(["fuse", str(tmp_path / "b.txt"), str(a), "--out", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert "not an .npz archive)" in err and "its scores are in" not in err
