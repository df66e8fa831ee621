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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from opplan.errors import ConfigError

__all__ = [
    "VideoRecord",
    "read_frame_list",
    "read_hmdb51_split",
    "read_kinetics_csv",
    "read_reference_list",
    "read_ssv2_json",
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
    """

    path: str
    label: int
    num_frames: int | None = None


def _lines(file: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
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


def _join(
    root: str | os.PathLike[str] | None, path: str, where: str, allow_outside_root: bool
) -> str:
    """``root/path``; a path leading outside ``root`` (absolute, or through ``..``) is refused
    unless allowed. The check is lexical: symlinks placed inside the root are followed."""
    if root is None:
        return path
    joined = os.path.join(os.fspath(root), path)
    if not allow_outside_root:
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
    for number, line in _lines(file):
        parts = line.rsplit(maxsplit=len(names) - 1)
        if len(parts) != len(names):
            expected = " ".join(names)
            raise ConfigError(f"{file}:{number}: expected '{expected}', got {line!r}")
        values = {n: _int(file, number, n, p) for n, p in zip(names[1:], parts[1:], strict=True)}
        label = _check_label(file, number, values["label"], num_classes)
        frames = values.get("num_frames", values.get("total_frames"))
        if frames is not None and frames < 1:
            raise ConfigError(f"{file}:{number}: frame count must be >= 1, got {frames}")
        path = _join(root, parts[0], f"{file}:{number}", allow_outside_root)
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


def read_ucf101_split(
    split_file: str | os.PathLike[str],
    class_ind: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> list[VideoRecord]:
    """Read a UCF101 ``trainlist0N.txt``/``testlist0N.txt`` with ``classInd.txt``.

    The class index (1-based in the files) comes from ``classInd.txt`` through the class
    directory of each path; a train-list label that disagrees with it is an error.
    """
    classes: dict[str, int] = {}
    for number, line in _lines(class_ind):
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise ConfigError(f"{class_ind}:{number}: expected 'index ClassName', got {line!r}")
        classes[parts[1].strip()] = _int(class_ind, number, "index", parts[0]) - 1
    records = []
    for number, line in _lines(split_file):
        parts = line.rsplit(maxsplit=1)
        path = line if len(parts) == 1 or not parts[1].lstrip("-").isdigit() else parts[0]
        name = path.replace("\\", "/").split("/")[0]
        if name not in classes:
            raise ConfigError(f"{split_file}:{number}: class {name!r} not in {class_ind}")
        label = classes[name]
        if path != line:
            given = _int(split_file, number, "label", parts[1]) - 1
            if given != label:
                raise ConfigError(
                    f"{split_file}:{number}: label {given + 1} disagrees with {class_ind} "
                    f"({name} = {label + 1})"
                )
        records.append(
            VideoRecord(
                _join(root, path, f"{split_file}:{number}", allow_outside_root),
                _check_label(split_file, number, label, len(classes)),
            )
        )
    return records


def read_hmdb51_split(
    split_dir: str | os.PathLike[str],
    *,
    split: int = 1,
    subset: str = "train",
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> list[VideoRecord]:
    """Read HMDB51 split files ``<class>_test_split<N>.txt`` (1 = train, 2 = test, 0 = unused).

    Classes are indexed in sorted name order; videos live under ``<class>/<file>``.
    """
    if subset not in ("train", "test"):
        raise ConfigError(f"subset must be 'train' or 'test', got {subset!r}")
    suffix = f"_test_split{split}.txt"
    files = sorted(p for p in Path(split_dir).glob(f"*{suffix}"))
    if not files:
        raise ConfigError(f"no HMDB51 split files '*{suffix}' in {split_dir}")
    wanted = "1" if subset == "train" else "2"
    records = []
    for label, file in enumerate(files):
        name = file.name[: -len(suffix)]
        for number, line in _lines(file):
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ConfigError(f"{file}:{number}: expected 'video.avi 0|1|2', got {line!r}")
            if parts[1] == wanted:
                where = f"{file}:{number}"
                path = _join(root, f"{name}/{parts[0]}", where, allow_outside_root)
                records.append(VideoRecord(path, label))
    return records


def read_kinetics_csv(
    file: str | os.PathLike[str],
    *,
    classes: Sequence[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
    template: str = "{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4",
) -> list[VideoRecord]:
    """Read a Kinetics-400/600 CSV (``label,youtube_id,time_start,time_end,split[,is_cc]``).

    Args:
        file: the CSV.
        classes: class names in index order; default = sorted names found in the file (pass
            the training CSV's classes when reading the validation CSV).
        root: dataset root.
        template: relative video path built from the row's fields.
    """
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
        rows = [
            (reader.line_num, row)
            for row in reader
            if any((v or "").strip() for v in row.values())
        ]
    index = {
        c: i
        for i, c in enumerate(
            classes if classes is not None else sorted({r["label"] for _, r in rows})
        )
    }
    records = []
    for number, row in rows:
        if row["label"] not in index:
            raise ConfigError(f"{file}:{number}: unknown class {row['label']!r}")
        fields = {
            "label": row["label"],
            "youtube_id": row["youtube_id"],
            "time_start": _int(file, number, "time_start", row["time_start"]),
            "time_end": _int(file, number, "time_end", row["time_end"]),
        }
        path = _join(root, template.format(**fields), f"{file}:{number}", allow_outside_root)
        records.append(VideoRecord(path, index[row["label"]]))
    return records


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
    labels = _load_json(labels_file)
    if not isinstance(labels, dict):
        raise ConfigError(f"{labels_file}: expected an object mapping template to index")
    index = {k: _int(labels_file, 1, f"index of {k!r}", str(v)) for k, v in labels.items()}
    entries = _load_json(file)
    if not isinstance(entries, list):
        raise ConfigError(f"{file}: expected a list of videos")
    records = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            raise ConfigError(f"{file}: entry {number} needs 'id' and 'template'")
        name = str(entry["template"]).replace("[", "").replace("]", "")
        if name not in index:
            raise ConfigError(f"{file}: entry {number}: class {name!r} not in {labels_file}")
        label = _check_label(file, number, index[name], len(index))
        where = f"{file}: entry {number}"
        path = _join(root, template.format(id=entry["id"]), where, allow_outside_root)
        records.append(VideoRecord(path, label))
    return records


def _load_json(file: str | os.PathLike[str]) -> object:
    try:
        return json.loads(Path(file).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"annotation file not found: {file}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{file}:{err.lineno}: invalid JSON: {err.msg}") from None
