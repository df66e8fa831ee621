"""``opplan data prepare CONFIG --out DIR``: a fast-loading copy of a config's dataset.

Every video of every list the config names (any ``data.format``, read as the planner reads
it) is re-encoded to H.264 with a short side and a short GOP, or extracted to JPEG frames
(``--frames``, MMAction2's ``<video>/img_00001.jpg``), by :mod:`opplan.video.prepare` in
parallel processes. DIR then holds ``videos/`` (the original relative layout), the lists
``train.txt`` / ``val.txt`` / ``test.txt`` (``video_list``, or ``frame_list`` with frame
counts), ``labels.txt`` (the class names), ``prepared.yaml`` (the same config pointing at the
copy) and ``prepare_report.json`` (the inputs that could not be prepared, with the reason;
left out of the lists). Re-running the command resumes: finished videos are not redone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opplan.errors import ConfigError

if TYPE_CHECKING:
    import rich.progress

__all__ = ["add_parser", "prepare_dataset"]

SPLITS = ("train", "val", "test")
# how each dataset names a clip's source (VideoRecord.group) in its file names, so the
# prepared copy's internal split keeps sources on one side (§5.1) as the original does
_GROUPS = {
    "ucf101": r"(?i)(v_[^/]+_g\d+)_c\d+[^/]*$",
    "kinetics": r"([^/]+)_\d{6}_\d{6}(?:\.[^/.]+)?$",
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prepare = sub.add_parser(
        "prepare",
        help="re-encode (short side, short GOP) or extract frames of a config's dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prepare.add_argument("config", type=Path, metavar="CONFIG", help="a YAML config")
    prepare.add_argument("--out", required=True, type=Path, metavar="DIR")
    prepare.add_argument(
        "--short-side",
        type=int,
        default=256,
        metavar="PX",
        help="scale down to this short side (0: keep; default 256)",
    )
    prepare.add_argument(
        "--gop", type=int, default=16, metavar="N", help="keyframe every N frames (default 16)"
    )
    prepare.add_argument(
        "--fps",
        type=float,
        default=None,
        metavar="N",
        help="constant output frame rate (variable-rate inputs resampled); "
        "default: every decoded frame once",
    )
    prepare.add_argument("--frames", action="store_true", help="JPEG frames instead of H.264")
    prepare.add_argument(
        "--flow",
        choices=["tvl1"],
        default=None,
        help="two-direction TV-L1 optical flow per consecutive frame pair, ±20 px as uint8 "
        "JPEG pairs (<video>/flow_x_00001.jpg, flow_y_00001.jpg; needs the 'flow' extra); "
        "prepared.yaml reads it with data.modality: flow",
    )
    prepare.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        metavar="N",
        help="parallel processes (default: CPUs - 1)",
    )
    prepare.set_defaults(func=_run)  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from opplan.video.prepare import PrepareOptions

    for name in ("short_side", "gop", "workers"):
        if getattr(args, name) < (0 if name == "short_side" else 1):
            raise ConfigError(f"--{name.replace('_', '-')}: must be positive")
    if args.fps is not None and args.fps <= 0:
        raise ConfigError("--fps: must be positive")
    if args.flow is not None:
        if args.frames:
            raise ConfigError("--flow and --frames: choose one (flow writes its own folders)")
        from opplan.video.flow import require_opencv_flow

        require_opencv_flow()  # before any work
    options = PrepareOptions(short_side=args.short_side or None, gop=args.gop, fps=args.fps,
                             frames=args.frames, flow=args.flow)  # fmt: skip
    report = prepare_dataset(args.config, args.out, options, workers=args.workers)
    bad = len(report["unreadable"])
    print(
        f"prepared {report['prepared']} of {report['videos']} videos, {bad} left out "
        f"(listed in {args.out / 'prepare_report.json'}) -> {args.out / 'prepared.yaml'}"
    )
    return 0  # fmt: skip


def _outputs(sources: list[str], videos: Path, out: Path, frames: bool) -> dict[str, Path]:
    """Where each source goes: ``DIR/videos/<its path under data.videos>`` (suffix .mp4, or
    a folder); one outside it under ``_outside/<hash>/``; two that would collide keep their
    old suffix in the name."""
    base = os.path.abspath(videos)
    planned: dict[str, Path] = {}
    for source in sources:
        relative = os.path.relpath(os.path.abspath(source), base)
        if relative.startswith(".."):
            digest = hashlib.sha1(os.path.dirname(os.path.abspath(source)).encode()).hexdigest()
            relative = os.path.join("_outside", digest[:10], os.path.basename(source))
        planned[source] = Path(relative)
    stems: dict[Path, int] = {}
    for rel in planned.values():
        stems[rel.with_suffix("")] = stems.get(rel.with_suffix(""), 0) + 1
    outputs = {}
    for source, rel in planned.items():
        stem = rel.with_suffix("")
        if stems[stem] > 1 and rel.suffix:
            stem = rel.with_name(f"{rel.stem}_{rel.suffix[1:]}")
        outputs[source] = out / "videos" / (stem if frames else stem.with_name(stem.name + ".mp4"))
    return outputs


def _group_pattern(data: Any, records: list[Any], outputs: dict[str, Path]) -> str | None:
    """A ``data.group_pattern`` that finds every record's group in its prepared path (the
    user's own, or the dataset's naming); None when there are no groups, or none works."""
    grouped = [r for r in records if r.group is not None]
    if not grouped:
        return None
    candidates = [p for p in (data.group_pattern, _GROUPS.get(data.format)) if p]
    if data.format == "hmdb51":  # <class>/<film>_<class>_...: the film, up to _<class>_
        names = "|".join(sorted({re.escape(Path(r.path).parent.name) for r in grouped}))
        candidates.append(rf"(?<=/)[^/]+?(?=_(?:{names})_[^/]*$)")
    for pattern in candidates:
        regex = re.compile(pattern)
        found = [regex.search(os.fspath(outputs[r.path])) for r in grouped]
        if all(m is not None and (m.group(1) if regex.groups else m.group(0)) == r.group
               for m, r in zip(found, grouped, strict=True)):  # fmt: skip
            return pattern
    return None


def _progress(total: int) -> rich.progress.Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("prepare"), BarColumn(), MofNCompleteColumn(), TextColumn("videos"),
        TextColumn("{task.fields[frames]} frames, {task.fields[bad]} bad"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True),
    )  # fmt: skip


def prepare_dataset(config_path: Path, out: Path, options: Any, *, workers: int = 2
                    ) -> dict[str, Any]:  # fmt: skip
    """Prepare the dataset of ``config_path`` into ``out`` (module docstring); returns the
    report also written to ``out/prepare_report.json``."""
    from opplan.config import load_config
    from opplan.engine.build import ensure_dataset
    from opplan.engine.data import read_split
    from opplan.fileio import atomic_write_json, atomic_write_text, check_out_dir
    from opplan.video.prepare import PrepareJob, prepare_all

    config = load_config(config_path)
    if config.trainer.kind != "video":
        raise ConfigError(f"{config_path}: trainer.kind must be 'video' to prepare its data")
    check_out_dir(out)
    data = config.trainer.data
    ensure_dataset(data)
    reading = data.model_copy(update={"missing": "skip"})  # missing: reported below
    names = {"train": data.train_list, "val": data.val_list, "test": data.test_list}
    lists = {s: read_split(reading, s) for s in SPLITS if names[s] is not None}
    classes = lists["train"].classes
    missing = {p for s in lists.values() for p in s.missing}
    records = {r.path: r for s in lists.values() for r in s.records}
    sources = [p for p in records if p not in missing]
    folders = options.frames or options.flow is not None
    outputs = _outputs(sources + sorted(missing), Path(data.root) / data.videos, out,
                       folders)  # fmt: skip
    jobs = [PrepareJob(p, os.fspath(outputs[p]), data.frame_template, data.frame_start_index)
            for p in sources]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    bar = _progress(len(jobs))  # started at the first result: after the workers (fork)
    task = bar.add_task("prepare", total=len(jobs), frames=0, bad=0)
    counts = {"frames": 0, "bad": 0}

    def seen(result: Any) -> None:
        if not bar.live.is_started:
            bar.start()
        counts["frames"] += result.frames
        counts["bad"] += result.error is not None
        bar.update(task, advance=1, frames=counts["frames"], bad=counts["bad"])

    try:
        results = prepare_all(jobs, out, options, workers=workers, on_result=seen)
    finally:
        bar.stop()
    done = {r.source: r for r in results if r.error is None}
    unreadable = [{"path": r.source, "reason": r.error} for r in results if r.error]
    unreadable += [{"path": p, "reason": "missing from the download"} for p in sorted(missing)]
    # the lists of the copy: paths relative to DIR, the same labels
    written: dict[str, dict[str, int]] = {}
    for split, lst in lists.items():
        lines = []
        for record in lst.records:
            result = done.get(record.path)
            if result is None:
                continue
            rel = os.path.relpath(result.output, out)
            lines.append(f"{rel} {result.frames} {record.label}" if folders
                         else f"{rel} {record.label}")  # fmt: skip
        atomic_write_text(out / f"{split}.txt", "".join(f"{line}\n" for line in lines))
        listed = len(lst.records) + (len(lst.missing) if split != "test" else 0)
        written[split] = {"listed": listed, "prepared": len(lines)}
    if classes is not None:
        atomic_write_text(out / "labels.txt", "".join(f"{name}\n" for name in classes))
    pattern = _group_pattern(data, list(records.values()), outputs)
    groups_kept = pattern is not None or all(r.group is None for r in records.values())
    _write_config(config_path, out, options, lists, classes, pattern)
    report = {
        "source_config": os.fspath(config_path),
        "options": {
            k: getattr(options, k) for k in ("short_side", "gop", "fps", "frames", "flow")
        },
        "videos": len(sources) + len(missing),
        "prepared": len(done),
        "frames": sum(r.frames for r in done.values()),
        "lists": written,
        "groups_kept": groups_kept,
        "unreadable": unreadable,
    }
    atomic_write_json(out / "prepare_report.json", report)
    if not groups_kept:
        print("warning: the source groups of the internal split (§5.1) cannot be found in the "
              "prepared paths; set data.group_pattern in prepared.yaml")  # fmt: skip
    return report


_LAYOUT_KEYS = ("format", "root", "split", "train_list", "val_list", "test_list", "labels_file",
                "videos", "video_template", "missing", "group_pattern", "frame_template",
                "frame_start_index", "synthetic", "allow_outside_root", "modality",
                "flow_template")  # fmt: skip


def _write_config(config_path: Path, out: Path, options: Any, lists: dict[str, Any],
                  classes: list[str] | None, pattern: str | None) -> None:  # fmt: skip
    """``DIR/prepared.yaml``: the user's config as written, its ``trainer.data`` layout
    replaced by the prepared copy's (everything else, comments aside, unchanged)."""
    import yaml

    from opplan.config import load_config
    from opplan.fileio import atomic_write_text

    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    data = {k: v for k, v in raw["trainer"]["data"].items() if k not in _LAYOUT_KEYS}
    data = {
        "root": os.path.abspath(out),
        "format": "frame_list" if options.frames or options.flow else "video_list",
        **{f"{s}_list": f"{s}.txt" if s in lists else None for s in SPLITS},
        **({"labels_file": "labels.txt"} if classes is not None else {}),
        **({"group_pattern": pattern} if pattern else {}),
        **data,
    }
    if options.flow:  # flow folders in MMAction2's layout, from pair 1
        data.update(modality="flow", flow_template="flow_{axis}_{:05d}.jpg", backend="frames")
    elif options.frames:
        data["backend"] = "frames"
    elif data.get("backend") == "frames":
        data["backend"] = "auto"
    raw["trainer"]["data"] = data
    text = (f"# prepared by `opplan data prepare {config_path}`: "
            f"{json.dumps({k: getattr(options, k) for k in ('short_side', 'gop', 'fps')})}\n"
            + yaml.safe_dump(raw, sort_keys=False))  # fmt: skip
    target = out / "prepared.yaml"
    atomic_write_text(target, text)
    load_config(target)  # the copy's config must load: a bug here, never the user's
