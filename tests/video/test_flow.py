"""Optical flow (issue 19): TV-L1 extraction, the flow-folder reader (MMAction2 and
dense_flow layouts), quantisation, and the flow transforms (2 channels, flip negates x)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from opplan.cli import main
from opplan.config import DataConfig, load_config
from opplan.errors import ConfigError
from opplan.video.flow import FLOW_BOUND, dequantize_flow, quantize_flow
from opplan.video.io import FlowFramesReader, FlowOpener, check_flow_template
from opplan.video.transforms import (
    FLOW_MEAN,
    FLOW_STD,
    FlowFlip,
    TransformConfig,
    build_transform,
    to_video,
)

try:
    from opplan.video.flow import require_opencv_flow

    require_opencv_flow()
    HAVE_TVL1 = True
except ConfigError:
    HAVE_TVL1 = False
needs_tvl1 = pytest.mark.skipif(
    not HAVE_TVL1, reason="TV-L1 needs the 'flow' extra (opencv-contrib-python-headless)"
)


def _texture(size: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (uint8 RGB), periodic so that np.roll is a clean translation."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((size, size)))
    freq = np.fft.fftfreq(size)
    low = np.exp(-(freq[:, None] ** 2 + freq[None, :] ** 2) / (2 * 0.08**2))
    image = np.real(np.fft.ifft2(spectrum * low))
    image = (image - image.min()) / (image.max() - image.min()) * 255
    return np.repeat(image.astype(np.uint8)[..., None], 3, axis=2)


def _moving(frames: int, dx: int, dy: int, size: int = 48) -> np.ndarray:
    base = _texture(size)
    return np.stack([np.roll(base, (k * dy, k * dx), axis=(0, 1)) for k in range(frames)])


@needs_tvl1
@pytest.mark.parametrize(("dx", "dy"), [(2, -1), (-3, 0), (0, 2)])
def test_tvl1_recovers_the_direction_and_size_of_a_known_translation(dx, dy):
    from opplan.video.flow import tvl1_flow

    flows = list(tvl1_flow(_moving(3, dx, dy)))
    assert len(flows) == 2 and flows[0].shape == (48, 48, 2)
    inner = np.stack(flows)[:, 8:-8, 8:-8]  # away from the wrapped borders
    assert np.median(inner[..., 0]) == pytest.approx(dx, abs=0.25)
    assert np.median(inner[..., 1]) == pytest.approx(dy, abs=0.25)


@given(st.lists(st.floats(-30, 30, allow_nan=False), min_size=1, max_size=50))
def test_quantisation_clips_to_20px_and_round_trips_within_half_a_step(values):
    flow = np.array(values, np.float32)
    back = dequantize_flow(quantize_flow(flow))
    step = 2 * FLOW_BOUND / 255
    assert np.all(np.abs(back - np.clip(flow, -FLOW_BOUND, FLOW_BOUND)) <= step / 2 + 1e-5)
    assert quantize_flow(np.array([0.0]))[0] == 128 and quantize_flow(np.array([-99.0]))[0] == 0


def _write_pairs(folder: Path, values: np.ndarray, template: str) -> None:
    """uint8 (T, H, W, 2) -> grey PNG-exact files (lossless: the reader's values are known)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, pair in enumerate(values, start=1):
        for channel, axis in enumerate("xy"):
            Image.fromarray(pair[..., channel]).save(folder / template.format(k, axis=axis))


@pytest.mark.parametrize("template", ["flow_{axis}_{:05d}.png", "{axis}_{:05d}.png"])
def test_reader_reads_mmaction2_and_dense_flow_layouts(tmp_path, template):
    rng = np.random.default_rng(1)
    values = rng.integers(0, 256, (5, 6, 7, 2), dtype=np.uint8)
    _write_pairs(tmp_path / "v", values, template)
    reader = FlowFramesReader(tmp_path / "v", template=template)
    assert reader.num_frames == 5
    np.testing.assert_array_equal(reader.get_frames([4, 0, 0]), values[[4, 0, 0]])
    opener = FlowOpener(template, cache=True)
    from opplan.video.annotations import VideoRecord

    record = VideoRecord(str(tmp_path / "v"), 0)
    np.testing.assert_array_equal(opener(record).get_frames([2]), values[[2]])


def test_flow_template_without_axis_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="axis"):
        check_flow_template("flow_{:05d}.jpg")
    with pytest.raises(ValueError, match="flow_template"):
        DataConfig(root=".", modality="flow", flow_template="flow_{:05d}.jpg")
    assert (
        DataConfig(root=".", modality="flow", flow_template="{axis}_{:05d}.jpg").modality == "flow"
    )


