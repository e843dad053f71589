"""The ``video`` operation's ``scenes`` action with the real FFmpeg and PySceneDetect: a
video made of three shots with known cut times gives those cuts to the frame, and each
scene's keyframe shows its shot."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from PIL import Image

from docworker.errors import InvalidParameter, UnsupportedFormat
from docworker.operations import get_operation, validate_params
from tests.videos import close_to, ffmpeg, make_tone, needs_ffmpeg, run_operation

pytestmark = needs_ffmpeg
OPERATION = get_operation("video")
FPS = 25
#: The shots: FFmpeg sources and how long each lasts; the cuts fall at 2.0 s and 3.6 s.
SHOTS = (("testsrc2", 2.0), ("smptebars", 1.6), ("mandelbrot", 2.0))


run = functools.partial(run_operation, "video")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenes") / "shots.mp4"
    inputs: list[str] = []
    for source, seconds in SHOTS:
        inputs += ["-f", "lavfi", "-i", f"{source}=s=320x240:r={FPS},trim=duration={seconds}"]
    joined = "".join(f"[{index}:v]" for index in range(len(SHOTS)))
    ffmpeg(
        *inputs,
        "-filter_complex",
        f"{joined}concat=n={len(SHOTS)}:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        str(path),
    )
    return path


def test_cuts_are_found_at_their_frame(shots: Path, tmp_path: Path) -> None:
    result = run(shots, tmp_path, action="scenes", width=160)
    payload = result.payload
    assert (payload["fps"], payload["frames"], payload["count"]) == (FPS, 140, 3)
    spans = [(scene["start"], scene["end"]) for scene in payload["scenes"]]
    assert spans == [(0.0, 2.0), (2.0, 3.6), (3.6, 5.6)]
    assert [scene["frames"] for scene in payload["scenes"]] == [50, 40, 50]
    names = [artifact.name for artifact in result.artifacts]
    assert names == ["scene-001.jpeg", "scene-002.jpeg", "scene-003.jpeg"]
    assert [scene["keyframe"]["time"] for scene in payload["scenes"]] == [1.0, 2.8, 4.6]
    # The second shot's keyframe is SMPTE bars: grey at the left, blue at the right.
    with Image.open(result.artifacts[1].path) as image:
        assert image.size == (160, 120)
        rgb = image.convert("RGB")
        left = rgb.getpixel((6, 20))
        right = rgb.getpixel((153, 20))
    assert close_to(left, (191, 191, 191)) and close_to(right, (0, 0, 191))  # type: ignore[arg-type]


def test_a_stretch_reports_times_of_the_file(shots: Path, tmp_path: Path) -> None:
    payload = run(shots, tmp_path, action="scenes", start="1", end="5", keyframes=False).payload
    spans = [(scene["start"], scene["end"]) for scene in payload["scenes"]]
    assert spans == [(1.0, 2.0), (2.0, 3.6), (3.6, 5.0)]
    assert all("keyframe" not in scene for scene in payload["scenes"])


def test_scenes_shorter_than_the_minimum_are_merged(shots: Path, tmp_path: Path) -> None:
    payload = run(shots, tmp_path, action="scenes", min_scene="1.7", keyframes=False).payload
    # The 1.6 s shot is too short to stand alone: the cut that would end it is dropped.
    assert [(s["start"], s["end"]) for s in payload["scenes"]] == [(0.0, 2.0), (2.0, 5.6)]


def test_errors(tmp_path: Path) -> None:
    sound = tmp_path / "tone.wav"
    make_tone(sound)
    with pytest.raises(UnsupportedFormat, match="no video"):
        run(sound, tmp_path / "s", action="scenes")
    for params, name in [
        ({"action": "scenes", "format": "mp4"}, "format"),
        ({"action": "scenes", "threshold": 0.5}, "threshold"),
        ({"action": "scenes", "min_scene": "0"}, "min_scene"),
    ]:
        with pytest.raises(InvalidParameter) as refused:
            validate_params(OPERATION, params)
        assert refused.value.fields["parameter"] == name, params
