"""Preparing videos for fast loading: re-encode to a short side and a short GOP, or extract
JPEG frames (what PySlowFast / MMAction2 users do by hand before training, §5.2's inputs).

Uniform sampling (§3.1) spreads a clip over the whole video, so on a long-GOP download every
clip decodes most of the file. A copy with a 256-pixel short side and a keyframe every 16
frames decodes at most a GOP's worth of extra frames per wanted frame; JPEG frames decode
only the wanted ones. :func:`prepare_video` does one video (in any worker process);
:func:`prepare_all` runs many in parallel processes and resumes after a kill: an output is
written under a fixed temporary name and renamed when complete, and a journal
(``.prepare/done.jsonl``, one fsync'd JSON line per finished video) says which are done, so
a finished video is never redone and a half-written one is started again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PrepareJob", "PrepareOptions", "PrepareResult", "prepare_all", "prepare_video"]

FRAME_TEMPLATE = "img_{:05d}.jpg"  # MMAction2's raw-frame layout, first frame = 1


@dataclass(frozen=True)
class PrepareOptions:
    """How to prepare: ``short_side`` (None keeps the size; smaller videos are never scaled
    up), keyframe interval ``gop``, constant output rate ``fps`` (None: one output frame per
    decoded frame, indices unchanged), ``frames`` (JPEG frames instead of H.264), ``flow``
    (``"tvl1"``: TV-L1 flow JPEG pairs instead, :mod:`opplan.video.flow`)."""

    short_side: int | None = 256
    gop: int = 16
    fps: float | None = None
    frames: bool = False
    crf: int = 23
    preset: str = "veryfast"
    jpeg_quality: int = 90
    flow: str | None = None


@dataclass(frozen=True)
class PrepareJob:
    """One input: an encoded file, or a frame folder (``frame_template`` from
    ``frame_start``); ``output`` is the ``.mp4`` file or the frame folder to write."""

    source: str
    output: str
    frame_template: str = FRAME_TEMPLATE
    frame_start: int = 1


@dataclass(frozen=True)
class PrepareResult:
    source: str
    output: str
    frames: int = 0
    error: str | None = None  # why the input could not be prepared
    skipped: bool = False  # finished by an earlier run


def _target_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Aspect ratio kept, short side at most ``short_side``, both sides even (yuv420p)."""
    scale = 1.0
    if short_side is not None and min(width, height) > short_side:
        scale = short_side / min(width, height)
    return (max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2)))


