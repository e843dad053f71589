"""A long video's scenes and thumbnails found in time ranges on several workers at once
(:class:`~docworker.operations.base.Splittable`), and the parts merged into the result
one job would have made.

- **thumbnails**: the ``count`` thumbnails are dealt out to the parts in runs of
  consecutive ones, each part covering exactly the share of the stretch its run spaces
  over, so every thumbnail falls where the whole job would have taken it; the merge
  numbers them through and draws the contact sheet.
- **scenes**: each part finds the cuts in its range; the merge lists the scenes in
  order and joins the scene cut at each range boundary (a boundary is not a cut). A cut
  within a few frames of a boundary can be missed: the detector weighs each frame
  against the frames around it, which a part does not see across its edge.

A stretch is split when it lasts ``ffmpeg.split_min_seconds`` or more, into ranges of
at least half that length, at most the executor's parts.
"""

from __future__ import annotations

import itertools
import math
import shutil
from typing import Any

from PIL import Image

from docworker.engines.ffmpeg import Ffmpeg
from docworker.errors import DocworkerError, ProcessingFailed, error_from_dict
from docworker.operations.base import (
    Artifact,
    InputFile,
    OperationContext,
    PartResult,
    Result,
    SplitPart,
    SplitPlan,
)
from docworker.operations.media import (
    check_output,
    covered_seconds,
    media_mime,
    probe_input,
    span_of,
)
from docworker.operations.ocr_parts import failed_parts
from docworker.operations.video_params import VideoAction, VideoParams
from docworker.operations.video_thumbs import MIME, Pick, draw_sheet

#: The actions that split.
SPLIT_ACTIONS = frozenset({VideoAction.SCENES, VideoAction.THUMBNAILS})


def split(
    ctx: OperationContext, source: InputFile, params: VideoParams, plan: SplitPlan
) -> list[SplitPart] | None:
    minimum = ctx.settings.ffmpeg.split_min_seconds
    if params.action not in SPLIT_ACTIONS or minimum <= 0 or source.others:
        return None
    engine = Ffmpeg(ctx.settings.ffmpeg, ctx.settings.sandbox)
    try:
        probe = probe_input(engine, source, media_mime(source, "video"))
        span = span_of(params.start, params.duration, params.end, probe)
    except DocworkerError:  # the job runs whole, and says what is wrong itself
        return None
    seconds = covered_seconds(span, probe)
    if seconds is None or seconds < minimum or seconds > ctx.settings.ffmpeg.max_duration:
        return None
    count = min(plan.parts, int(seconds // (minimum / 2)))
    if count < 2:
        return None
    if params.action is VideoAction.THUMBNAILS:
        return _thumbnail_parts(params, span.start, seconds, count)
    edges = [span.start + seconds * index / count for index in range(count + 1)]
    return [
        SplitPart({"start": round(a, 6), "end": round(b, 6), "duration": None})
        for a, b in itertools.pairwise(edges)
    ]


def _thumbnail_parts(
    params: VideoParams, start: float, seconds: float, count: int
) -> list[SplitPart] | None:
    total = params.count
    groups = min(count, total)
    if groups < 2:
        return None
    size, extra = divmod(total, groups)
    parts = []
    first = 0
    for index in range(groups):
        last = first + size + (1 if index < extra else 0)
        parts.append(
            SplitPart(
                {
                    "start": round(start + seconds * first / total, 6),
                    "end": round(start + seconds * last / total, 6),
                    "duration": None,
                    "count": last - first,
                    "sheet": False,
                }
            )
        )
        first = last
    return parts


def merge(
    ctx: OperationContext, source: InputFile, params: VideoParams, parts: list[PartResult]
) -> Result:
    failed_parts(parts)
    broken = next((part for part in parts if not part.ok), None)
    if broken is not None:
        # A list of scenes or thumbnails with a hole is no answer: the job fails as
        # the part did.
        if broken.error:
            raise error_from_dict(broken.error)
        raise ProcessingFailed(f"part {broken.part + 1} of the video ended {broken.status}")
    if params.action is VideoAction.THUMBNAILS:
        return _merge_thumbnails(ctx, params, parts)
    return _merge_scenes(ctx, params, parts)


def _merge_thumbnails(
    ctx: OperationContext, params: VideoParams, parts: list[PartResult]
) -> Result:
    fmt = params.output_format
    listed: list[dict[str, Any]] = []
    artifacts: list[Artifact] = []
    picks: list[Pick] = []
    first = parts[0].payload or {}
    for part in parts:
        for entry in (part.payload or {}).get("thumbnails", []):
            name = f"thumb-{len(listed) + 1:03d}.{fmt}"
            target = ctx.artifact_path(name)
            shutil.copyfile(part.artifacts[entry["name"]], target)
            artifacts.append(Artifact(name, target, MIME[fmt]))
            listed.append({**entry, "name": name})
            if params.sheet:
                with Image.open(target) as image:
                    picks.append(Pick(entry["time"], image.convert("RGB"), entry["black"]))
    payload: dict[str, Any] = {
        "action": "thumbnails",
        "input": first.get("input"),
        "width": first.get("width"),
        "height": first.get("height"),
        "thumbnails": listed,
        "parts": len(parts),
    }
    if params.sheet and picks:
        sheet = draw_sheet(ctx, picks, params, fmt)
        check_output(ctx, sheet)
        artifacts.append(Artifact(sheet.name, sheet, MIME[fmt]))
        payload["sheet"] = sheet.name
    return Result(payload=payload, artifacts=artifacts)


def _merge_scenes(ctx: OperationContext, params: VideoParams, parts: list[PartResult]) -> Result:
    scenes: list[dict[str, Any]] = []
    sources: list[tuple[PartResult, dict[str, Any]]] = []
    first = parts[0].payload or {}
    fps = float(first.get("fps") or 25.0)
    frames = 0
    for part in parts:
        payload = part.payload or {}
        frames += int(payload.get("frames") or 0)
        for index, scene in enumerate(payload.get("scenes", [])):
            if (
                index == 0
                and scenes
                and math.isclose(scenes[-1]["end"], scene["start"], abs_tol=1.5 / fps)
            ):
                # Cut at the range boundary, not in the video: one scene.
                joined = scenes[-1]
                keep_first = joined["duration"] >= scene["duration"]
                joined["end"] = scene["end"]
                joined["frames"] += scene["frames"]
                joined["duration"] = round(joined["end"] - joined["start"], 3)
                if not keep_first:
                    joined["keyframe"] = scene.get("keyframe")
                    sources[-1] = (part, joined)
                continue
            scenes.append(dict(scene))
            sources.append((part, scenes[-1]))
    artifacts: list[Artifact] = []
    fmt = params.output_format
    for number, (part, scene) in enumerate(sources, start=1):
        scene["index"] = number
        keyframe = scene.get("keyframe")
        if keyframe is None or "keyframe" not in scene:
            continue
        name = f"scene-{number:03d}.{fmt}"
        found = part.artifacts.get(keyframe["name"])
        if found is None:
            scene["keyframe"] = None
            continue
        target = ctx.artifact_path(name)
        shutil.copyfile(found, target)
        scene["keyframe"] = {**keyframe, "name": name}
        artifacts.append(Artifact(name, target, MIME[fmt]))
    payload = {
        "action": "scenes",
        "input": first.get("input"),
        "start": first.get("start"),
        "fps": first.get("fps"),
        "frames": frames,
        "count": len(scenes),
        "scenes": scenes,
        "parts": len(parts),
    }
    return Result(payload=payload, artifacts=artifacts)
