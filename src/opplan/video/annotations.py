"""Annotation formats (§5.1 of the paper's datasets): lists of (video, label) records.

Supported: the video list ``path label``; the raw-frame list ``dir total_frames label``; the
paper's reference list ``path num_frames label``; UCF101 and HMDB51 official split files;
Kinetics-400/600 CSV; Something-Something v2 JSON. Every reader tolerates spaces in paths
(fields are split from the right), CRLF line ends, blank lines and a missing final newline.
A malformed line raises :class:`~opplan.errors.ConfigError` naming ``file:line``; a label out
of range is an error, never a silent wrong label. Paths are joined with the dataset ``root``;
one that leads outside it (absolute, or through ``..``) is refused naming ``file:line`` unless
``allow_outside_root=True`` (the config's ``data.allow_outside_root``).

Example:
    >>> records = read_video_list("train.txt", root="data", num_classes=10)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opplan.errors import ConfigError

__all__ = [
    "VideoRecord",
    "read_frame_list",
    "read_hmdb51_classes",
    "read_hmdb51_split",
    "read_kinetics_classes",
    "read_kinetics_csv",
    "read_reference_list",
    "read_ssv2_classes",
    "read_ssv2_json",
    "read_ucf101_classes",
    "read_ucf101_split",
    "read_video_list",
    "write_video_list",
]


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video.

    Args:
        path: file or frame directory (joined with the dataset root when one is given).
        label: class index in ``[0, num_classes)``.
        num_frames: frame count when the list gives it (raw-frame and reference lists).
        group: the source the video was cut from (UCF101's ``gNN``, HMDB51's source film,
            Kinetics' ``youtube_id``), when known: the internal split keeps a group on one
            side (:func:`opplan.video.splits.internal_val_split`).
    """

    path: str
    label: int
    num_frames: int | None = None
    group: str | None = None


