"""Miniature copies of the benchmarks' downloads, in each dataset's exact official layout.

A few tiny videos per class (generated, nothing downloaded) beside the annotation files as
the datasets distribute them: UCF101's CRLF ``classInd.txt`` / ``trainlist0N.txt`` /
unlabelled ``testlist0N.txt`` over ``UCF-101/<Class>/v_<Class>_gNN_cMM.avi`` (MPEG-4 Part 2),
HMDB51's ``testTrainMulti_7030_splits``, Kinetics' CSVs over either download layout (with some
videos missing, as in every real copy), Something-Something V1's frame folders and V2's
``.webm`` (VP9), ActivityNet's v1.3 JSON over ``v_<id>.mp4``/``.mkv``. Each builder returns
the ``data:`` section a user would write for it. Used by the tests and by anyone who wants to
try a format before pointing opplan at the real download.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "make_activitynet",
    "make_hmdb51",
    "make_kinetics",
    "make_ssv1",
    "make_ssv2",
    "make_ucf101",
    "write_video",
]

_CODECS = {".avi": ("mpeg4", "yuv420p"), ".webm": ("libvpx-vp9", "yuv420p"),
           ".mp4": ("libx264", "yuv420p"), ".mkv": ("libx264", "yuv420p")}  # fmt: skip


def _frames(seed: int, label: int, count: int, size: int) -> np.ndarray:
    """A class-coloured noisy clip (the class is visible, so a model can learn it)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((count, size, size, 3), dtype=np.int16)
    base[..., label % 3] = 60 + 60 * (label // 3 % 3)
    base += rng.integers(0, 40, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """Encode uint8 (T, H, W, 3) frames with the codec the suffix implies (see module doc)."""
    import av

    codec, pix_fmt = _CODECS[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)  # _CODECS holds video codecs
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_ucf101(
    root: Path, *, classes: int = 3, groups: int = 4, clips: int = 2, frames: int = 12,
    size: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """UCF101: groups 1..groups per class, clips c01.. per group; split N tests on group N
    (the official splits test on groups 1-7, 8-14, 15-21 of 25)."""
    names = [f"Class{chr(65 + c)}Motion" for c in range(classes)]
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_bytes(
        "".join(f"{i + 1} {n}\r\n" for i, n in enumerate(names)).encode()
    )
    for label, name in enumerate(names):
        for g in range(1, groups + 1):
            for c in range(1, clips + 1):
                clip = f"v_{name}_g{g:02d}_c{c:02d}.avi"
                data = _frames(label * 1000 + g * 10 + c, label, frames, size)
                write_video(root / "UCF-101" / name / clip, data)
    for split in (1, 2, 3):
        train: list[tuple[str, int]] = []
        test: list[tuple[str, int]] = []
        for label, name in enumerate(names):
            for g in range(1, groups + 1):
                for c in range(1, clips + 1):
                    path = f"{name}/v_{name}_g{g:02d}_c{c:02d}.avi"
                    (test if g == split else train).append((path, label))
        (lists / f"trainlist0{split}.txt").write_bytes(
            "".join(f"{p} {label + 1}\r\n" for p, label in train).encode()
        )
        (lists / f"testlist0{split}.txt").write_bytes(
            "".join(f"{p}\r\n" for p, _ in test).encode()
        )
    return {"root": str(root), "format": "ucf101", "split": 1}


def make_hmdb51(
    root: Path, *, classes: int = 3, films: int = 4, clips: int = 2, frames: int = 12,
    size: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """HMDB51: ``<class>/<Film>_<class>_u_nm_np1_fr_med_<k>.avi``; split N tests film N, keeps
    the last film unused (0)."""
    names = ["brush_hair", "cartwheel", "catch", "chew", "clap"][:classes]
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for label, name in enumerate(names):
        files = [
            (f, f"Film{f}_{name}_u_nm_np1_fr_med_{k}.avi")
            for f in range(1, films + 1)
            for k in range(clips)
        ]
        for f, file in files:
            write_video(root / name / file, _frames(label * 100 + f * 7 + len(file), label,
                                                     frames, size))  # fmt: skip
        for split in (1, 2, 3):
            marks = ["2" if f == split else ("0" if f == films else "1") for f, _ in files]
            (splits / f"{name}_test_split{split}.txt").write_text(
                "".join(f"{file} {m} \n" for (_, file), m in zip(files, marks, strict=True))
            )
    return {"root": str(root), "format": "hmdb51", "split": 1}


def make_kinetics(
    root: Path, *, classes: int = 3, per_class: int = 6, val_per_class: int = 2,
    layout: str = "nested", missing: int = 1, frames: int = 12, size: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """Kinetics-400/600: ``train.csv``/``validate.csv``/``test.csv`` over ``<split>/<label>/``
    (``layout="nested"``) or flat ``<split>/`` videos; the last ``missing`` training rows have
    no video (a real download lacks 3-10 %). Two clips share each ``youtube_id``."""
    labels = ["abseiling", "air drumming", "answering questions", "applauding"][:classes]
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    rows: dict[str, list[str]] = {"train": [], "validate": []}
    count = 0
    for split, n in (("train", per_class), ("validate", val_per_class)):
        folder = "train" if split == "train" else "val"
        for label, name in enumerate(labels):
            for k in range(n):
                youtube_id = f"{split[:2]}{label}x{k // 2:02d}-abcdef"[:11]
                start = 10 * (k % 2)
                rows[split].append(f'"{name}",{youtube_id},{start},{start + 10},{split},0')
                count += 1
                stem = f"{youtube_id}_{start:06d}_{start + 10:06d}"
                where = Path(folder) / name if layout == "nested" else Path(folder)
                if split == "train" and label == len(labels) - 1 and k >= n - missing:
                    continue
                write_video(root / where / f"{stem}.mp4", _frames(count, label, frames, size))
    for split, lines in rows.items():
        (root / f"{split}.csv").write_text(header + "\n".join(lines) + "\n")
    (root / "test.csv").write_text("youtube_id,time_start,time_end,split\n")
    return {"root": str(root), "format": "kinetics"}


def make_ssv1(
    root: Path, *, classes: int = 3, per_class: int = 6, val_per_class: int = 2,
    frames: int = 12, size: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """Something-Something V1: ``20bn-something-something-v1/<id>/00001.jpg`` frames, the
    ``id;label`` CSVs and the labels file."""
    from PIL import Image

    labels = ["Holding something", "Pushing something from left to right",
              "Putting something on a surface"][:classes]  # fmt: skip
    (root / "something-something-v1-labels.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "something-something-v1-labels.csv").write_text("\n".join(labels) + "\n")
    video_id = 100
    for split, n in (("train", per_class), ("validation", val_per_class)):
        lines = []
        for label, name in enumerate(labels):
            for _ in range(n):
                video_id += 1
                folder = root / "20bn-something-something-v1" / str(video_id)
                folder.mkdir(parents=True, exist_ok=True)
                for t, image in enumerate(_frames(video_id, label, frames, size), start=1):
                    Image.fromarray(image).save(folder / f"{t:05d}.jpg", quality=90)
                lines.append(f"{video_id};{name}")
        (root / f"something-something-v1-{split}.csv").write_text("\n".join(lines) + "\n")
    return {"root": str(root), "format": "ssv1"}


def make_ssv2(
    root: Path, *, classes: int = 3, per_class: int = 6, val_per_class: int = 2,
    frames: int = 12, size: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """Something-Something V2: ``<id>.webm`` (VP9) and the train/validation/labels JSON, the
    entries' ``template`` with ``[something]`` brackets."""
    templates = ["Holding [something]", "Pushing [something] from left to right",
                 "Putting [something] on a surface"][:classes]  # fmt: skip
    names = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    root.mkdir(parents=True, exist_ok=True)
    (root / "something-something-v2-labels.json").write_text(json.dumps(names, indent=1))
    video_id = 200
    for split, n in (("train", per_class), ("validation", val_per_class)):
        entries = []
        for label, template in enumerate(templates):
            for _ in range(n):
                video_id += 1
                write_video(root / "20bn-something-something-v2" / f"{video_id}.webm",
                            _frames(video_id, label, frames, size))  # fmt: skip
                entries.append({"id": str(video_id), "label": template.lower(),
                                "template": template, "placeholders": ["a cup"]})  # fmt: skip
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(entries))
    return {"root": str(root), "format": "ssv2"}


def make_activitynet(
    root: Path, *, classes: int = 3, per_class: int = 6, val_per_class: int = 2,
    frames: int = 16, size: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """ActivityNet v1.3: ``activity_net.v1-3.min.json`` (``database``, ``taxonomy``) over
    ``v_<id>.mp4`` and ``.mkv`` files; every video's segments carry its one label; the
    ``testing`` subset has no annotations."""
    labels = ["Applying sunscreen", "Archery", "Arm wrestling"][:classes]
    taxonomy = [{"nodeName": "Root", "parentName": None, "nodeId": 0, "parentId": None}]
    taxonomy += [{"nodeName": "Sports", "parentName": "Root", "nodeId": 1, "parentId": 0}]
    taxonomy += [
        {"nodeName": n, "parentName": "Sports", "nodeId": 2 + i, "parentId": 1}
        for i, n in enumerate(labels)
    ]
    database: dict[str, Any] = {}
    count = 0
    for subset, n in (("training", per_class), ("validation", val_per_class)):
        for label, name in enumerate(labels):
            for _ in range(n):
                count += 1
                key = f"a{count:03d}Xy-{label}"[:11]
                ext = ".mkv" if count % 3 == 0 else ".mp4"
                write_video(root / "videos" / f"v_{key}{ext}", _frames(count, label, frames, size))
                segment = {"segment": [0.1, 0.5], "label": name}
                database[key] = {"subset": subset, "duration": frames / 25,
                                 "url": f"https://www.youtube.com/watch?v={key}",
                                 "resolution": f"{size}x{size}",
                                 "annotations": [segment, dict(segment)]}  # fmt: skip
    database["zTestOnly01"] = {"subset": "testing", "duration": 1.0, "annotations": []}
    spec = {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database}
    (root / "activity_net.v1-3.min.json").write_text(json.dumps(spec))
    return {"root": str(root), "format": "activitynet", "videos": "videos"}
