"""The ``video`` operation's ``analytics`` action: one report on what a video holds.

- **scenes, motion, black and frozen stretches** from one pass over small frames (the
  pass :mod:`~docworker.operations.video_scenes` makes for the scenes): motion is the
  mean difference of luminance from one frame to the next (0–255); a frame is black
  when its mean luminance is under :data:`BLACK_LUMA`; it is frozen when it differs
  from the one before by less than :data:`FROZEN_CHANGE`. Stretches shorter than
  :data:`MIN_BLACK` and :data:`MIN_FROZEN` are not reported.
- **sound**: loudness, silences and the share of sound of the first audio stream
  (the ``audio`` operation's ``analyze``), when there is one.
- **text seen**: each scene's keyframe read by the OCR engine (Tesseract, in
  ``ocr.language``), the first :data:`MAX_OCR_KEYFRAMES`.
- **timeline**: ``timeline.png``, the scenes, the motion curve, black and frozen
  stretches and the silences on one time axis.
"""

from __future__ import annotations

import itertools
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from docworker.engines.ffmpeg import Ffmpeg, Probe
from docworker.engines.ocr import recognize
from docworker.operations.base import Artifact, InputFile, OperationContext, Result
from docworker.operations.media import Span
from docworker.operations.video_params import VideoParams
from docworker.operations.video_scenes import keyframes, read_frames, scene_list, stretch_of

BLACK_LUMA = 24.0
FROZEN_CHANGE = 0.5
MIN_BLACK = 0.5
MIN_FROZEN = 2.0
#: Text read on a keyframe with less confidence than this is not reported.
MIN_TEXT_CONFIDENCE = 0.6
#: Keyframes read for text (the scenes are all reported).
MAX_OCR_KEYFRAMES = 50
#: Page segmentation for text on pictures: sparse text, in no particular order.
_SPARSE_TEXT = 11
_CHART_WIDTH = 1200
_ROW = 34


