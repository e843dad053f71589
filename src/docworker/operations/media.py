"""What the media operations (``video``, ``audio``) share: what they admit, the probe
that comes first, the stretch of the input they cover, and the checks on time and
output size against ``settings.ffmpeg``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from docworker.engines.ffmpeg import Ffmpeg, Probe
from docworker.errors import (
    CorruptDocument,
    InvalidParameter,
    LimitExceeded,
    ProcessingFailed,
    UnsupportedFormat,
    figure,
)
from docworker.formats.detect import detect, format_of
from docworker.operations.base import InputFile, OperationContext

#: Families (:func:`~docworker.formats.detect.format_of`) handed to FFmpeg; it decides
#: on ``binary`` (what detection could not name) by probing.
MEDIA_FAMILIES = frozenset({"video", "audio", "binary"})
ALSO_MEDIA = frozenset({"image/gif"})
#: Seconds kept between FFmpeg's time limit and the job's, so the clearer error wins.
JOB_MARGIN = 5.0
#: JPEG and WebP quality of images made from frames, when none is asked for.
DEFAULT_QUALITY = 85


@dataclass(frozen=True)
class Span:
    """The stretch of the input an output covers: from ``start``, for ``length`` seconds
    (None: to the end)."""

    start: float
    length: float | None


def media_mime(source: InputFile, operation: str) -> str:
    """The input's type, refused (415) unless FFmpeg may be handed it."""
    mime = source.mime or detect(source.path, source.name).mime
    if format_of(mime) not in MEDIA_FAMILIES and mime not in ALSO_MEDIA:
        raise UnsupportedFormat(
            mime, f"the {operation} operation reads video and audio files, not {mime}"
        )
    return mime


def probe_input(engine: Ffmpeg, source: InputFile, mime: str) -> Probe:
    """What the input holds; a file named as media that FFmpeg cannot read is corrupt."""
    try:
        return engine.probe(source.path)
    except UnsupportedFormat as exc:
        if format_of(mime) in {"video", "audio"}:
            raise CorruptDocument(mime.rsplit("/", maxsplit=1)[-1], exc.detail) from None
        raise


def ffmpeg_timeout(ctx: OperationContext) -> float:
    return max(ctx.settings.executor.job_timeout - JOB_MARGIN, 1.0)


def span_of(start: float | None, duration: float | None, end: float | None, probe: Probe) -> Span:
    """The stretch asked for (``start`` with ``duration`` or ``end``), within the input."""
    begin = start or 0.0
    if probe.duration is not None and begin >= probe.duration:
        raise InvalidParameter(
            "start", f"{begin:g} s is past the end of the file ({probe.duration:g} s)"
        )
    length = duration
    if end is not None:
        length = end - begin
    if length is not None and probe.duration is not None:
        length = min(length, probe.duration - begin)
    return Span(begin, length)


def covered_seconds(span: Span, probe: Probe) -> float | None:
    """How long the stretch lasts: asked for, or the rest of the input (None: unknown)."""
    if span.length is not None:
        return span.length
    return probe.duration - span.start if probe.duration is not None else None


def check_duration(ctx: OperationContext, seconds: float | None) -> None:
    maximum = ctx.settings.ffmpeg.max_duration
    if seconds is not None and seconds > maximum:
        raise LimitExceeded(
            "duration (s)",
            round(seconds, 3),
            maximum,
            f"the output would last {seconds:g} s, over the configured limit of "
            f"{figure(maximum)} s: ask for a shorter clip",
        )


def length_args(ctx: OperationContext, span: Span, seconds: float | None) -> list[str]:
    """``-t`` for the stretch; a file that states no duration is cut at the limit
    rather than trusted."""
    length = span.length if seconds is not None else ctx.settings.ffmpeg.max_duration
    return ["-t", f"{length:.6f}"] if length is not None else []


def check_output(ctx: OperationContext, output: Path) -> None:
    if not output.is_file() or output.stat().st_size == 0:
        raise ProcessingFailed("FFmpeg wrote no output: the input has nothing to encode there")
    maximum = ctx.settings.ffmpeg.max_output_bytes
    size = output.stat().st_size
    if size >= maximum:
        raise LimitExceeded(
            "output bytes",
            size,
            maximum,
            f"the output passed the configured limit of {maximum} bytes: "
            "ask for a shorter clip, a smaller size or a lower bit rate",
        )


def image_codec_args(fmt: str, quality: int | None) -> list[str]:
    """The encoder of frames written as ``fmt`` images (png, jpeg, webp)."""
    quality = quality or DEFAULT_QUALITY
    if fmt == "jpeg":
        # FFmpeg's JPEG scale: 2 (best) to 31; v1 mapped quality q to 31 - q*30/100.
        return ["-c:v", "mjpeg", "-q:v", str(max(31 - quality * 30 // 100, 2))]
    if fmt == "webp":
        return ["-c:v", "libwebp", "-quality", str(quality)]
    return ["-c:v", "png"]


def fitted_size(
    ctx: OperationContext, probe: Probe, width: int | None, height: int | None, *, even: bool
) -> tuple[int, int]:
    """An output's picture size: the input's as displayed, fitted to ``width`` and/or
    ``height`` with its aspect ratio kept (even numbers for video encoders)."""
    video = probe.video
    assert video is not None
    shown_width = int(video.get("display_width") or 0)
    shown_height = int(video.get("display_height") or 0)
    if shown_width <= 0 or shown_height <= 0:
        raise CorruptDocument("video", "the video stream has no picture size")
    factor = 1.0
    if width is not None and height is not None:
        factor = min(width / shown_width, height / shown_height)
    elif width is not None:
        factor = width / shown_width
    elif height is not None:
        factor = height / shown_height
    step = 2 if even else 1
    size = (_round(shown_width * factor, step), _round(shown_height * factor, step))
    pixels = size[0] * size[1]
    maximum = ctx.settings.ffmpeg.max_pixels
    if pixels > maximum:
        raise LimitExceeded("output frame pixels", pixels, maximum)
    return size


def _round(value: float, step: int) -> int:
    return max(round(value / step) * step, step)


def filter_value(text: str) -> str:
    """``text`` as an option value inside an FFmpeg filter graph: escaped for the
    option (``\\ ' :``), then for the graph (``\\ ' [ ] , ;``)."""
    once = re.sub(r"([\\':])", r"\\\1", text)
    return re.sub(r"([\\'\[\],;])", r"\\\1", once)
