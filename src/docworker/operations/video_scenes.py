"""The ``video`` operation's ``scenes`` action: the shots of a video, each with its start,
end and one keyframe.

Cuts are found by PySceneDetect's :class:`~scenedetect.detectors.AdaptiveDetector` (the
change of hue, saturation and luminance from one frame to the next, weighed against the
changes around it, so a fast pan is not a cut and a cut in a busy shot is). Its frames
come from the guarded FFmpeg, not from a decoder in this process: the stretch is
decoded at a constant frame rate (the input's), scaled down to :data:`ANALYSIS_WIDTH`
and handed over one frame at a time (:meth:`~docworker.engines.ffmpeg.Ffmpeg.frames`),
so memory holds two small frames whatever the length, and a cut's time is a frame's
time. A second FFmpeg run writes the keyframes: the middle frame of each scene, at the
size asked for (``width``/``height``, else the picture's own), as ``scene-001.jpeg`` …
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from docworker.engines.ffmpeg import Ffmpeg, Probe
from docworker.errors import CorruptDocument, UnsupportedFormat
from docworker.operations.base import Artifact, InputFile, OperationContext, Result
from docworker.operations.media import (
    check_duration,
    covered_seconds,
    ffmpeg_timeout,
    fitted_size,
    image_codec_args,
    length_args,
    span_of,
)
from docworker.operations.video_params import VideoParams

#: Width (pixels) of the frames the detector compares: enough for the colour and
#: brightness changes it measures, small enough to cost little.
ANALYSIS_WIDTH = 256
#: Frame rate used when the input states none.
DEFAULT_FPS = 25.0
#: The shortest scene when ``min_scene`` is not given (seconds).
DEFAULT_MIN_SCENE = 0.5
#: The most keyframes one request writes (the scenes are all listed all the same).
MAX_KEYFRAMES = 500
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class Stretch:
    """The stretch of a video an analysis reads: where it begins, how long it lasts (None:
    unknown), its frame rate, the size its frames are compared at, the FFmpeg options
    that open it, and how many frames it should give (None: unknown)."""

    start: float
    seconds: float | None
    fps: float
    size: tuple[int, int]
    head: list[str]
    expected: int | None


def stretch_of(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    params: VideoParams,
    probe: Probe,
    purpose: str,
) -> Stretch:
    """The stretch ``params`` ask for, checked against the limits; a file without video
    is refused, naming ``purpose`` ("to find scenes in")."""
    video = probe.video
    if video is None:
        raise UnsupportedFormat(
            probe.container or "audio", f"the file has no video stream {purpose}"
        )
    span = span_of(params.start, params.duration, params.end, probe)
    seconds = covered_seconds(span, probe)
    check_duration(ctx, seconds)
    fps = float(video.get("fps") or DEFAULT_FPS)
    head = [*engine.input_args(source.path, start=span.start), *length_args(ctx, span, seconds)]
    expected = round(seconds * fps) if seconds else None
    return Stretch(span.start, seconds, fps, analysis_size(video), head, expected)


def scenes(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    stretch = stretch_of(ctx, engine, source, params, probe, "to find scenes in")
    fps, head = stretch.fps, stretch.head
    reading = read_frames(ctx, engine, head, fps, stretch.size, params, stretch.expected)
    frames = reading.frames
    found = scene_list(reading, fps, stretch.start)
    artifacts: list[Artifact] = []
    if params.keyframes and found:
        artifacts = keyframes(ctx, engine, head, fps, params, probe, found)
    payload: dict[str, Any] = {
        "action": "scenes",
        "input": probe.as_dict(),
        "start": stretch.start,
        "fps": round(fps, 3),
        "frames": frames,
        "count": len(found),
        "scenes": found,
    }
    return Result(payload=payload, artifacts=artifacts)


def analysis_size(video: Any) -> tuple[int, int]:
    width = int(video.get("display_width") or video.get("width") or 0)
    height = int(video.get("display_height") or video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise CorruptDocument("video", "the video stream has no picture size")
    scaled = min(ANALYSIS_WIDTH, width)
    return scaled - scaled % 2, max(2, round(height * scaled / width / 2) * 2)


@dataclass
class FrameReading:
    """What one pass over the analysis frames found: the cuts (frame numbers where
    scenes begin, the first excepted), the frame count, and per frame its mean
    luminance (0–255) and its mean difference from the frame before (0–255)."""

    cuts: list[int] = field(default_factory=list)
    frames: int = 0
    luma: list[float] = field(default_factory=list)
    change: list[float] = field(default_factory=list)


def read_frames(
    ctx: OperationContext,
    engine: Ffmpeg,
    head: list[str],
    fps: float,
    size: tuple[int, int],
    params: VideoParams,
    expected: int | None,
    *,
    measure: bool = False,
) -> FrameReading:
    """One pass over the stretch's frames at ``size``: the detector's cuts, and with
    ``measure`` the luminance and change of each frame (four numbers a frame kept)."""
    # Imported here: OpenCV and PySceneDetect are large, and only these actions need them.
    from scenedetect.common import FrameTimecode
    from scenedetect.detectors import AdaptiveDetector

    minimum = params.min_scene or DEFAULT_MIN_SCENE
    detector = AdaptiveDetector(
        adaptive_threshold=params.threshold, min_scene_len=max(1, round(minimum * fps))
    )
    width, height = size
    reading = FrameReading()
    previous: np.ndarray[Any, Any] | None = None
    step = max(1, (expected or 0) // 50)

    def frame(number: int, data: bytes) -> None:
        nonlocal previous
        image = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        for cut in detector.process_frame(FrameTimecode(number, fps), image):
            reading.cuts.append(cut.frame_num)
        if measure:
            # BT.601 luma from BGR, at a quarter of the pixels: enough for a mean.
            grey = image[::2, ::2] @ np.array([0.114, 0.587, 0.299], dtype=np.float32)
            reading.luma.append(float(grey.mean()))
            change = 0.0 if previous is None else float(np.abs(grey - previous).mean())
            reading.change.append(change)
            previous = grey
        if expected and number % step == 0:
            ctx.progress(0.8 * min(number / expected, 1.0), f"read {number} of {expected} frames")

    args = [*head, "-map", "0:V:0", "-an", "-sn", "-dn"]
    args += ["-vf", f"fps={fps:.6f},scale={width}:{height}:flags=area,setsar=1"]
    count = engine.frames(args, size=size, on_frame=frame, timeout=ffmpeg_timeout(ctx))
    if count == 0:
        raise CorruptDocument("video", "no frame could be decoded in the stretch asked for")
    for cut in detector.post_process(FrameTimecode(count, fps)):
        reading.cuts.append(cut.frame_num)
    reading.cuts = sorted({cut for cut in reading.cuts if 0 < cut < count})
    reading.frames = count
    return reading


def scene_list(reading: FrameReading, fps: float, start: float) -> list[dict[str, Any]]:
    """The scenes between the cuts, in the file's time."""
    bounds = [0, *reading.cuts, reading.frames]
    return [
        {
            "index": number,
            "start": round(start + first / fps, 3),
            "end": round(start + last / fps, 3),
            "duration": round((last - first) / fps, 3),
            "frames": last - first,
        }
        for number, (first, last) in enumerate(itertools.pairwise(bounds), start=1)
        if last > first
    ]


