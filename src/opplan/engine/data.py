"""From ``data:`` in a config to the records of each list (§5.1, Table 2).

``data.format`` names either a list format (``video_list``, ``frame_list``, ``reference_list``,
``slowfast_csv``) or a dataset whose own annotation files are read as distributed (``ucf101``,
``hmdb51``, ``kinetics``, ``ssv1``, ``ssv2``, ``activitynet``). Class names travel with the
labels where the files give them. Videos an official list names but the download lacks (for
Kinetics typically 3-10 %) follow ``data.missing``: counted and left out of the training and
validation lists (``skip``), or fatal (``error``); the final test keeps them so that it
excludes and reports them, never scores another video in their place.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import opplan.video.annotations as ann  # `from opplan.video import` finds __future__s
from opplan.config import DataConfig
from opplan.errors import ConfigError
from opplan.video import VideoRecord, internal_val_split, official

__all__ = [
    "SplitRecords",
    "class_names",
    "load_lists",
    "missing_videos",
    "planning_split",
    "read_split",
]

Split = str  # "train" | "val" | "test"
OFFICIAL = ("ucf101", "hmdb51", "kinetics", "ssv1", "ssv2", "activitynet")


@dataclass(frozen=True)
class SplitRecords:
    """One list of the config: its records, the class names (None when the files give no
    names), the listed videos absent from the download, and what to call the list."""

    records: list[VideoRecord]
    classes: list[str] | None
    missing: list[str] = field(default_factory=list)
    where: str = ""

    @property
    def num_classes(self) -> int:
        if self.classes is not None:
            return len(self.classes)
        return 1 + max((r.label for r in self.records), default=-1)


def _list_file(data: DataConfig, split: Split) -> Path:
    name = {"train": data.train_list, "val": data.val_list, "test": data.test_list}[split]
    if name is None:
        raise ConfigError(f"data.{split}_list is not set")
    path = Path(data.root) / name
    if not path.exists():
        raise ConfigError(f"data.{split}_list: {path} not found")
    return path


def _labels(data: DataConfig) -> Path:
    assert data.labels_file is not None
    path = Path(data.root) / data.labels_file
    if not path.is_file():
        raise ConfigError(f"data.labels_file: {path} not found")
    return path


@functools.lru_cache(maxsize=4)
def _index(folder: str, mtime: float) -> dict[str, str]:
    """Video stems under ``folder``; cached per folder state (one walk of a 300k-video tree
    serves the train, val and test lists)."""
    return official.index_videos(folder)


@functools.lru_cache(maxsize=4)
def _kinetics_classes(train_csv: str, mtime: int) -> list[str]:
    """The sorted labels of the training CSV (every list's class order), read once."""
    return ann.read_kinetics_classes(train_csv)


def _video_index(videos: Path) -> dict[str, str]:
    if not videos.is_dir():
        raise ConfigError(f"data.videos: {videos} is not a folder")
    return _index(os.fspath(videos), videos.stat().st_mtime)


def _read(data: DataConfig, split: Split) -> tuple[list[VideoRecord], list[str] | None]:
    file = _list_file(data, split)
    root = Path(data.root)
    videos = root / data.videos
    common: dict[str, Any] = {"root": videos, "allow_outside_root": data.allow_outside_root}
    fmt = data.format
    if fmt in ("video_list", "slowfast_csv", "frame_list", "reference_list"):
        reader: Callable[..., list[VideoRecord]] = {
            "video_list": ann.read_video_list,
            "slowfast_csv": ann.read_video_list,  # PySlowFast: 'path label', space separated
            "frame_list": ann.read_frame_list,
            "reference_list": ann.read_reference_list,
        }[fmt]
        names = None
        if data.labels_file is not None:
            names = [line for _, line in ann.annotation_lines(_labels(data))]
        records = reader(file, num_classes=len(names) if names else data.num_classes, **common)
        return records, names
    if fmt == "ucf101":
        labels = _labels(data)
        return ann.read_ucf101_split(file, labels, **common), ann.read_ucf101_classes(labels)
    if fmt == "hmdb51":
        subset = "train" if split == "train" else "test"
        records = ann.read_hmdb51_split(file, split=data.split, subset=subset, **common)
        return records, ann.read_hmdb51_classes(file, split=data.split)
    if fmt == "kinetics":
        train = _list_file(data, "train")
        classes = _kinetics_classes(os.fspath(train), train.stat().st_mtime_ns)
        if data.video_template is not None:
            return ann.read_kinetics_csv(
                file, classes=classes, template=data.video_template, **common
            ), classes
        index = _video_index(videos)
        return ann.read_kinetics_csv(file, classes=classes, index=index, **common), classes
    if fmt == "ssv1":
        labels = _labels(data)
        return official.read_ssv1_csv(file, labels, **common), official.read_ssv1_classes(labels)
    if fmt == "ssv2":
        labels = _labels(data)
        template = data.video_template or "{id}.webm"
        records = ann.read_ssv2_json(file, labels, template=template, **common)
        return records, ann.read_ssv2_classes(labels)
    assert fmt == "activitynet"
    classes = official.read_activitynet_classes(file)
    subset = "training" if split == "train" else "validation"
    records = official.read_activitynet_json(
        file, subset=subset, classes=classes, index=_video_index(videos), **common
    )
    return records, classes


def _grouped(data: DataConfig, records: list[VideoRecord]) -> list[VideoRecord]:
    """Apply ``data.group_pattern``: the first group (or the match) of the path names the
    video's source; a path it does not match is an error naming it."""
    if data.group_pattern is None:
        return records
    pattern = re.compile(data.group_pattern)
    out = []
    for record in records:
        match = pattern.search(record.path)
        if match is None:
            raise ConfigError(f"data.group_pattern {data.group_pattern!r} does not match "
                              f"{record.path}")  # fmt: skip
        out.append(replace(record, group=match.group(1) if pattern.groups else match.group(0)))
    return out


def _stamp(data: DataConfig, split: Split) -> tuple[object, ...]:
    """What a cached read depends on: the annotation files' (and video folder's) state."""
    names = {"train": data.train_list, "val": data.val_list, "test": data.test_list}
    files = [names[split], names["train"], data.labels_file, data.videos]
    stamp: list[object] = []
    for name in files:
        try:
            info = (Path(data.root) / name).stat() if name is not None else None
        except OSError:
            info = None
        stamp.append(None if info is None else (name, info.st_mtime_ns, info.st_size))
    folder = Path(data.root) / (names[split] or "")
    if data.format == "hmdb51" and folder.is_dir():  # a folder of split files
        stamp.extend((f.name, f.stat().st_mtime_ns) for f in sorted(folder.glob("*.txt")))
    return tuple(stamp)


def read_split(data: DataConfig, split: Split) -> SplitRecords:
    """The records of ``split`` (``train``, ``val`` or ``test``), with class names and the
    videos missing from the download (official formats; see the module docstring).

    Planning reads each list several times (split, sizes, fingerprint, class names); a
    Kinetics CSV of 240k rows with a stat per video is read once while its files stay as
    they are."""
    cached = _read_split(data, split, _stamp(data, split))
    return replace(cached, records=list(cached.records), missing=list(cached.missing))


@functools.lru_cache(maxsize=16)
def _read_split(data: DataConfig, split: Split, stamp: tuple[object, ...]) -> SplitRecords:
    records, names = _read(data, split)
    file = _list_file(data, split)
    where = f"data.{split}_list ({file})"
    if not records:
        raise ConfigError(f"{where} has no videos")
    if names is not None and data.num_classes is not None and data.num_classes != len(names):
        raise ConfigError(
            f"data.num_classes: {data.num_classes}, but {data.labels_file or file} names "
            f"{len(names)} classes"
        )
    records = _grouped(data, records)
    missing: list[str] = []
    if data.format in OFFICIAL:
        missing = [r.path for r in records if not os.path.exists(r.path)]
        if len(missing) == len(records):
            raise ConfigError(
                f"{where}: none of its {len(records)} videos is under "
                f"{Path(data.root) / data.videos} (first expected: {missing[0]}); "
                "set data.root / data.videos to the folder of the download"
            )
        if missing and data.missing == "error":
            raise ConfigError(
                f"{where}: {len(missing)} of {len(records)} videos missing (first: "
                f"{missing[0]}); data.missing: skip leaves them out"
            )
        if missing and split != "test":
            absent = set(missing)
            records = [r for r in records if r.path not in absent]
    return SplitRecords(records, names, missing, where)


def class_names(data: DataConfig) -> list[str] | None:
    """The class names the dataset's files give, in label order (None for bare lists)."""
    return read_split(data, "train").classes


def load_lists(data: DataConfig, split: str) -> tuple[list[VideoRecord], int]:
    """Records of ``split`` (``train``, ``val`` or ``test``) and the number of classes."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    this = read_split(data, split)
    train = this if split == "train" else read_split(data, "train")
    if this.classes is not None:
        return this.records, len(this.classes)
    num_classes = data.num_classes or max(train.num_classes, this.num_classes)
    return this.records, num_classes


def planning_split(
    data: DataConfig, seed: int
) -> tuple[list[VideoRecord], list[VideoRecord], int]:
    """(planning train, internal validation, classes): §5.1, the originals never used; a
    source video (record group) never sits on both sides."""
    train, num_classes = load_lists(data, "train")
    size = data.internal_val_size
    if size is None:
        if data.val_list is None:
            raise ConfigError("data: set internal_val_size or val_list (it sizes the split)")
        size = len(read_split(data, "val").records)
    plan_train, plan_val = internal_val_split(train, val_size=size, seed=seed)
    return plan_train, plan_val, num_classes


def missing_videos(data: DataConfig) -> list[str]:
    """The videos of the training and validation lists absent from the download (official
    formats; the test's are reported by the final test itself)."""
    if data.format not in OFFICIAL:
        return []
    lists = [read_split(data, "train")]
    if data.val_list is not None:
        lists.append(read_split(data, "val"))
    return sorted({p for s in lists for p in s.missing})