def annotation_lines(file: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines; CRLF and BOM tolerant."""
    try:
        text = Path(file).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"annotation file not found: {file}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def _int(file: str | os.PathLike[str], number: int, field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{file}:{number}: {field} must be an integer, got {text!r}") from None


def _check_label(
    file: str | os.PathLike[str], number: int, label: int, num_classes: int | None
) -> int:
    if label < 0 or (num_classes is not None and label >= num_classes):
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ConfigError(f"{file}:{number}: label {label} out of range {bound}")
    return label


def join_root(
    root: str | os.PathLike[str] | None, path: str, where: str, allow_outside_root: bool
) -> str:
    """``root/path``; a path leading outside ``root`` (absolute, or through ``..``) is refused
    unless allowed. The check is lexical: symlinks placed inside the root are followed."""
    if root is None:
        return path
    joined = os.path.join(os.fspath(root), path)
    if not allow_outside_root:
        if not os.path.isabs(path):  # relative: outside only through '..' (fast path)
            norm = os.path.normpath(path)
            if norm != os.pardir and not norm.startswith(os.pardir + os.sep):
                return joined
        base = os.path.abspath(root)
        if os.path.commonpath([base, os.path.abspath(joined)]) != base:
            raise ConfigError(
                f"{where}: path {path!r} lies outside the dataset root {os.fspath(root)} "
                "(set data.allow_outside_root: true to accept it)"
            )
    return joined


def _read_fields(
    file: str | os.PathLike[str],
    names: Sequence[str],
    root: str | os.PathLike[str] | None,
    num_classes: int | None,
    allow_outside_root: bool,
) -> list[VideoRecord]:
    records = []
    for number, line in annotation_lines(file):
        parts = line.rsplit(maxsplit=len(names) - 1)
        if len(parts) != len(names):
            expected = " ".join(names)
            raise ConfigError(f"{file}:{number}: expected '{expected}', got {line!r}")
        values = {n: _int(file, number, n, p) for n, p in zip(names[1:], parts[1:], strict=True)}
        label = _check_label(file, number, values["label"], num_classes)
        frames = values.get("num_frames", values.get("total_frames"))
        if frames is not None and frames < 1:
            raise ConfigError(f"{file}:{number}: frame count must be >= 1, got {frames}")
        path = join_root(root, parts[0], f"{file}:{number}", allow_outside_root)
        records.append(VideoRecord(path, label, frames))
    return records


def read_video_list(
    file: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    num_classes: int | None = None,
) -> list[VideoRecord]:
    """Read a ``path label`` list (the format ``opplan data synth`` writes)."""
    return _read_fields(file, ("path", "label"), root, num_classes, allow_outside_root)


def read_frame_list(
    file: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    num_classes: int | None = None,
) -> list[VideoRecord]:
    """Read a raw-frame list ``dir total_frames label``."""
    return _read_fields(
        file, ("path", "total_frames", "label"), root, num_classes, allow_outside_root
    )


def read_reference_list(
    file: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    num_classes: int | None = None,
) -> list[VideoRecord]:
    """Read the paper's reference list ``path num_frames label``."""
    return _read_fields(
        file, ("path", "num_frames", "label"), root, num_classes, allow_outside_root
    )


def write_video_list(file: str | os.PathLike[str], records: Sequence[VideoRecord]) -> None:
    """Write ``path label`` lines atomically (temporary file, then rename)."""
    path = Path(file)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{r.path} {r.label}\n" for r in records), encoding="utf-8")
    os.replace(tmp, path)


def read_ucf101_classes(class_ind: str | os.PathLike[str]) -> list[str]:
    """Class names of UCF101's ``classInd.txt`` (``1 ApplyEyeMakeup``), in index order."""
    named: dict[int, str] = {}
    for number, line in annotation_lines(class_ind):
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise ConfigError(f"{class_ind}:{number}: expected 'index ClassName', got {line!r}")
        index = _int(class_ind, number, "index", parts[0])
        if index in named:
            raise ConfigError(f"{class_ind}:{number}: index {index} given twice")
        named[index] = parts[1].strip()
    if sorted(named) != list(range(1, len(named) + 1)):
        raise ConfigError(f"{class_ind}: indices must be 1..{len(named)}, got {sorted(named)}")
    return [named[i] for i in range(1, len(named) + 1)]


_UCF_GROUP = re.compile(r"(v_.+_g\d+)_c\d+", re.IGNORECASE)


def read_ucf101_split(
    split_file: str | os.PathLike[str],
    class_ind: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> list[VideoRecord]:
    """Read a UCF101 ``trainlist0N.txt``/``testlist0N.txt`` with ``classInd.txt``.

    The class index (1-based in the files) comes from ``classInd.txt`` through the class
    directory of each path; a train-list label that disagrees with it is an error. The
    group is the clip's source (``v_ApplyEyeMakeup_g08`` of ``..._g08_c01.avi``).
    """
    classes = {name: i for i, name in enumerate(read_ucf101_classes(class_ind))}
    records = []
    for number, line in annotation_lines(split_file):
        parts = line.rsplit(maxsplit=1)
        labelled = len(parts) == 2 and parts[1].lstrip("-").isdigit()
        path = (parts[0] if labelled else line).replace("\\", "/")
        name = path.split("/")[0]
        if name not in classes:
            raise ConfigError(f"{split_file}:{number}: class {name!r} not in {class_ind}")
        label = classes[name]
        if labelled:
            given = _int(split_file, number, "label", parts[1]) - 1
            if given != label:
                raise ConfigError(
                    f"{split_file}:{number}: label {given + 1} disagrees with {class_ind} "
                    f"({name} = {label + 1})"
                )
        match = _UCF_GROUP.search(path.rsplit("/", 1)[-1])
        records.append(
            VideoRecord(
                join_root(root, path, f"{split_file}:{number}", allow_outside_root),
                _check_label(split_file, number, label, len(classes)),
                group=match.group(1) if match else None,
            )
        )
    return records


def _hmdb51_files(split_dir: str | os.PathLike[str], split: int) -> list[Path]:
    if split not in (1, 2, 3):
        raise ConfigError(f"HMDB51 split must be 1, 2 or 3, got {split}")
    suffix = f"_test_split{split}.txt"
    files = sorted(Path(split_dir).glob(f"*{suffix}"))
    if not files:
        raise ConfigError(f"no HMDB51 split files '*{suffix}' in {split_dir}")
    return files


def read_hmdb51_classes(split_dir: str | os.PathLike[str], *, split: int = 1) -> list[str]:
    """HMDB51's class names (from the split files' names), in index (sorted) order."""
    suffix = f"_test_split{split}.txt"
    return [f.name[: -len(suffix)] for f in _hmdb51_files(split_dir, split)]


def read_hmdb51_split(
    split_dir: str | os.PathLike[str],
    *,
    split: int = 1,
    subset: str = "train",
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> list[VideoRecord]:
    """Read HMDB51 split files ``<class>_test_split<N>.txt`` (1 = train, 2 = test, 0 = unused).

    Classes are indexed in sorted name order; videos live under ``<class>/<file>``. The
    group is the source film: the clip name up to ``_<class>_``
    (``April_09_brush_hair_u_nm_np1_ba_goo_0.avi`` -> ``April_09``).
    """
    if subset not in ("train", "test"):
        raise ConfigError(f"subset must be 'train' or 'test', got {subset!r}")
    wanted = "1" if subset == "train" else "2"
    records = []
    classes = read_hmdb51_classes(split_dir, split=split)
    for label, (name, file) in enumerate(
        zip(classes, _hmdb51_files(split_dir, split), strict=True)
    ):
        for number, line in annotation_lines(file):
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ConfigError(f"{file}:{number}: expected 'video.avi 0|1|2', got {line!r}")
            if parts[1] == wanted:
                where = f"{file}:{number}"
                path = join_root(root, f"{name}/{parts[0]}", where, allow_outside_root)
                source, found, _ = parts[0].partition(f"_{name}_")
                records.append(VideoRecord(path, label, group=source if found else None))
    return records


def _kinetics_rows(file: str | os.PathLike[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        handle = open(file, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except FileNotFoundError:
        raise ConfigError(f"annotation file not found: {file}") from None
    with handle:
        reader = csv.DictReader(handle)
        needed = {"label", "youtube_id", "time_start", "time_end"}
        missing = needed - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{file}:1: missing CSV columns {sorted(missing)}")
        return [(reader.line_num, row) for row in reader if (row["youtube_id"] or "").strip()]


def read_kinetics_classes(file: str | os.PathLike[str]) -> list[str]:
    """Kinetics class names: the sorted labels of a CSV (pass the training CSV)."""
    names = sorted({row["label"] for _, row in _kinetics_rows(file)})
    if not names:
        raise ConfigError(f"{file}: no videos")
    return names


def read_kinetics_csv(
    file: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    template: str = "{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4",
    index: Mapping[str, str] | None = None,
) -> list[VideoRecord]:
    """Read a Kinetics-400/600 CSV (``label,youtube_id,time_start,time_end,split[,is_cc]``).

    Args:
        file: the CSV.
        classes: class names in index order; default = sorted names found in the file (pass
            the training CSV's classes when reading the validation CSV).
        root: dataset root.
        template: relative video path built from the row's fields.
        index: file stem -> relative path of the videos found under ``root`` (any of the
            usual download layouts): a row is looked up as ``<id>_<start:06d>_<end:06d>``,
            then ``<id>``; ``template`` is the expected path of a row not found.

    The group of a record is its ``youtube_id`` (clips of one YouTube video stay together).
    """
    rows = _kinetics_rows(file)
    names = classes if classes is not None else sorted({r["label"] for _, r in rows})
    lookup = {c: i for i, c in enumerate(names)}
    records = []
    for number, row in rows:
        if row["label"] not in lookup:
            raise ConfigError(f"{file}:{number}: unknown class {row['label']!r}")
        fields: dict[str, Any] = {
            "label": row["label"],
            "youtube_id": row["youtube_id"],
            "time_start": _int(file, number, "time_start", row["time_start"]),
            "time_end": _int(file, number, "time_end", row["time_end"]),
        }
        relative = template.format(**fields)
        if index is not None:
            key = "{youtube_id}_{time_start:06d}_{time_end:06d}".format(**fields)
            relative = index.get(key) or index.get(fields["youtube_id"]) or relative
        path = join_root(root, relative, f"{file}:{number}", allow_outside_root)
        records.append(VideoRecord(path, lookup[row["label"]], group=row["youtube_id"]))
    return records


def read_ssv2_classes(labels_file: str | os.PathLike[str]) -> list[str]:
    """Something-Something v2 class names (``labels.json``: name -> "index") in index order."""
    labels = load_json(labels_file)
    if not isinstance(labels, dict):
        raise ConfigError(f"{labels_file}: expected an object mapping template to index")
    index = {k: _int(labels_file, 1, f"index of {k!r}", str(v)) for k, v in labels.items()}
    if sorted(index.values()) != list(range(len(index))):
        raise ConfigError(f"{labels_file}: indices must be 0..{len(index) - 1}, each once")
    return sorted(index, key=index.__getitem__)


def read_ssv2_json(
    file: str | os.PathLike[str],
    labels_file: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    template: str = "{id}.webm",
) -> list[VideoRecord]:
    """Read Something-Something v2 ``*-train.json``/``*-validation.json`` with ``labels.json``.

    The class comes from the entry's ``template`` with its brackets removed, looked up in
    ``labels.json`` (``{"Holding something": "13", ...}``).
    """
    index = {name: i for i, name in enumerate(read_ssv2_classes(labels_file))}
    entries = load_json(file)
    if not isinstance(entries, list):
        raise ConfigError(f"{file}: expected a list of videos")
    records = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise ConfigError(f"{file}: entry {number} needs 'id' and 'template'")
        name = str(entry["template"]).replace("[", "").replace("]", "")
        if name not in index:
            raise ConfigError(f"{file}: entry {number}: class {name!r} not in {labels_file}")
        where = f"{file}: entry {number}"
        path = join_root(root, template.format(id=entry["id"]), where, allow_outside_root)
        records.append(VideoRecord(path, index[name]))
    return records


def load_json(file: str | os.PathLike[str]) -> object:
    try:
        return json.loads(Path(file).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"annotation file not found: {file}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{file}:{err.lineno}: invalid JSON: {err.msg}") from None