def keyframes(
    ctx: OperationContext,
    engine: Ffmpeg,
    head: list[str],
    fps: float,
    params: VideoParams,
    probe: Probe,
    found: list[dict[str, Any]],
) -> list[Artifact]:
    """The middle frame of each scene (the first :data:`MAX_KEYFRAMES`), written by one
    FFmpeg run that picks them by number from the same constant-rate frames."""
    fmt = params.output_format
    chosen = found[:MAX_KEYFRAMES]
    picks = []
    for scene in chosen:
        begin = round((scene["start"] - (params.start or 0.0)) * fps)
        middle = begin + scene["frames"] // 2
        picks.append(middle)
        scene["keyframe"] = {
            "name": f"scene-{scene['index']:03d}.{fmt}",
            "time": round(scene["start"] + (middle - begin) / fps, 3),
        }
    size = fitted_size(ctx, probe, params.width, params.height, even=False)
    select = "+".join(f"eq(n\\,{number})" for number in picks)
    pattern = ctx.artifact_path(f"scene-%03d.{fmt}")
    args = [*head, "-map", "0:V:0", "-an", "-sn", "-dn"]
    args += [
        "-vf",
        f"fps={fps:.6f},select='{select}',scale={size[0]}:{size[1]}:flags=bicubic,setsar=1",
        "-fps_mode",
        "vfr",
        *image_codec_args(fmt, params.quality),
        "-f",
        "image2",
        "-start_number",
        "1",
        f"file:{pattern}",
    ]
    engine.transcode(
        args, expected_seconds=None, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    artifacts = []
    for scene in chosen:
        path = ctx.artifact_path(scene["keyframe"]["name"])
        if path.is_file() and path.stat().st_size:
            artifacts.append(Artifact(path.name, path, _MIME[fmt]))
        else:  # the frame could not be written (a damaged stretch): no keyframe
            scene["keyframe"] = None
    return artifacts