def _source_frames(job: PrepareJob) -> Iterator[tuple[Any, float | None, int]]:
    """(av.VideoFrame, time in s or None, counter-clockwise display rotation) of every frame,
    in presentation order."""
    import av

    from opplan.video.io import FramesDirReader

    if os.path.isdir(job.source):  # a frame folder (Something-Something V1)
        reader = FramesDirReader(job.source, template=job.frame_template,
                                 start_index=job.frame_start)  # fmt: skip
        for chunk in np.array_split(np.arange(reader.num_frames), -(-reader.num_frames // 32)):
            for image in reader.get_frames(chunk):
                yield av.VideoFrame.from_ndarray(np.ascontiguousarray(image), "rgb24"), None, 0
        return
    if not os.path.exists(job.source):
        raise FileNotFoundError("missing file")
    if os.path.getsize(job.source) == 0:
        raise ValueError("zero-byte file")
    with av.open(job.source, metadata_errors="ignore") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame, frame.time, round(getattr(frame, "rotation", 0) or 0)


def _upright(frame: Any, rotation: int, short_side: int | None) -> Any:
    """Scale (swscale, area filter) and turn upright per the display matrix; rgb24 frame."""
    import av

    turns = (rotation // 90) % 4  # the display rotates the stored picture counter-clockwise
    width, height = frame.width, frame.height
    shown_w, shown_h = (height, width) if turns % 2 else (width, height)
    out_w, out_h = _target_size(shown_w, shown_h, short_side)
    stored_w, stored_h = (out_h, out_w) if turns % 2 else (out_w, out_h)
    image = frame.reformat(width=stored_w, height=stored_h, format="rgb24",
                           interpolation="AREA")  # fmt: skip
    if turns:
        turned = np.ascontiguousarray(np.rot90(image.to_ndarray(), turns))
        image = av.VideoFrame.from_ndarray(turned, "rgb24")
    return image


def _resampled(frames: Iterator[tuple[Any, float | None, int]], fps: float | None
               ) -> Iterator[tuple[Any, int]]:  # fmt: skip
    """A constant ``fps`` from variable-rate input: each output instant takes the nearest
    input frame (repeated or dropped as needed, like FFmpeg's fps filter); no ``fps``: every
    decoded frame once. Yields (frame, rotation)."""
    if fps is None:
        for frame, _, rotation in frames:
            yield frame, rotation
        return
    slot, previous, start = 0, None, None
    for frame, time, rotation in frames:
        if time is None:  # frames without timestamps are taken as already at fps
            yield frame, rotation
            continue
        start = time if start is None else start
        t = time - start
        if previous is not None:
            middle = (previous[1] + t) / 2  # slots before the midpoint are nearer previous
            while slot / fps < middle:
                yield previous[0], previous[2]
                slot += 1
        previous = (frame, t, rotation)
    if previous is not None:
        while slot == 0 or slot / fps <= previous[1]:
            yield previous[0], previous[2]
            slot += 1


def _encode(job: PrepareJob, options: PrepareOptions, tmp: Path, rate: Fraction) -> int:
    import av

    count = 0
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = None
        for frame, rotation in _resampled(_source_frames(job), options.fps):
            image = _upright(frame, rotation, options.short_side)
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height, stream.pix_fmt = image.width, image.height, "yuv420p"
                stream.options = {"crf": str(options.crf), "g": str(options.gop),
                                  "keyint_min": str(options.gop), "sc_threshold": "0",
                                  "preset": options.preset, "threads": "1"}  # fmt: skip
            out = image.reformat(format="yuv420p")
            out.pts, out.time_base = count, 1 / rate
            container.mux(stream.encode(out))
            count += 1
        if stream is None:
            raise ValueError("no video frames")
        container.mux(stream.encode(None))
    return count


def _extract(job: PrepareJob, options: PrepareOptions, tmp: Path) -> int:
    tmp.mkdir(parents=True)
    count = 0
    for frame, rotation in _resampled(_source_frames(job), options.fps):
        count += 1
        image = _upright(frame, rotation, options.short_side).to_image()
        image.save(tmp / FRAME_TEMPLATE.format(count), quality=options.jpeg_quality)
    if count == 0:
        raise ValueError("no video frames")
    return count


def _flow(job: PrepareJob, options: PrepareOptions, tmp: Path) -> int:
    from opplan.video.flow import extract_flow

    frames = (_upright(frame, rotation, options.short_side).to_ndarray()
              for frame, rotation in _resampled(_source_frames(job), options.fps))  # fmt: skip
    return extract_flow(frames, tmp)  # a failure: prepare_video removes tmp


def _temp_name(output: Path) -> Path:
    """A fixed temporary name beside the output: a killed run's leftover is found again."""
    return output.with_name(f".{output.name}.part")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _count(output: Path, flow: bool = False) -> int | None:
    """Frames of a finished output (renamed into place, so complete), None if unreadable."""
    from opplan.video.io import FlowFramesReader, VideoReadError, open_video

    try:
        if flow:
            return FlowFramesReader(output).num_frames
        with open_video(output, frame_template=FRAME_TEMPLATE) as reader:
            return reader.num_frames
    except (VideoReadError, OSError):
        return None


def prepare_video(job: PrepareJob, options: PrepareOptions, journal: str | None = None
                  ) -> PrepareResult:  # fmt: skip
    """Prepare one video; an unreadable input comes back with ``error`` set (never raises
    for a bad input; a full disk raises). A finished output is appended to ``journal``
    right after its rename; one already in place (a run killed before its journal line)
    is counted, not redone."""
    import av

    from opplan.video.io import VideoReadError

    output = Path(job.output)
    if output.exists() and (frames := _count(output, options.flow is not None)) is not None:
        result = PrepareResult(job.source, job.output, frames=frames, skipped=True)
        _append(journal, result)
        return result
    tmp = _temp_name(output)
    _remove(tmp)  # a killed run's half-written output
    output.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(options.fps).limit_denominator(1001) if options.fps else None
    try:
        if options.flow is not None:
            count = _flow(job, options, tmp)
        elif options.frames:
            count = _extract(job, options, tmp)
        else:
            count = _encode(job, options, tmp, rate or _input_rate(job))
    except (av.FFmpegError, VideoReadError, ValueError, FileNotFoundError, UnicodeDecodeError,
            IndexError) as err:  # fmt: skip
        _remove(tmp)
        reason = err.reason if isinstance(err, VideoReadError) else str(err) or type(err).__name__
        return PrepareResult(job.source, job.output, error=reason)
    except BaseException:
        _remove(tmp)
        raise
    if output.exists():  # an unreadable leftover of another version
        _remove(output)
    os.replace(tmp, output)
    result = PrepareResult(job.source, job.output, frames=count)
    _append(journal, result)
    return result


def _append(journal: str | None, result: PrepareResult) -> None:
    """One line, one ``O_APPEND`` write (atomic between processes), fsync'd."""
    if journal is None:
        return
    line = json.dumps({"output": result.output, "frames": result.frames}) + "\n"
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _input_rate(job: PrepareJob) -> Fraction:
    """The frame rate written when ``fps`` is not given: the input's average (25 for frame
    folders and files that do not say)."""
    import av

    if os.path.isdir(job.source) or not os.path.isfile(job.source):
        return Fraction(25)
    try:
        with av.open(job.source, metadata_errors="ignore") as container:
            rate = container.streams.video[0].average_rate if container.streams.video else None
    except av.FFmpegError:
        return Fraction(25)  # decoding will report the reason
    return Fraction(rate).limit_denominator(1001) if rate else Fraction(25)


class _Journal:
    """``DIR/.prepare/done.jsonl``: one line per finished video; a torn last line (a kill
    mid-write) is ignored, and an output that no longer exists is not done."""

    def __init__(self, folder: Path, options: PrepareOptions) -> None:
        from opplan.errors import ConfigError

        folder.mkdir(parents=True, exist_ok=True)
        settings = folder / "options.json"
        wanted = asdict(options)
        if settings.exists():
            before = json.loads(settings.read_text(encoding="utf-8"))
            changed = [k for k in wanted if before.get(k) != wanted[k]]
            if changed:
                key = changed[0]
                raise ConfigError(
                    f"--{key.replace('_', '-')}: {wanted[key]!r}, but {folder.parent} was "
                    f"prepared with {before.get(key)!r}; use another --out or the same options"
                )
        else:
            from opplan.fileio import atomic_write_json

            atomic_write_json(settings, wanted)
        self.path = folder / "done.jsonl"
        self.done: dict[str, int] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.done[entry["output"]] = int(entry["frames"])
        if self.path.exists() and not self.path.read_bytes().endswith(b"\n"):
            with self.path.open("a", encoding="utf-8") as handle:  # end a torn line
                handle.write("\n")

    def finished(self, output: str) -> int | None:
        return self.done.get(output) if os.path.exists(output) else None


def _watch_parent(parent: int) -> None:
    """Worker start-up: exit when the parent dies (a killed run leaves no orphan workers
    behind, which would wait for jobs forever)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def prepare_all(
    jobs: Sequence[PrepareJob],
    out: str | os.PathLike[str],
    options: PrepareOptions,
    *,
    workers: int = 2,
    on_result: Callable[[PrepareResult], None] | None = None,
) -> list[PrepareResult]:
    """Prepare ``jobs`` in ``workers`` processes (0: in this one), resuming a killed run in
    ``out``; returns one result per job, in order. ``on_result`` sees each as it finishes
    (progress)."""
    journal = _Journal(Path(out) / ".prepare", options)
    log = os.fspath(journal.path)
    results: dict[int, PrepareResult] = {}
    todo = [k for k, job in enumerate(jobs) if journal.finished(job.output) is None]

    def finish(k: int, result: PrepareResult) -> None:
        results[k] = result
        if on_result is not None:
            on_result(result)

    def skipped() -> None:
        for k in sorted(set(range(len(jobs))) - set(todo)):
            frames = journal.finished(jobs[k].output) or 0
            finish(k, PrepareResult(jobs[k].source, jobs[k].output, frames, skipped=True))

    if workers <= 0 or not todo:
        skipped()
        for k in todo:
            finish(k, prepare_video(jobs[k], options, log))
        return [results[k] for k in range(len(jobs))]
    import multiprocessing

    # fork (workers start at once, without re-importing torch) before any progress thread
    # runs: the first submit starts every worker, then the caller's callbacks may start one
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_watch_parent, initargs=(os.getpid(),)
    ) as pool:
        running: dict[Future[PrepareResult], int] = {}
        queue = iter(todo)
        for k in queue:  # twice the workers in flight: memory stays bounded
            running[pool.submit(prepare_video, jobs[k], options, log)] = k
            if len(running) >= 2 * workers:
                break
        skipped()
        while running:
            ready, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ready:
                finish(running.pop(future), future.result())
                following = next(queue, None)
                if following is not None:
                    running[pool.submit(prepare_video, jobs[following], options, log)] = following
    return [results[k] for k in range(len(jobs))]
