"""The ``video`` operation's ``thumbnails`` and ``preview`` actions with the real FFmpeg:
thumbnails spaced over the video, a black opening passed over when ``smart``, the
contact sheet's grid, animated previews opened and their frames counted."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from docworker.errors import InvalidParameter, UnsupportedFormat
from docworker.operations import get_operation, validate_params
from docworker.operations.video_thumbs import clock
from tests.videos import ffmpeg, make_tone, needs_ffmpeg, run_operation, test_video

__all__ = ["test_video"]
pytestmark = needs_ffmpeg
OPERATION = get_operation("video")


run = functools.partial(run_operation, "video")


@pytest.fixture(scope="module")
def fade_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s at 25 fps: black until 1.2 s, then testsrc2."""
    path = tmp_path_factory.mktemp("thumbs") / "fade-in.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=320x240:r=25:d=1.2",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=2.8",
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        str(path),
    )
    return path


def brightness(path: Path) -> float:
    with Image.open(path) as image:
        return float(ImageStat.Stat(image.convert("L")).mean[0])


def test_thumbnails_are_spaced_and_pass_over_black(fade_in: Path, tmp_path: Path) -> None:
    # Two thumbnails over 4 s: at 1 s and 3 s. At 1 s the video is still black.
    plain = run(fade_in, tmp_path / "plain", action="thumbnails", count=2, smart=False)
    assert [t["time"] for t in plain.payload["thumbnails"]] == [1.0, 3.0]
    assert brightness(plain.artifacts[0].path) < 10
    smart = run(fade_in, tmp_path / "smart", action="thumbnails", count=2, width=160)
    first, second = smart.payload["thumbnails"]
    assert 1.2 <= first["time"] <= 1.5 and not first["black"]
    assert 2.5 <= second["time"] <= 3.5
    assert brightness(smart.artifacts[0].path) > 40
    names = [artifact.name for artifact in smart.artifacts]
    assert names == ["thumb-001.jpeg", "thumb-002.jpeg", "sheet.jpeg"]
    with Image.open(smart.artifacts[0].path) as thumb:
        assert thumb.size == (160, 120)
    # The sheet: two columns of 160 px thumbnails, 6 px apart, one row with its labels.
    with Image.open(smart.artifacts[2].path) as sheet:
        assert sheet.size == (2 * 160 + 3 * 6, 120 + 20 + 2 * 6)


def test_an_all_black_window_is_said_to_be_black(fade_in: Path, tmp_path: Path) -> None:
    result = run(fade_in, tmp_path, action="thumbnails", count=1, end="1", sheet=False)
    (only,) = result.payload["thumbnails"]
    assert only["black"] and "sheet" not in result.payload
    assert [artifact.name for artifact in result.artifacts] == ["thumb-001.jpeg"]


def test_a_sheet_of_many_in_the_columns_asked(test_video: Path, tmp_path: Path) -> None:
    result = run(
        test_video, tmp_path, action="thumbnails", count=7, columns=3, width=64, format="png"
    )
    assert len(result.payload["thumbnails"]) == 7
    with Image.open(result.artifacts[-1].path) as sheet:
        assert sheet.format == "PNG" and sheet.size == (3 * 64 + 4 * 6, 3 * (48 + 20) + 4 * 6)


@pytest.mark.parametrize("fmt", ["webp", "gif"])
def test_previews_are_animated(test_video: Path, tmp_path: Path, fmt: str) -> None:
    result = run(test_video, tmp_path, action="preview", format=fmt, duration="2", width=160)
    (artifact,) = result.artifacts
    assert artifact.name == f"preview.{fmt}"
    with Image.open(artifact.path) as image:
        assert image.size == (160, 120)
        assert getattr(image, "is_animated", False)
        assert image.n_frames == pytest.approx(20, abs=1)  # 2 s at 10 frames a second
    output = result.payload["output"]
    assert output["start"] == pytest.approx(0.4) and output["duration"] == 2.0


def test_errors(tmp_path: Path, test_video: Path) -> None:
    sound = tmp_path / "tone.wav"
    make_tone(sound)
    with pytest.raises(UnsupportedFormat, match="no video"):
        run(sound, tmp_path / "s", action="thumbnails")
    with pytest.raises(InvalidParameter, match="at most"):
        run(test_video, tmp_path / "p", action="preview", duration="30")
    for params, name in [
        ({"action": "preview", "format": "png"}, "format"),
        ({"action": "thumbnails", "count": 0}, "count"),
        ({"action": "thumbnails", "columns": 50}, "columns"),
    ]:
        with pytest.raises(InvalidParameter) as refused:
            validate_params(OPERATION, params)
        assert refused.value.fields["parameter"] == name, params


def test_clock() -> None:
    assert [clock(s) for s in (0, 1.24, 61.0, 3725.5)] == [
        "0:00.0",
        "0:01.2",
        "1:01.0",
        "1:02:05.5",
    ]
