"""The ``video`` operation's ``thumbnails`` and ``preview`` actions.

``thumbnails``: ``count`` frames spaced evenly over the stretch (each at the middle of
its share of it), as images, and a contact sheet of them with their times. With
``smart`` (the default) each is chosen among the frames of a short window around its
time: black or nearly flat frames (a fade, a title card's background) are passed over,
and of the others the sharpest wins (the variance of the Laplacian of its luminance), so
a thumbnail is neither a fade nor a motion blur. Each window is one guarded FFmpeg run
that seeks to it and decodes a few frames at the thumbnail's size (never the whole
video); the images and the sheet are written here with Pillow.

``preview``: a few seconds as an animated WebP or GIF (one FFmpeg run; the GIF with a
palette made for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from docworker.engines.ffmpeg import Ffmpeg, Probe
from docworker.errors import InvalidParameter, LimitExceeded, UnsupportedFormat
from docworker.operations.base import Artifact, InputFile, OperationContext, Result
from docworker.operations.media import (
    check_output,
    covered_seconds,
    ffmpeg_timeout,
    fitted_size,
    span_of,
)
from docworker.operations.video_params import VideoParams

#: Thumbnail width when neither width nor height is asked for.
DEFAULT_WIDTH = 320
#: The window searched around each thumbnail's time (seconds) and the frames read in it.
WINDOW = 1.0
CANDIDATES = 5
#: A frame whose mean luminance (0–255) is under this is black; one whose luminance
#: spreads less than :data:`FLAT_SPREAD` (standard deviation) is flat.
BLACK_LUMA = 24.0
FLAT_SPREAD = 6.0
#: The preview's frame rate and length when not asked for, and its longest length.
PREVIEW_FPS = 10
PREVIEW_SECONDS = 3.0
PREVIEW_MAX_SECONDS = 10.0
MIME = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_SHEET_GAP = 6
_LABEL_HEIGHT = 20


@dataclass(frozen=True)
class Pick:
    time: float
    image: Image.Image
    black: bool


def thumbnails(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    _need_video(probe)
    span = span_of(params.start, params.duration, params.end, probe)
    seconds = covered_seconds(span, probe)
    if seconds is None:
        raise UnsupportedFormat(
            probe.container or "video", "the file states no duration to space thumbnails over"
        )
    count = params.count
    width, height = _picture_size(ctx, probe, params)
    fmt = params.output_format
    picks: list[Pick] = []
    for index in range(count):
        at = span.start + seconds * (index + 0.5) / count
        picks.append(_pick(ctx, engine, source, params, at, (width, height), probe))
        ctx.progress(0.9 * (index + 1) / count, f"{index + 1} of {count} thumbnails")
    artifacts: list[Artifact] = []
    listed: list[dict[str, Any]] = []
    for index, pick in enumerate(picks, start=1):
        name = f"thumb-{index:03d}.{fmt}"
        path = ctx.artifact_path(name)
        _save(pick.image, path, fmt, params.quality)
        artifacts.append(Artifact(name, path, MIME[fmt]))
        listed.append({"name": name, "time": round(pick.time, 3), "black": pick.black})
    payload: dict[str, Any] = {
        "action": "thumbnails",
        "input": probe.as_dict(),
        "width": width,
        "height": height,
        "thumbnails": listed,
    }
    if params.sheet:
        sheet = draw_sheet(ctx, picks, params, fmt)
        check_output(ctx, sheet)
        artifacts.append(Artifact(sheet.name, sheet, MIME[fmt]))
        payload["sheet"] = sheet.name
    return Result(payload=payload, artifacts=artifacts)


def _picture_size(ctx: OperationContext, probe: Probe, params: VideoParams) -> tuple[int, int]:
    """The size of thumbnails and previews: ``width``/``height``, else 320 px wide."""
    width = params.width or (None if params.height else DEFAULT_WIDTH)
    return fitted_size(ctx, probe, width, params.height, even=True)


def _need_video(probe: Probe) -> None:
    if probe.video is None:
        raise UnsupportedFormat(
            probe.container or "audio", "the file has no video stream to take frames from"
        )


def _pick(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    params: VideoParams,
    at: float,
    size: tuple[int, int],
    probe: Probe,
) -> Pick:
    """The frame shown for time ``at``: with ``smart``, the best of the window centred
    on it (within the file); else the frame at ``at``."""
    width, height = size
    window = min(WINDOW, probe.duration or WINDOW) if params.smart else 0.0
    begin = max(at - window / 2, 0.0)
    if probe.duration is not None:
        begin = min(begin, max(probe.duration - max(window, 0.05), 0.0))
    frames: list[tuple[float, Image.Image]] = []
    rate = CANDIDATES / window if window else None

    def take(number: int, data: bytes) -> None:
        pixels = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        time = begin + (number / rate if rate else 0.0)
        frames.append((time, Image.fromarray(pixels[:, :, ::-1])))

    filters = f"scale={width}:{height}:flags=bicubic,setsar=1"
    args = [*engine.input_args(source.path, start=begin), "-map", "0:V:0", "-an", "-sn", "-dn"]
    if rate:
        args += ["-t", f"{window:.6f}", "-vf", f"fps={rate:.6f},{filters}"]
    else:
        args += ["-frames:v", "1", "-vf", filters]
    engine.frames(args, size=size, on_frame=take, timeout=ffmpeg_timeout(ctx))
    if not frames:
        raise InvalidParameter("start", f"there is no frame at {at:g} s")
    scored = [(time, image, *_score(image)) for time, image in frames]
    usable = [entry for entry in scored if not entry[2]]
    if usable:
        time, image, _, _ = max(usable, key=lambda entry: entry[3])
        return Pick(time, image, black=False)
    time, image, _, _ = max(scored, key=lambda entry: entry[3])
    return Pick(time, image, black=True)


def _score(image: Image.Image) -> tuple[bool, float]:
    """Whether the frame is black or flat, and how sharp it is: the variance of the
    Laplacian of its luminance (a blurred frame has weak edges)."""
    luma = np.asarray(image.convert("L"), dtype=np.float32)
    dull = float(luma.mean()) < BLACK_LUMA or float(luma.std()) < FLAT_SPREAD
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return dull, 0.0
    laplacian = (
        luma[1:-1, :-2] + luma[1:-1, 2:] + luma[:-2, 1:-1] + luma[2:, 1:-1] - 4 * luma[1:-1, 1:-1]
    )
    return dull, float(laplacian.var())


def _save(image: Image.Image, path: Path, fmt: str, quality: int | None) -> None:
    options: dict[str, Any] = {}
    if fmt in {"jpeg", "webp"}:
        options["quality"] = quality or 85
    image.save(path, _PIL_FORMAT[fmt], **options)


def draw_sheet(ctx: OperationContext, picks: list[Pick], params: VideoParams, fmt: str) -> Path:
    """The thumbnails in a grid (``columns``, else as square as it goes), each over its
    time."""
    columns = params.columns or math.ceil(math.sqrt(len(picks)))
    rows = math.ceil(len(picks) / columns)
    width, height = picks[0].image.size
    cell_height = height + _LABEL_HEIGHT
    size = (
        columns * width + (columns + 1) * _SHEET_GAP,
        rows * cell_height + (rows + 1) * _SHEET_GAP,
    )
    if size[0] * size[1] > ctx.settings.ffmpeg.max_pixels:
        raise LimitExceeded(
            "contact sheet pixels", size[0] * size[1], ctx.settings.ffmpeg.max_pixels
        )
    sheet = Image.new("RGB", size, (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for index, pick in enumerate(picks):
        row, column = divmod(index, columns)
        left = _SHEET_GAP + column * (width + _SHEET_GAP)
        top = _SHEET_GAP + row * (cell_height + _SHEET_GAP)
        sheet.paste(pick.image, (left, top))
        draw.text((left + 2, top + height + 3), clock(pick.time), fill=(235, 235, 235), font=font)
    path = ctx.artifact_path(f"sheet.{fmt}")
    _save(sheet, path, fmt, params.quality)
    return path


def clock(seconds: float) -> str:
    """``H:MM:SS.s`` (or ``M:SS.s`` under an hour)."""
    tenths = round(seconds * 10)
    hours, rest = divmod(tenths, 36_000)
    minutes, rest = divmod(rest, 600)
    text = (
        f"{minutes:d}:{rest / 10:04.1f}"
        if not hours
        else f"{hours}:{minutes:02d}:{rest / 10:04.1f}"
    )
    return text


# -- preview ------------------------------------------------------------------------------


def preview(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    _need_video(probe)
    duration = probe.duration
    length = params.duration or PREVIEW_SECONDS
    if length > PREVIEW_MAX_SECONDS:
        raise InvalidParameter("duration", f"a preview lasts at most {PREVIEW_MAX_SECONDS:g} s")
    if params.start is not None:
        begin = params.start
    elif duration is not None:
        begin = max(min(duration * (params.percent or 10.0) / 100, duration - length), 0.0)
    else:
        begin = 0.0
    if duration is not None and begin >= duration:
        raise InvalidParameter("start", f"{begin:g} s is past the end of the file ({duration:g} s)")
    width, height = _picture_size(ctx, probe, params)
    fmt = params.output_format
    output = ctx.artifact_path(f"preview.{fmt}")
    scale = f"fps={PREVIEW_FPS},scale={width}:{height}:flags=bicubic,setsar=1"
    args = [*engine.input_args(source.path, start=begin), "-t", f"{length:.6f}"]
    args += ["-map", "0:V:0", "-an", "-sn", "-dn", "-map_metadata", "-1"]
    if fmt == "gif":
        graph = f"[0:V:0]{scale},split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse"
        args = [*args[: args.index("-map")], "-filter_complex", graph, "-an", "-sn", "-dn"]
        args += ["-loop", "0", "-f", "gif", f"file:{output}"]
    else:
        quality = params.quality or 75
        args += ["-vf", scale, "-c:v", "libwebp", "-quality", str(quality), "-loop", "0"]
        args += ["-f", "webp", f"file:{output}"]
    engine.transcode(
        args, expected_seconds=length, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    check_output(ctx, output)
    result = {
        "format": fmt,
        "mime": MIME[fmt],
        "width": width,
        "height": height,
        "start": round(begin, 3),
        "duration": length,
        "fps": PREVIEW_FPS,
        "size": output.stat().st_size,
    }
    payload = {"action": "preview", "input": probe.as_dict(), "output": result}
    return Result(payload=payload, artifacts=[Artifact(output.name, output, MIME[fmt])])
