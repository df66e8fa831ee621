"""Annotation formats: robust parsing, errors naming file:line, labels in range."""

from __future__ import annotations

import json
import os

import pytest

from opplan.errors import ConfigError
from opplan.video.annotations import (
    VideoRecord,
    read_frame_list,
    read_hmdb51_split,
    read_kinetics_csv,
    read_reference_list,
    read_ssv2_json,
    read_ucf101_split,
    read_video_list,
    write_video_list,
)


def test_video_list_spaces_crlf_blank_lines_no_final_newline(tmp_path):
    file = tmp_path / "list.txt"
    file.write_bytes(b"my videos/a b.mp4 3\r\n\r\n  \r\nc.mp4\t0\r\nd.mp4 1")
    records = read_video_list(file, root="/data", num_classes=4)
    assert records == [
        VideoRecord(os.path.join("/data", "my videos/a b.mp4"), 3),
        VideoRecord(os.path.join("/data", "c.mp4"), 0),
        VideoRecord(os.path.join("/data", "d.mp4"), 1),
    ]


def test_malformed_line_names_file_and_line(tmp_path):
    file = tmp_path / "list.txt"
    file.write_text("a.mp4 1\n\nb.mp4 x\n")
    with pytest.raises(ConfigError, match=r"list\.txt:3: label must be an integer, got 'x'"):
        read_video_list(file)
    file.write_text("a.mp4 1\nonlyonefield\n")
    with pytest.raises(ConfigError, match=r"list\.txt:2: expected 'path label'"):
        read_video_list(file)


def test_label_out_of_range_is_an_error(tmp_path):
    file = tmp_path / "list.txt"
    file.write_text("a.mp4 0\nb.mp4 10\n")
    with pytest.raises(ConfigError, match=r"list\.txt:2: label 10 out of range \[0, 10\)"):
        read_video_list(file, num_classes=10)
    file.write_text("a.mp4 -1\n")
    with pytest.raises(ConfigError, match=r"list\.txt:1: label -1 out of range"):
        read_video_list(file)


def test_frame_and_reference_lists(tmp_path):
    file = tmp_path / "frames.txt"
    file.write_text("frames/v 1/ 120 5\r\nframes/v2 64 0")
    assert read_frame_list(file) == [
        VideoRecord("frames/v 1/", 5, 120),
        VideoRecord("frames/v2", 0, 64),
    ]
    file.write_text("a.mp4 300 2\n")
    assert read_reference_list(file, num_classes=3) == [VideoRecord("a.mp4", 2, 300)]
    file.write_text("a.mp4 0 2\n")
    with pytest.raises(ConfigError, match=r":1: frame count must be >= 1"):
        read_reference_list(file)
    file.write_text("a.mp4 2\n")
    with pytest.raises(ConfigError, match=r":1: expected 'path num_frames label'"):
        read_reference_list(file)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_video_list(tmp_path / "absent.txt")


def test_write_then_read_roundtrip(tmp_path):
    records = [VideoRecord("x y/z.mp4", 2), VideoRecord("w.mp4", 0)]
    write_video_list(tmp_path / "out.txt", records)
    assert read_video_list(tmp_path / "out.txt") == records


def test_ucf101(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 Archery\r\n")
    (tmp_path / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g01_c01.avi 2"
    )
    (tmp_path / "testlist01.txt").write_text("Archery/v_Archery_g02_c01.avi\n")
    train = read_ucf101_split(tmp_path / "trainlist01.txt", tmp_path / "classInd.txt")
    assert [r.label for r in train] == [0, 1]
    test = read_ucf101_split(tmp_path / "testlist01.txt", tmp_path / "classInd.txt", root="r")
    path = os.path.join("r", "Archery/v_Archery_g02_c01.avi")
    assert test == [VideoRecord(path, 1, group="v_Archery_g02")]
    (tmp_path / "bad.txt").write_text("Archery/v.avi 1\n")
    with pytest.raises(ConfigError, match=r"bad\.txt:1: label 1 disagrees"):
        read_ucf101_split(tmp_path / "bad.txt", tmp_path / "classInd.txt")
    (tmp_path / "bad.txt").write_text("Bowling/v.avi\n")
    with pytest.raises(ConfigError, match=r"bad\.txt:1: class 'Bowling'"):
        read_ucf101_split(tmp_path / "bad.txt", tmp_path / "classInd.txt")


def test_hmdb51(tmp_path):
    (tmp_path / "wave_test_split1.txt").write_text("w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n")
    (tmp_path / "brush_hair_test_split1.txt").write_text("b1.avi 1\r\nb2.avi 2\r\n")
    train = read_hmdb51_split(tmp_path, split=1, subset="train")
    assert train == [VideoRecord("brush_hair/b1.avi", 0), VideoRecord("wave/w1.avi", 1)]
    test = read_hmdb51_split(tmp_path, split=1, subset="test")
    assert [r.path for r in test] == ["brush_hair/b2.avi", "wave/w2.avi"]
    (tmp_path / "wave_test_split1.txt").write_text("w1.avi 7\n")
    with pytest.raises(ConfigError, match=r"wave_test_split1\.txt:1"):
        read_hmdb51_split(tmp_path)


def test_kinetics_csv(tmp_path):
    file = tmp_path / "train.csv"
    file.write_text(
        "label,youtube_id,time_start,time_end,split\r\n"
        "playing drums,abc,10,20,train\r\n\r\n"
        "abseiling,xyz,0,10,train\r\n"
    )
    records = read_kinetics_csv(file)
    assert records == [
        VideoRecord("playing drums/abc_000010_000020.mp4", 1, group="abc"),
        VideoRecord("abseiling/xyz_000000_000010.mp4", 0, group="xyz"),
    ]
    with pytest.raises(ConfigError, match=r"train\.csv:2: unknown class 'playing drums'"):
        read_kinetics_csv(file, classes=["abseiling"])
    file.write_text("label,youtube_id\nx,y\n")
    with pytest.raises(ConfigError, match="missing CSV columns"):
        read_kinetics_csv(file)


def test_ssv2_json(tmp_path):
    labels = {"Holding something": "0", "Pushing something from left to right": "1"}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    entries = [
        {"id": "42", "template": "Pushing [something] from left to right", "placeholders": []},
        {"id": "7", "template": "Holding [something]"},
    ]
    (tmp_path / "train.json").write_text(json.dumps(entries))
    records = read_ssv2_json(tmp_path / "train.json", tmp_path / "labels.json")
    assert records == [VideoRecord("42.webm", 1), VideoRecord("7.webm", 0)]
    (tmp_path / "train.json").write_text(json.dumps([{"id": "1", "template": "Jumping"}]))
    with pytest.raises(ConfigError, match="entry 1: class 'Jumping'"):
        read_ssv2_json(tmp_path / "train.json", tmp_path / "labels.json")
    (tmp_path / "train.json").write_text("[{")
    with pytest.raises(ConfigError, match=r"train\.json:1: invalid JSON"):
        read_ssv2_json(tmp_path / "train.json", tmp_path / "labels.json")
