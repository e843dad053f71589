"""The ``video`` operation's ``analytics`` with the real FFmpeg, PySceneDetect and
Tesseract, on a video made with known parts: a black opening, a still title card, a
moving test pattern, a still grey end, and a tone with a silence."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from PIL import Image

from docworker.errors import UnsupportedFormat
from docworker.operations import get_operation
from tests.videos import ffmpeg, make_tone, needs_ffmpeg, run_operation

pytestmark = needs_ffmpeg
OPERATION = get_operation("video")
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


run = functools.partial(run_operation, "video")


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s: black to 1.5 s, a title card to 4.5 s, testsrc2 to 7.5 s, grey to 10 s; a
    440 Hz tone, silent from 5 s to 7 s."""
    if not FONT.is_file():
        pytest.skip("DejaVu fonts are not installed")
    title = (
        f"color=c=white:s=640x360:r=25:d=3,drawtext=fontfile={FONT}:text='QUARTERLY RESULTS'"
        ":fontsize=48:fontcolor=black:x=(w-tw)/2:y=(h-th)/2"
    )
    path = tmp_path_factory.mktemp("analytics") / "parts.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=640x360:r=25:d=1.5",
        "-f",
        "lavfi",
        "-i",
        title,
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=25:d=3",
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:s=640x360:r=25:d=2.5",
        "-f",
        "lavfi",
        "-i",
        "aevalsrc='if(between(t,5,7),0,0.3*sin(2*PI*440*t))':s=48000:d=10",
        "-filter_complex",
        "[0:v][1:v][2:v][3:v]concat=n=4:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        "-map",
        "4:a",
        "-shortest",
        str(path),
    )
    return path


def test_the_report_finds_each_part(parts: Path, tmp_path: Path) -> None:
    result = run(parts, tmp_path, action="analytics", width=320)
    report = result.payload
    assert report["scenes"]["count"] == 4
    assert [s["start"] for s in report["scenes"]["list"]] == [0.0, 1.52, 4.52, 7.52]
    (black,) = report["black"]
    assert black["start"] == 0.0 and black["end"] == pytest.approx(1.5, abs=0.05)
    frozen = [(f["start"], f["end"]) for f in report["frozen"]]
    assert len(frozen) == 2
    assert frozen[0] == pytest.approx((1.5, 4.5), abs=0.1)
    assert frozen[1] == pytest.approx((7.5, 10.0), abs=0.1)
    # Motion: none on the still parts, some on the moving pattern.
    curve = report["motion"]["per_second"]
    assert curve[2] == 0.0 and curve[5] > 1.0
    sound = report["sound"]
    (silence,) = sound["silence"]["segments"]
    assert (silence["start"], silence["end"]) == pytest.approx((5.0, 7.0), abs=0.05)
    assert sound["sound_share"] == pytest.approx(0.8, abs=0.02)
    (text,) = report["text"]
    assert text["scene"] == 2 and text["text"] == "QUARTERLY RESULTS"
    names = [artifact.name for artifact in result.artifacts]
    assert names[0] == "timeline.png" and len(names) == 5
    with Image.open(result.artifacts[0].path) as chart:
        assert chart.size[0] == 1200


def test_without_keyframes_and_without_video(parts: Path, tmp_path: Path) -> None:
    quick = run(parts, tmp_path / "q", action="analytics", keyframes=False)
    assert quick.payload["text"] == [] and len(quick.artifacts) == 1
    sound = tmp_path / "tone.wav"
    make_tone(sound)
    with pytest.raises(UnsupportedFormat, match="no video"):
        run(sound, tmp_path / "s", action="analytics")
