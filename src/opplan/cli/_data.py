"""``opplan data``: generate the built-in synthetic datasets and check a dataset's videos.

- ``opplan data synth {order,tempo,relay} --out DIR [--videos-per-class N --seed S --size PX]``
- ``opplan data check CONFIG`` (a YAML config): every list the config names, as the planner
  will read it (any ``data.format``): records, classes, missing and unreadable videos; exit 0
  when the data are usable, 2 otherwise. A dry run before a long plan.
- ``opplan data check LIST --root DIR [--format video|frames|reference] [--out FILE]``
- ``opplan data prepare CONFIG --out DIR [--short-side 256 --gop 16 --fps N --frames]``: a
  fast-loading copy (re-encoded or JPEG frames) and its config (:mod:`opplan.cli._prepare`)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from opplan.errors import ConfigError

if TYPE_CHECKING:
    from opplan.video.io import Backend

__all__ = ["check_dataset", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "data", help="synthetic datasets and dataset checks", description=__doc__
    )
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    synth = sub.add_parser(
        "synth",
        help="write a built-in synthetic dataset (H.264 mp4 + train/val/test lists)",
        description=(
            "Procedurally generate a synthetic video dataset: 'order' (the class is the order "
            "of events over the whole video; uniform sampling should win), 'tempo' (the "
            "class is a fast local motion; consecutive sampling should win) or 'relay' (the "
            "order of two events and the fast motion they share: needs long, spread clips)."
        ),
    )
    synth.add_argument("task", choices=["order", "tempo", "relay"])
    synth.add_argument("--out", required=True, type=Path, help="output directory")
    synth.add_argument("--videos-per-class", type=int, default=40, metavar="N")
    synth.add_argument("--seed", type=int, default=0, metavar="S")
    synth.add_argument("--size", type=int, default=32, metavar="PX", help="frame side (even)")
    synth.add_argument(
        "--frames", type=int, nargs=2, default=(64, 192), metavar=("MIN", "MAX"),
        help="video length range in frames (default: 64 192)",
    )  # fmt: skip
    synth.set_defaults(func=_synth)

    check = sub.add_parser(
        "check",
        help="check a config's data (or one list): records, classes, missing, unreadable",
        description="CONFIG (.yaml): read every list the config names as the planner will, "
        "count records and classes, and open every video; exit 0 when the data are usable, "
        "2 otherwise. LIST: open and decode every video of LIST; write the unreadable ones "
        "to --out.",
    )
    check.add_argument(
        "list", type=Path, metavar="CONFIG|LIST", help="a YAML config, or an annotation list"
    )
    check.add_argument("--root", type=Path, default=None, help="dataset root for the paths")
    check.add_argument(
        "--format", choices=["video", "frames", "reference"], default="video",
        help="list format: 'path label', 'dir total_frames label' or 'path num_frames label'",
    )  # fmt: skip
    check.add_argument(
        "--out", type=Path, default=None,
        help="where to write 'path<TAB>reason' lines (default: ./unreadable.txt for a LIST; "
        "for a CONFIG only when given)",
    )  # fmt: skip
    check.add_argument(
        "--full", action="store_true", help="decode every frame (default: first, middle, last)"
    )
    check.add_argument("--workers", type=int, default=2, help="parallel readers (default: 2)")
    check.add_argument(
        "--frame-template", default="img_{:05d}.jpg",
        help="frame file names of frame directories (default: img_{:05d}.jpg, first = 1)",
    )  # fmt: skip
    check.set_defaults(func=_check)

    from opplan.cli._prepare import add_parser as add_prepare

    add_prepare(sub)


def _synth(args: argparse.Namespace) -> int:
    from opplan.fileio import check_out_dir
    from opplan.video.synthetic import generate_dataset

    check_out_dir(args.out)  # a file or a read-only folder: exit 2 before any video

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"\r{done}/{total} videos", end="\n" if done == total else "", flush=True)

    lists = generate_dataset(
        args.task,
        args.out,
        videos_per_class=args.videos_per_class,
        seed=args.seed,
        size=args.size,
        min_frames=args.frames[0],
        max_frames=args.frames[1],
        progress=progress,
    )
    for split, path in lists.items():
        count = len(path.read_text(encoding="utf-8").splitlines())
        print(f"{split}: {count} videos -> {path}")
    return 0


def _check_one(
    path: str,
    num_frames: int | None,
    full: bool,
    template: str,
    start: int = 1,
    backend: Backend | None = None,
) -> str | None:
    """Why ``path`` cannot be read (None: it can); ``full`` decodes every frame, else the
    first, middle and last. ``backend`` None: frames when a count is given, else PyAV."""
    import numpy as np

    from opplan.video.io import VideoReadError, open_video

    try:
        backend = backend or ("frames" if num_frames is not None else "pyav")
        with open_video(
            path,
            backend=backend,
            num_frames=num_frames,
            frame_template=template,
            frame_start_index=start,
        ) as reader:
            n = reader.num_frames
            indices = np.arange(n) if full else np.unique([0, n // 2, n - 1])
            for chunk in np.array_split(indices, max(1, len(indices) // 64)):
                reader.get_frames(chunk)
    except VideoReadError as err:
        return err.reason
    except (OSError, ValueError) as err:
        return str(err)
    return None


def check_dataset(
    list_file: Path,
    *,
    root: Path | None,
    fmt: str,
    full: bool = False,
    workers: int = 2,
    frame_template: str = "img_{:05d}.jpg",
) -> list[tuple[str, str]]:
    """(path, reason) of every unreadable video of an annotation list."""
    from concurrent.futures import ThreadPoolExecutor

    from opplan.video import read_frame_list, read_reference_list, read_video_list

    reader = {"video": read_video_list, "frames": read_frame_list}.get(fmt, read_reference_list)
    records = reader(list_file, root=root)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = list(
            pool.map(lambda r: _check_one(r.path, r.num_frames if fmt == "frames" else None, full,
                                          frame_template), records)
        )  # fmt: skip
    return [(r.path, why) for r, why in zip(records, reasons, strict=True) if why is not None]


def _check(args: argparse.Namespace) -> int:
    if args.list.suffix.lower() in (".yaml", ".yml"):
        from opplan.cli._data_check import check_config

        return check_config(args.list, full=args.full, workers=args.workers, out=args.out)
    if args.root is not None and not args.root.is_dir():
        raise ConfigError(f"--root: not a directory: {args.root}")
    args.out = args.out or Path("unreadable.txt")
    bad = check_dataset(
        args.list,
        root=args.root,
        fmt=args.format,
        full=args.full,
        workers=args.workers,
        frame_template=args.frame_template,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text("".join(f"{path}\t{why}\n" for path, why in bad), encoding="utf-8")
    os.replace(tmp, args.out)
    for path, why in bad:
        print(f"unreadable: {path}: {why}", file=sys.stderr)
    total = sum(
        1 for line in args.list.read_text(encoding="utf-8-sig").splitlines() if line.strip()
    )
    print(f"{total - len(bad)}/{total} videos readable; {len(bad)} unreadable -> {args.out}")
    return 1 if bad else 0
