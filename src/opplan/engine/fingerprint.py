"""What a plan's data was: journaled at plan start so that ``opplan plan --resume`` refuses a
plan whose videos changed under it (two validation sets in one curve, or another class count).

The fingerprint covers what the planner uses: the records of the planning-train and internal
validation lists (§5.1, :func:`opplan.engine.build.planning_split`) and the class count,
plus the sha256 of each annotation file the config names, so that a refusal can name the
file that changed. It is a plain dict (JSON); comparing two is :mod:`opplan.rundir`'s job.
The videos' bytes are not hashed (that would read the whole dataset at every start).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from opplan.config import DataConfig
from opplan.engine.build import planning_split

__all__ = ["annotation_files", "data_fingerprint", "records_hash"]


def annotation_files(data: DataConfig) -> dict[str, Path]:
    """``data.<field>`` -> file, for each annotation file of the config that planning may
    read (every ``*_list`` and ``*_file`` field but the test list), where it is a plain
    file."""
    root = Path(data.root)
    files = {}
    for name in type(data).model_fields:
        value = getattr(data, name)
        wanted = name.endswith(("_list", "_file")) and name != "test_list"
        if wanted and isinstance(value, str):
            path = root / value
            if path.is_file():
                files[f"data.{name}"] = path
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def records_hash(train: list[Any], val: list[Any], num_classes: int) -> str:
    """sha256 of the records (every field, in order) of a training and a validation list."""
    canonical = json.dumps(
        {
            "train": [asdict(r) for r in train],
            "val": [asdict(r) for r in val],
            "num_classes": num_classes,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def data_fingerprint(data: DataConfig, seed: int) -> dict[str, Any]:
    """The fingerprint of the data a plan with ``data`` and trainer ``seed`` uses."""
    train, val, num_classes = planning_split(data, seed)
    return {
        "split": records_hash(train, val, num_classes),
        "train": len(train),
        "val": len(val),
        "num_classes": num_classes,
        "files": {
            field: {"path": str(path), "sha256": _sha256(path)}
            for field, path in annotation_files(data).items()
        },
    }