def test_flip_mirrors_and_negates_x_only():
    rng = np.random.default_rng(2)
    clip = torch.from_numpy(rng.integers(0, 256, (3, 2, 5, 6), dtype=np.uint8))
    flipped = FlowFlip(p=1.0)(clip.clone())
    np.testing.assert_array_equal(flipped[:, 0], 255 - clip[:, 0].flip(-1))
    np.testing.assert_array_equal(flipped[:, 1], clip[:, 1].flip(-1))
    # quantised flow negates exactly: dequantize(255 - q) == -dequantize(q)
    q = clip[:, 0].numpy()
    np.testing.assert_allclose(dequantize_flow(255 - q), -dequantize_flow(q), atol=1e-5)
    assert FlowFlip(p=0.0)(clip.clone()).equal(clip)


def test_flow_clips_are_2xTxHxW_normalised_around_128():
    cfg = TransformConfig.scaled(32, modality="flow", mean=FLOW_MEAN, std=FLOW_STD)
    frames = np.full((4, 32, 32, 2), 128, np.uint8)
    frames[..., 0] = 255  # +20 px to the right everywhere
    for mode in ("train", "plan_eval", "test"):
        out = build_transform(cfg, mode)(frames)  # type: ignore[arg-type]
        assert out.shape[:2] == (2, 4)
        assert torch.allclose(out[1], torch.zeros(()), atol=1e-6)
        # +20 px -> (255 - 128) / 128; flipped in training: 255 - 255 = 0 -> -1 (-20 px)
        x = {round(v, 5) for v in out[0].unique().tolist()}
        assert (
            x in ({round(127 / 128, 5)}, {-1.0}) if mode == "train" else x == {round(127 / 128, 5)}
        )
    with pytest.raises(ConfigError, match="2 values"):
        TransformConfig(modality="flow")  # the RGB mean/std do not fit 2 channels
    assert to_video(frames).shape == (4, 2, 32, 32)


def _write_video(path: Path, frames: np.ndarray) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, "rgb24")))
        container.mux(stream.encode(None))


@needs_tvl1
def test_prepare_flow_writes_the_mmaction2_layout_reports_broken_inputs_and_resumes(
    tmp_path, capfd
):
    root = tmp_path / "data"
    moves = {"right.mp4": (2, 0), "up.mp4": (0, -2)}
    for name, (dx, dy) in moves.items():
        _write_video(root / name, _moving(4, dx, dy))
    (root / "broken.mp4").write_bytes(b"not a video")
    (root / "train.txt").write_text("right.mp4 0\nup.mp4 1\nbroken.mp4 1\n")
    (root / "val.txt").write_text("right.mp4 0\n")
    config = {
        "graph": {"kind": "basic", "samplings": ["consecutive"], "clip_lengths": [2],
                  "learning_rates": [0.05]},
        "planner": {"delay": 1, "max_epochs": 1},
        "trainer": {"kind": "video", "device": "cpu", "data": {
            "root": str(root), "test_list": None, "frame_size": 32}},
    }  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "flow"
    args = ["data", "prepare", str(path), "--flow", "tvl1", "--out", str(out), "--workers", "2"]
    assert main(args) == 0
    report = json.loads((out / "prepare_report.json").read_text())
    assert [u["path"].endswith("broken.mp4") for u in report["unreadable"]] == [True]
    assert (out / "videos/right/flow_x_00003.jpg").is_file()
    assert not (out / "videos/right/flow_x_00004.jpg").exists()  # 4 frames -> 3 pairs
    assert (out / "train.txt").read_text().splitlines() == ["videos/right 3 0", "videos/up 3 1"]
    prepared = load_config(out / "prepared.yaml").trainer.data
    assert (prepared.modality, prepared.format) == ("flow", "frame_list")
    for name, (dx, dy) in moves.items():
        reader = FlowFramesReader(out / "videos" / Path(name).stem)
        flow = dequantize_flow(reader.get_frames(range(3)))[:, 8:-8, 8:-8]
        assert np.median(flow[..., 0]) == pytest.approx(dx, abs=0.5)  # JPEG + H.264 loss
        assert np.median(flow[..., 1]) == pytest.approx(dy, abs=0.5)
    capfd.readouterr()
    assert main(args) == 0  # resumed: nothing redone
    assert "prepared 2 of 3 videos" in capfd.readouterr().out
    assert main([*args[:-2], "--frames", "--workers", "1"]) == 2  # --flow with --frames
