"""``opplan data synth`` and ``opplan data check``."""

from __future__ import annotations

import argparse

import pytest

from opplan.cli import _data


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="opplan")
    _data.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_synth_then_check(tmp_path, capsys):
    out = tmp_path / "tempo"
    code = _run(
        [
            "data",
            "synth",
            "tempo",
            "--out",
            str(out),
            "--videos-per-class",
            "2",
            "--seed",
            "3",
            "--size",
            "32",
            "--frames",
            "16",
            "24",
        ]
    )
    assert code == 0
    lines = (out / "train.txt").read_text().splitlines() + (
        out / "val.txt"
    ).read_text().splitlines()
    assert len(lines) + len((out / "test.txt").read_text().splitlines()) == 20
    assert "train:" in capsys.readouterr().out
    report = tmp_path / "bad.txt"
    assert (
        _run(["data", "check", str(out / "train.txt"), "--root", str(out), "--out", str(report)])
        == 0
    )
    assert report.read_text() == ""
    # break two videos: one emptied, one truncated
    first, second = (line.split()[0] for line in lines[:2])
    (out / first).write_bytes(b"")
    data = (out / second).read_bytes()
    (out / second).write_bytes(data[: len(data) // 3])
    listing = out / "all.txt"
    listing.write_text("\n".join(lines))
    code = _run(
        ["data", "check", str(listing), "--root", str(out), "--out", str(report), "--full"]
    )
    assert code == 1
    bad = dict(line.split("\t") for line in report.read_text().splitlines())
    assert set(bad) == {str(out / first), str(out / second)}
    assert bad[str(out / first)] == "zero-byte file"


def test_synth_rejects_bad_size(tmp_path):
    from opplan.errors import ConfigError

    with pytest.raises(ConfigError, match="--size"):
        _run(["data", "synth", "order", "--out", str(tmp_path), "--size", "31"])


def test_check_frame_directories(tmp_path):
    import numpy as np
    from PIL import Image

    (tmp_path / "ok").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ok" / f"f{i}.jpg")
    (tmp_path / "list.txt").write_text("ok 3 0\nmissing dir 3 1\n")
    report = tmp_path / "bad.txt"
    argv = ["data", "check", str(tmp_path / "list.txt"), "--root", str(tmp_path), "--format",
            "frames", "--frame-template", "f{}.jpg", "--out", str(report)]  # fmt: skip
    # 'f{}.jpg' numbers frames from 1: frame f3.jpg is missing, so 'ok' fails a full check
    assert _run(argv) == 1
    lines = report.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        str(tmp_path / "ok"),
        str(tmp_path / "missing dir"),
    ]
    assert "missing frame directory" in lines[1]
