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


def scenes(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    video = probe.video
    if video is None:
        raise UnsupportedFormat(
            probe.container or "audio", "the file has no video stream to find scenes in"
        )
    span = span_of(params.start, params.duration, params.end, probe)
    seconds = covered_seconds(span, probe)
    check_duration(ctx, seconds)
    fps = float(video.get("fps") or DEFAULT_FPS)
    width, height = _analysis_size(video)
    head = [*engine.input_args(source.path, start=span.start), *length_args(ctx, span, seconds)]
    expected = round(seconds * fps) if seconds else None
    cuts, frames = _cuts(ctx, engine, head, fps, (width, height), params, expected)
    bounds = [0, *cuts, frames]
    found = [
        {
            "index": number,
            "start": round(span.start + first / fps, 3),
            "end": round(span.start + last / fps, 3),
            "duration": round((last - first) / fps, 3),
            "frames": last - first,
        }
        for number, (first, last) in enumerate(itertools.pairwise(bounds), start=1)
        if last > first
    ]
    artifacts: list[Artifact] = []
    if params.keyframes and found:
        artifacts = _keyframes(ctx, engine, head, fps, params, probe, found)
    payload: dict[str, Any] = {
        "action": "scenes",
        "input": probe.as_dict(),
        "start": span.start,
        "fps": round(fps, 3),
        "frames": frames,
        "count": len(found),
        "scenes": found,
    }
    return Result(payload=payload, artifacts=artifacts)


def _analysis_size(video: Any) -> tuple[int, int]:
    width = int(video.get("display_width") or video.get("width") or 0)
    height = int(video.get("display_height") or video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise CorruptDocument("video", "the video stream has no picture size")
    scaled = min(ANALYSIS_WIDTH, width)
    return scaled - scaled % 2, max(2, round(height * scaled / width / 2) * 2)


def _cuts(
    ctx: OperationContext,
    engine: Ffmpeg,
    head: list[str],
    fps: float,
    size: tuple[int, int],
    params: VideoParams,
    expected: int | None,
) -> tuple[list[int], int]:
    """The frame numbers where scenes begin (the first excepted), and the frame count."""
    # Imported here: OpenCV and PySceneDetect are large, and only this action needs them.
    from scenedetect.common import FrameTimecode
    from scenedetect.detectors import AdaptiveDetector

    minimum = params.min_scene or DEFAULT_MIN_SCENE
    detector = AdaptiveDetector(
        adaptive_threshold=params.threshold, min_scene_len=max(1, round(minimum * fps))
    )
    width, height = size
    cuts: list[int] = []
    step = max(1, (expected or 0) // 50)

    def frame(number: int, data: bytes) -> None:
        image = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        for cut in detector.process_frame(FrameTimecode(number, fps), image):
            cuts.append(cut.frame_num)
        if expected and number % step == 0:
            ctx.progress(0.9 * min(number / expected, 1.0), f"read {number} of {expected} frames")

    args = [*head, "-map", "0:V:0", "-an", "-sn", "-dn"]
    args += ["-vf", f"fps={fps:.6f},scale={width}:{height}:flags=area,setsar=1"]
    count = engine.frames(args, size=size, on_frame=frame, timeout=ffmpeg_timeout(ctx))
    if count == 0:
        raise CorruptDocument("video", "no frame could be decoded in the stretch asked for")
    for cut in detector.post_process(FrameTimecode(count, fps)):
        cuts.append(cut.frame_num)
    return sorted({cut for cut in cuts if 0 < cut < count}), count


def _keyframes(
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
