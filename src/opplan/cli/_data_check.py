"""``opplan data check CONFIG``: the dry run of a config's data before a long plan.

Reads every list the config names exactly as planning, training and the final test will
(``opplan.engine.data``), prints records and classes per list, the videos missing from the
download and the unreadable ones, and exits 0 when the data are usable, 2 otherwise. Usable:
every list loads, no list is empty, missing videos stay within ``data.missing`` and the
unreadable ones within ``data.max_bad_fraction`` of each list.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from opplan.errors import ConfigError

if TYPE_CHECKING:
    from opplan.config import DataConfig
    from opplan.video.annotations import VideoRecord

__all__ = ["check_config"]


def check_config(config_path: Path, *, full: bool, workers: int, out: Path | None) -> int:
    from opplan.config import load_config
    from opplan.engine.build import ensure_dataset
    from opplan.engine.data import planning_split, read_split

    config = load_config(config_path)
    if config.trainer.kind != "video":
        raise ConfigError(f"{config_path}: trainer.kind must be 'video' to check its data")
    data = config.trainer.data
    ensure_dataset(data)
    problems: list[str] = []
    unreadable: list[tuple[str, str]] = []
    names = {"train": data.train_list, "val": data.val_list, "test": data.test_list}
    seen: dict[str, str] = {}
    for split, name in names.items():
        if name is None:
            print(f"{split}: not set")
            continue
        lists = read_split(data, split)
        classes = lists.num_classes
        present = [r for r in lists.records if r.path not in set(lists.missing)]
        print(
            f"{split}: {len(lists.records) + (0 if split == 'test' else len(lists.missing))} "
            f"videos listed, {len(lists.missing)} missing, {classes} classes "
            f"({lists.where})"
        )
        for path in lists.missing[:5]:
            print(f"  missing: {path}")
        if len(lists.missing) > 5:
            print(f"  ... and {len(lists.missing) - 5} more missing")
        todo = [r for r in present if r.path not in seen]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            reasons = list(pool.map(lambda r: _probe(r, data, full), todo))
        for record, why in zip(todo, reasons, strict=True):
            seen[record.path] = why or ""
        bad = [(r.path, seen[r.path]) for r in present if seen[r.path]]
        unreadable.extend(b for b in bad if b not in unreadable)
        for path, why in bad[:5]:
            print(f"  unreadable: {path}: {why}")
        if len(bad) > len(present) * data.max_bad_fraction:
            problems.append(
                f"{split}: {len(bad)} of {len(present)} videos unreadable, more than "
                f"data.max_bad_fraction {data.max_bad_fraction}"
            )
        if split == "test" and lists.missing:
            print(f"  the final test will exclude and report the {len(lists.missing)} missing")
    fit, val, num_classes = planning_split(data, config.trainer.seed)
    print(f"planning: {len(fit)} training / {len(val)} internal validation videos, "
          f"{num_classes} classes (seed {config.trainer.seed})")  # fmt: skip
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text("".join(f"{p}\t{why}\n" for p, why in unreadable), encoding="utf-8")
        os.replace(tmp, out)
    for problem in problems:
        print(f"not usable: {problem}")
    print("data usable" if not problems else f"data not usable ({len(problems)} problems)")
    return 2 if problems else 0


def _probe(record: VideoRecord, data: DataConfig, full: bool) -> str | None:
    """Why one video cannot be read, with the config's backend and frame names."""
    from opplan.cli._data import _check_one

    folder = os.path.isdir(record.path)
    backend = "frames" if folder else ("pyav" if data.backend == "auto" else data.backend)
    frames = record.num_frames if folder else None
    return _check_one(
        record.path, frames, full, data.frame_template, data.frame_start_index, backend
    )
