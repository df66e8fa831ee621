"""Readers of the annotation files that ActivityNet and Something-Something V1 ship, and the
index that finds a dataset's videos in whatever layout its download produced (§5.1, Table 2).

- ActivityNet v1.3 ``activity_net.v1-3.min.json``: ``database`` -> ``{id: {subset,
  annotations: [{label, segment}]}}``. Only the video-level label is used (§5.1: "the
  temporal annotations are disabled"); videos are ``v_<id>.mp4`` or ``.mkv``, untrimmed.
- Something-Something V1 ``something-something-v1-{train,validation}.csv`` (``id;label``) with
  ``something-something-v1-labels.csv`` (one class name a line, index = line order) and a
  frame folder ``<id>/00001.jpg`` per video.

The readers of the other official formats live in :mod:`opplan.video.annotations`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from opplan.errors import ConfigError
from opplan.video.annotations import VideoRecord, annotation_lines, join_root, load_json

__all__ = [
    "VIDEO_EXTENSIONS",
    "index_videos",
    "read_activitynet_classes",
    "read_activitynet_json",
    "read_ssv1_classes",
    "read_ssv1_csv",
]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")


def index_videos(
    folder: str | os.PathLike[str], extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> dict[str, str]:
    """File stem -> path relative to ``folder`` of every video below it (one walk).

    Covers the usual download layouts at once (``<split>/<label>/<id>.mp4``, flat
    ``<id>.mp4``, a mix of ``.mp4``/``.mkv``/``.webm``). A stem found twice keeps the first in
    sorted order, so the result does not depend on the file system's listing order.
    """
    found: dict[str, str] = {}
    base = os.fspath(folder)
    for top, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() in extensions and not name.startswith("."):
                found.setdefault(stem, os.path.relpath(os.path.join(top, name), base))
    return found


def read_ssv1_classes(labels_file: str | os.PathLike[str]) -> list[str]:
    """Something-Something V1 class names, one a line, in index order."""
    names = [line for _, line in annotation_lines(labels_file)]
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise ConfigError(f"{labels_file}:{number}: class {name!r} already on line "
                              f"{seen[name]}")  # fmt: skip
        seen[name] = number
    if not names:
        raise ConfigError(f"{labels_file}: no class names")
    return names


def read_ssv1_csv(
    file: str | os.PathLike[str],
    labels_file: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> list[VideoRecord]:
    """Read ``something-something-v1-{train,validation}.csv`` (``100218;Something falling``);
    each record is the frame folder ``root/<id>``."""
    index = {name: i for i, name in enumerate(read_ssv1_classes(labels_file))}
    records = []
    for number, line in annotation_lines(file):
        video, sep, name = line.partition(";")
        if not sep or not video.strip():
            raise ConfigError(f"{file}:{number}: expected 'id;label', got {line!r}")
        if name.strip() not in index:
            raise ConfigError(f"{file}:{number}: class {name.strip()!r} not in {labels_file}")
        path = join_root(root, video.strip(), f"{file}:{number}", allow_outside_root)
        records.append(VideoRecord(path, index[name.strip()]))
    return records


def _database(file: str | os.PathLike[str]) -> Mapping[str, object]:
    data = load_json(file)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise ConfigError(f"{file}: expected an object with a 'database' object (ActivityNet)")
    return data


def _video_label(file: str | os.PathLike[str], key: str, entry: object) -> str | None:
    if not isinstance(entry, dict) or "subset" not in entry:
        raise ConfigError(f"{file}: database[{key!r}] needs 'subset'")
    notes = entry.get("annotations") or []
    if not isinstance(notes, list) or any(
        not isinstance(n, dict) or "label" not in n for n in notes
    ):
        raise ConfigError(f"{file}: database[{key!r}].annotations must be a list of {{label}}")
    labels = [str(n["label"]) for n in notes]
    # Video-level label (§5.1): the class of the video's segments; v1.3 gives one per video.
    return max(sorted(set(labels)), key=labels.count) if labels else None


def read_activitynet_classes(file: str | os.PathLike[str]) -> list[str]:
    """The 200 ActivityNet v1.3 classes in sorted order: the taxonomy's leaves, or (without a
    taxonomy) every label of the database."""
    data = _database(file)
    taxonomy = data.get("taxonomy")
    if isinstance(taxonomy, list) and taxonomy:
        parents = {str(n.get("parentName")) for n in taxonomy if isinstance(n, dict)}
        leaves = {
            str(n["nodeName"])
            for n in taxonomy
            if isinstance(n, dict) and "nodeName" in n and str(n["nodeName"]) not in parents
        }
        if leaves:
            return sorted(leaves)
    database = data["database"]
    assert isinstance(database, dict)
    names = {_video_label(file, k, v) for k, v in database.items()}
    names.discard(None)
    if not names:
        raise ConfigError(f"{file}: no labelled videos")
    return sorted(n for n in names if n is not None)


def read_activitynet_json(
    file: str | os.PathLike[str],
    *,
    subset: str,
    classes: Sequence[str],
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    index: Mapping[str, str] | None = None,
) -> list[VideoRecord]:
    """Videos of one ``subset`` (``training``, ``validation``) with their video-level label.

    ``index`` (:func:`index_videos` of the video folder) finds ``v_<id>.mp4``/``.mkv``; a video
    not in it gets the expected path ``v_<id>.mp4`` (and is reported missing by the caller).
    """
    database = _database(file)["database"]
    assert isinstance(database, dict)
    lookup = {c: i for i, c in enumerate(classes)}
    records = []
    subsets = {str(v.get("subset")) for v in database.values() if isinstance(v, dict)}
    if subset not in subsets:
        raise ConfigError(f"{file}: no videos in subset {subset!r} (found {sorted(subsets)})")
    for key, entry in database.items():
        label = _video_label(file, key, entry)
        assert isinstance(entry, dict)
        if entry["subset"] != subset or label is None:
            continue
        if label not in lookup:
            raise ConfigError(f"{file}: database[{key!r}]: class {label!r} not in the taxonomy")
        name = f"v_{key}"
        relative = (index or {}).get(name) or (index or {}).get(key) or f"{name}.mp4"
        path = join_root(root, relative, f"{file}: database[{key!r}]", allow_outside_root)
        records.append(VideoRecord(path, lookup[label]))
    return records
