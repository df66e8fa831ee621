"""``benchmarks.two_stream``: the seeded configs, the per-seed fusion row read from real
``opplan fuse`` outputs, the table's mean ± sd, and the resume (a finished step not redone)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from benchmarks import two_stream


def _scores(path, rows, labels, split="test"):
    """An ``opplan evaluate`` result: ``path`` (.json with top1) and its .scores.npz."""
    scores = np.asarray(rows, dtype=np.float32)
    top1 = float(np.mean(scores.argmax(1) == np.asarray(labels)))
    path.parent.mkdir(parents=True, exist_ok=True)
    paths = np.array([f"{split}/c{y}/v{k}.mp4" for k, y in enumerate(labels)], dtype=str)
    np.savez(path.with_suffix(".scores.npz"), paths=paths,
             labels=np.asarray(labels, dtype=np.int64), scores=scores)  # fmt: skip
    path.write_text(json.dumps({"top1": top1}))
    return path


def test_seeded_config_sets_only_the_seed_and_name(tmp_path):
    source = tmp_path / "a.yaml"
    source.write_text("name: x\ntrainer: {kind: video, seed: 0, data: {root: r}}\n")
    target = two_stream.seeded_config(source, 2, tmp_path / "c" / "b.yaml")
    trainer = {"kind": "video", "seed": 2, "data": {"root": "r"}}
    assert yaml.safe_load(target.read_text()) == {"name": "x-seed2", "trainer": trainer}


def test_fuse_row_equal_and_val_searched_weight(tmp_path, capsys):
    labels = [0, 1, 0, 1]
    # RGB is sure and right on videos 0-1, weakly wrong on 2-3; flow right on all, less
    # sure: the 1:1 fusion gets all 4
    rgb_rows = [[0.9, 0.1], [0.1, 0.9], [0.45, 0.55], [0.55, 0.45]]
    flow_rows = [[0.6, 0.4], [0.4, 0.6], [0.7, 0.3], [0.3, 0.7]]
    # on val video 1, RGB is sure and wrong: 1 + 0.2 w < 0.8 w needs flow weight w > 5/3
    rgb_val, flow_val = [[0.9, 0.1], [1.0, 0.0]], [[0.6, 0.4], [0.2, 0.8]]
    rgb, flow = {}, {}
    for split, r, f, y in (
        ("test", rgb_rows, flow_rows, labels),
        ("val", rgb_val, flow_val, [0, 1]),
    ):
        rgb[split] = _scores(tmp_path / "rgb" / f"{split}.json", r, y, split)
        flow[split] = _scores(tmp_path / "flow" / f"{split}.json", f, y, split)
    row = two_stream.fuse(rgb, flow, tmp_path / "fused" / "s0.json")
    assert row["rgb"] == 0.5 and row["flow"] == 1.0
    assert row["fused"] == 1.0  # 1:1: (0.45+0.7, 0.55+0.3) etc.
    assert row["flow_weight"] == 1.75  # the smallest grid weight (steps of 0.25) above 5/3
    assert row["searched"] == 1.0
    # resumed: the fused files exist, so no opplan call is made
    capsys.readouterr()
    assert two_stream.fuse(rgb, flow, tmp_path / "fused" / "s0.json") == row
    assert "$ opplan" not in capsys.readouterr().out


def test_table_mean_and_sample_sd():
    rows = {s: {"rgb": r, "flow": 0.5, "fused": 0.6, "searched": 0.7, "flow_weight": 1.0}
            for s, r in ((0, 0.6), (1, 0.7), (2, 0.65))}  # fmt: skip
    text = two_stream.table(rows)
    assert "| 1 | 0.70 | 0.50 | 0.60 | 0.70 (flow × 1) |" in text
    assert "**0.650 ± 0.050**" in text and "**0.500 ± 0.000**" in text


@pytest.mark.parametrize("seeds", [[0]])
def test_table_of_one_seed_has_no_mean_row(seeds):
    rows = {s: {"rgb": 0.6, "flow": 0.5, "fused": 0.6, "searched": 0.7, "flow_weight": 2.5}
            for s in seeds}  # fmt: skip
    text = two_stream.table(rows)
    assert "mean" not in text and "(flow × 2.5)" in text
