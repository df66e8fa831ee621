"""Training checkpoints: model + optimizer + epoch + RNG states + score history.

Written atomically (serialize to memory, temp file, ``os.replace``) and read back with
``torch.load(weights_only=True)``: a checkpoint holds tensors and plain containers only, so a
tampered file cannot run code; it is refused with :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from opplan.errors import OpplanError
from opplan.fileio import atomic_write_bytes

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "rng_states",
    "save_checkpoint",
    "set_rng_states",
]


class CheckpointError(OpplanError, ValueError):
    """A checkpoint cannot be read: corrupt, not a checkpoint, or holding objects other than
    tensors and plain containers (refused by ``weights_only=True``)."""


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); the error names the file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} not found")
    try:
        data: dict[str, Any] = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for a bad file
        raise CheckpointError(f"checkpoint {p} cannot be read: {_reason(err)}") from None
    return data


def _reason(err: Exception) -> str:
    """One line out of torch's (long, multi-line) loading error."""
    text = str(err)
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if found is not None:  # a pickled object weights_only refuses (or not a pickle at all)
        detail = found.group(1).split(". ")[0].strip()
        return f"{detail} (only tensors and plain containers are loaded: weights_only=True)"
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__
