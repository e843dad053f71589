"""A long video's scenes and thumbnails split into time ranges and merged back: the same
result as one job, on a video with known cuts (parts run here one after another, as the
executor's workers would run them side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from docworker.config import FfmpegSettings, load_settings
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, OperationContext, PartResult, SplitPlan
from tests.unit.operations.test_video_scenes import shots
from tests.videos import needs_ffmpeg

__all__ = ["shots"]
pytestmark = needs_ffmpeg
OPERATION = get_operation("video")
PLAN = SplitPlan(parts=4, min_pages=1)


def context(folder: Path, split_min_seconds: float = 4.0) -> OperationContext:
    folder.mkdir(parents=True, exist_ok=True)
    ffmpeg = FfmpegSettings(split_min_seconds=split_min_seconds)
    return OperationContext(workdir=folder, settings=load_settings(ffmpeg=ffmpeg))


def split_and_merge(path: Path, folder: Path, **raw: Any) -> tuple[list[Any], Any]:
    params = validate_params(OPERATION, raw)
    source = InputFile(path, path.name)
    parts = OPERATION.split(context(folder / "split"), source, params, PLAN)
    assert parts is not None
    results = []
    for number, part in enumerate(parts):
        merged = {**params.model_dump(), **part.params}
        ran = OPERATION.run(
            context(folder / f"part{number}"), source, validate_params(OPERATION, merged)
        )
        artifacts = {artifact.name: artifact.path for artifact in ran.artifacts}
        results.append(PartResult(number, part.params, "succeeded", ran.payload, artifacts))
    whole = OPERATION.merge(context(folder / "merge"), source, params, results)
    return parts, whole


def test_scenes_in_parts_are_the_scenes_of_the_whole(shots: Path, tmp_path: Path) -> None:
    parts, merged = split_and_merge(shots, tmp_path, action="scenes", width=160)
    # 5.6 s in two ranges of 2.8 s: the cut at 2.8 s is the boundary, not a scene's.
    assert [(p.params["start"], p.params["end"]) for p in parts] == [(0.0, 2.8), (2.8, 5.6)]
    spans = [(s["start"], s["end"]) for s in merged.payload["scenes"]]
    assert spans == [(0.0, 2.0), (2.0, 3.6), (3.6, 5.6)]
    assert merged.payload["count"] == 3 and merged.payload["frames"] == 140
    names = [artifact.name for artifact in merged.artifacts]
    assert names == ["scene-001.jpeg", "scene-002.jpeg", "scene-003.jpeg"]
    assert [s["keyframe"]["name"] for s in merged.payload["scenes"]] == names


def test_thumbnails_in_parts_fall_where_the_whole_takes_them(shots: Path, tmp_path: Path) -> None:
    raw = {"action": "thumbnails", "count": 5, "width": 80, "smart": False}
    whole = OPERATION.run(
        context(tmp_path / "whole"), InputFile(shots, shots.name), validate_params(OPERATION, raw)
    )
    parts, merged = split_and_merge(shots, tmp_path, **raw)
    assert len(parts) == 2 and [p.params["count"] for p in parts] == [3, 2]
    times = [t["time"] for t in merged.payload["thumbnails"]]
    assert times == [t["time"] for t in whole.payload["thumbnails"]]
    assert [t["name"] for t in merged.payload["thumbnails"]] == [
        f"thumb-00{i}.jpeg" for i in range(1, 6)
    ]
    with Image.open(merged.artifacts[-1].path) as sheet:
        assert merged.artifacts[-1].name == "sheet.jpeg"
        assert sheet.size == (3 * 80 + 4 * 6, 2 * (60 + 20) + 3 * 6)


def test_short_stretches_and_other_actions_run_whole(shots: Path, tmp_path: Path) -> None:
    source = InputFile(shots, shots.name)
    long_enough = context(tmp_path / "a", split_min_seconds=60)
    assert (
        OPERATION.split(long_enough, source, validate_params(OPERATION, {"action": "scenes"}), PLAN)
        is None
    )
    ctx = context(tmp_path / "b")
    assert OPERATION.split(ctx, source, validate_params(OPERATION, {"format": "mp4"}), PLAN) is None
    never = context(tmp_path / "c", split_min_seconds=0)
    assert (
        OPERATION.split(never, source, validate_params(OPERATION, {"action": "scenes"}), PLAN)
        is None
    )
