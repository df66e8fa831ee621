"""TV-L1 optical flow for the two-stream networks (§5.5, Table 7: the flow stream).

The paper's flow is TV-L1 (Zach et al. 2007). :func:`tvl1_flow` computes it with OpenCV's
contrib ``DualTVL1OpticalFlow`` (the ``flow`` extra) for each consecutive frame pair, in
pixels per frame, (H, W, 2) with x (right) then y (down). :func:`quantize_flow` clips it to
±``bound`` px and maps it to uint8 the way MMAction2's ``flow_extraction`` does
(``round((f + bound) / (2 bound) * 255)``), so a flow folder written here and one written by
MMAction2 or the older ``dense_flow`` tool read alike. :func:`extract_flow` writes one video's
folder: ``flow_x_00001.jpg``, ``flow_y_00001.jpg`` ... (one pair per consecutive frame pair,
so a video of N frames has N - 1). :mod:`opplan.video.prepare` runs it in parallel and
resumably (``opplan data prepare CONFIG --flow tvl1 --out DIR``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from opplan.errors import ConfigError

__all__ = [
    "FLOW_BOUND",
    "FLOW_TEMPLATE",
    "dequantize_flow",
    "extract_flow",
    "quantize_flow",
    "require_opencv_flow",
    "tvl1_flow",
]

FLOW_TEMPLATE = "flow_{axis}_{:05d}.jpg"  # MMAction2's layout; dense_flow: "{axis}_{:05d}.jpg"
FLOW_BOUND = 20.0  # px, MMAction2's and TSN's clipping


def require_opencv_flow() -> Any:
    """``cv2`` with the contrib TV-L1 implementation, or a ConfigError saying what to install."""
    try:
        import cv2
    except ImportError:
        raise ConfigError(
            "--flow tvl1 needs OpenCV's contrib modules: pip install 'opplan[flow]' "
            "(opencv-contrib-python-headless)"
        ) from None
    if not hasattr(getattr(cv2, "optflow", None), "DualTVL1OpticalFlow_create"):
        raise ConfigError(
            f"--flow tvl1: this OpenCV ({cv2.__version__}) has no cv2.optflow."
            "DualTVL1OpticalFlow_create; install opencv-contrib-python-headless instead of "
            "opencv-python"
        )
    return cv2


def _gray(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB or (H, W) -> uint8 (H, W) luma (ITU-R 601, as cv2.cvtColor)."""
    if frame.ndim == 2:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    luma = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def tvl1_flow(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """TV-L1 flow float32 (H, W, 2) of each consecutive pair of ``frames`` (uint8 RGB or
    gray), in pixels per frame: channel 0 is x (to the right), channel 1 y (down)."""
    cv2 = require_opencv_flow()
    cv2.setNumThreads(1)  # one process per video (prepare's workers): no oversubscription
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    previous: np.ndarray | None = None
    for frame in frames:
        gray = _gray(np.asarray(frame))
        if previous is not None:
            if gray.shape != previous.shape:
                raise ValueError(f"frame size changes from {previous.shape} to {gray.shape}")
            try:
                flow = tvl1.calc(previous, gray, None)
            except cv2.error as err:  # reported per video by prepare, like a decode error
                raise ValueError(f"TV-L1 failed: {err}") from None
            yield np.asarray(flow, dtype=np.float32)
        previous = gray


def quantize_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Float flow (..., 2) -> uint8 (..., 2): clipped to ±``bound``, 0 px -> 128."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    out: np.ndarray = np.rint(scaled).astype(np.uint8)
    return out


def dequantize_flow(values: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """The inverse of :func:`quantize_flow` (to within half a quantisation step)."""
    out: np.ndarray = values.astype(np.float32) * np.float32(2 * bound / 255.0) - np.float32(bound)
    return out


def extract_flow(
    frames: Iterable[np.ndarray],
    folder: str | Path,
    *,
    template: str = FLOW_TEMPLATE,
    bound: float = FLOW_BOUND,
    quality: int = 95,
) -> int:
    """Write the quantised TV-L1 flow of ``frames`` into ``folder`` (created) as grey JPEG
    pairs named by ``template`` (``{axis}`` is x or y, ``{}`` the 1-based pair number);
    returns the number of pairs. Fewer than two frames is a ValueError."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, flow in enumerate(tvl1_flow(frames), start=1):
        values = quantize_flow(flow, bound)
        for channel, axis in enumerate("xy"):
            image = Image.fromarray(np.ascontiguousarray(values[..., channel]), mode="L")
            image.save(folder / template.format(count, axis=axis), quality=quality)
    if count == 0:
        raise ValueError("fewer than 2 frames: no flow")
    return count