def analytics(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    stretch = stretch_of(ctx, engine, source, params, probe, "to analyse")
    fps, head, seconds = stretch.fps, stretch.head, stretch.seconds
    span = Span(stretch.start, seconds)
    reading = read_frames(
        ctx, engine, head, fps, stretch.size, params, stretch.expected, measure=True
    )
    length = reading.frames / fps
    scenes = scene_list(reading, fps, span.start)
    artifacts: list[Artifact] = []
    if params.keyframes:
        artifacts = keyframes(ctx, engine, head, fps, params, probe, scenes)
    texts = _texts(ctx, scenes, artifacts)
    sound = _sound(ctx, engine, source, probe, span, seconds)
    black = _stretches(fps, span.start, [v < BLACK_LUMA for v in reading.luma], MIN_BLACK)
    frozen_flags = [i > 0 and v < FROZEN_CHANGE for i, v in enumerate(reading.change)]
    frozen = _stretches(fps, span.start, frozen_flags, MIN_FROZEN)
    per_second = _per_second(reading.change, fps)
    moving = reading.change[1:] or [0.0]
    report: dict[str, Any] = {
        "action": "analytics",
        "input": probe.as_dict(),
        "start": span.start,
        "duration": round(length, 3),
        "fps": round(fps, 3),
        "scenes": {
            "count": len(scenes),
            "mean_duration": round(length / len(scenes), 3) if scenes else None,
            "list": scenes,
        },
        "motion": {
            "mean": round(sum(moving) / len(moving), 3),
            "max": round(max(moving), 3),
            "per_second": per_second,
        },
        "black": black,
        "frozen": frozen,
        "sound": sound,
        "text": texts,
    }
    chart = ctx.artifact_path("timeline.png")
    _timeline(report, span.start, length).save(chart, "PNG")
    report["timeline"] = chart.name
    artifacts.insert(0, Artifact(chart.name, chart, "image/png"))
    return Result(payload=report, artifacts=artifacts)


def _stretches(
    fps: float, start: float, flags: list[bool], minimum: float
) -> list[dict[str, float]]:
    """The runs of flagged frames lasting ``minimum`` seconds or more, in file time."""
    found = []
    frame = 0
    for flagged, run in itertools.groupby(flags):
        count = len(list(run))
        if flagged and count / fps >= minimum:
            found.append(
                {
                    "start": round(start + frame / fps, 3),
                    "end": round(start + (frame + count) / fps, 3),
                    "duration": round(count / fps, 3),
                }
            )
        frame += count
    return found


def _per_second(change: list[float], fps: float) -> list[float]:
    """The mean motion of each second (the curve of the timeline)."""
    step = max(1, round(fps))
    return [
        round(sum(chunk) / len(chunk), 2)
        for chunk in (change[index : index + step] for index in range(0, len(change), step))
        if chunk
    ]


def _texts(
    ctx: OperationContext, scenes: list[dict[str, Any]], artifacts: list[Artifact]
) -> list[dict[str, Any]]:
    """The text read on each scene's keyframe (where any was read)."""
    by_name = {artifact.name: artifact for artifact in artifacts}
    found = []
    for scene in scenes[:MAX_OCR_KEYFRAMES]:
        keyframe = scene.get("keyframe")
        artifact = by_name.get(keyframe["name"]) if keyframe else None
        if keyframe is None or artifact is None:
            continue
        with Image.open(artifact.path) as image:
            page = recognize(
                image.convert("RGB"), languages=ctx.settings.ocr.language, psm=_SPARSE_TEXT
            )
        # Pictures are not pages: what Tesseract reads in a landscape is noise, read
        # with a low confidence; a caption or a title card reads well.
        kept = [p for p in page.paragraphs if p.confidence >= MIN_TEXT_CONFIDENCE]
        text = "\n".join(p.text.strip() for p in kept if sum(c.isalnum() for c in p.text) >= 3)
        if text:
            found.append(
                {
                    "scene": scene["index"],
                    "time": keyframe["time"],
                    "text": text,
                    "confidence": round(sum(p.confidence for p in kept) / len(kept), 3),
                }
            )
    return found


def _sound(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    probe: Probe,
    span: Span,
    seconds: float | None,
) -> dict[str, Any] | None:
    if probe.audio is None:
        return None
    # Imported here: the audio operation imports the speech engine's module.
    from docworker.operations.audio import measure_sound

    return measure_sound(ctx, engine, source, span, seconds)


# -- the timeline chart -------------------------------------------------------------------


def _timeline(report: dict[str, Any], start: float, length: float) -> Image.Image:
    """Rows on one time axis: scenes, motion, black, frozen, silence."""
    rows = ["scenes", "motion", "black", "frozen", "silence"]
    label_width = 70
    width = _CHART_WIDTH
    height = _ROW * len(rows) + 28
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    plot = width - label_width - 10
    span = max(length, 1e-6)

    def x(time: float) -> float:
        return label_width + plot * min(max(time - start, 0.0), span) / span

    for row, name in enumerate(rows):
        top = row * _ROW + 4
        draw.text((4, top + 10), name, fill=(40, 40, 40), font=font)
        draw.rectangle((label_width, top, width - 10, top + _ROW - 8), outline=(220, 220, 220))
    colours = [(86, 148, 204), (242, 160, 80)]
    for index, scene in enumerate(report["scenes"]["list"]):
        draw.rectangle((x(scene["start"]), 5, x(scene["end"]), _ROW - 5), fill=colours[index % 2])
    curve = report["motion"]["per_second"]
    top = _ROW + 4
    if curve:
        peak = max(*curve, 1.0)
        points = [
            (x(start + (second + 0.5)), top + (_ROW - 8) * (1 - value / peak))
            for second, value in enumerate(curve)
        ]
        if len(points) > 1:
            draw.line(points, fill=(60, 60, 60), width=2)
    for row, stretches in ((2, report["black"]), (3, report["frozen"])):
        top = row * _ROW + 4
        for stretch in stretches:
            draw.rectangle(
                (x(stretch["start"]), top, x(stretch["end"]), top + _ROW - 8), fill=(50, 50, 50)
            )
    sound = report["sound"]
    top = 4 * _ROW + 4
    if sound is not None:
        for silence in sound["silence"]["segments"]:
            draw.rectangle(
                (x(silence["start"]), top, x(silence["end"]), top + _ROW - 8), fill=(150, 150, 150)
            )
    axis = len(rows) * _ROW + 8
    for tick in range(6):
        time = start + span * tick / 5
        label = f"{time:.1f}s"
        left = x(time) - (draw.textlength(label, font=font) if tick == 5 else 10)
        draw.text((left, axis), label, fill=(80, 80, 80), font=font)
    return image
