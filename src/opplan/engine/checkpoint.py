"""Training checkpoints: model + optimizer + epoch + RNG states + score history.

Written atomically (serialize to memory, temp file, ``os.replace``) and read back with
``torch.load(weights_only=True)``: a checkpoint holds tensors and plain containers only.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from opplan.fileio import atomic_write_bytes

__all__ = ["load_checkpoint", "rng_states", "save_checkpoint", "set_rng_states"]


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
        raise ValueError(f"checkpoint {p} cannot be read: {err}") from None
    return data
