"""The ``video`` operation's ``subtitles`` action with the real FFmpeg: the corpus' SubRip
and WebVTT files muxed into a video come back out with the same cues and times."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from PIL import Image

from bench.scoring import corpus_root
from docworker.errors import InvalidParameter, UnsupportedFormat
from docworker.formats.text.subtitles import read_timed_text
from docworker.operations import get_operation, validate_params
from docworker.operations.base import Result
from tests.videos import ffmpeg, needs_ffmpeg, run_operation, test_video

__all__ = ["test_video"]
pytestmark = needs_ffmpeg
OPERATION = get_operation("video")
MEDIA = corpus_root() / "media"


run = functools.partial(run_operation, "video")


@pytest.fixture(scope="module")
def subtitled(tmp_path_factory: pytest.TempPathFactory, test_video: Path) -> Path:
    """The test video with two subtitle streams: the corpus' SubRip, then its WebVTT."""
    srt, vtt = MEDIA / "subtitles.srt", MEDIA / "subtitles-utf8.vtt"
    if not (srt.is_file() and vtt.is_file()):
        pytest.skip("test corpus not present")
    path = tmp_path_factory.mktemp("subtitles") / "subtitled.mp4"
    ffmpeg(
        "-i",
        str(test_video),
        "-i",
        str(srt),
        "-i",
        str(vtt),
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-c",
        "copy",
        "-c:s",
        "mov_text",
        "-metadata:s:s:0",
        "language=fre",
        str(path),
    )
    return path


@pytest.mark.parametrize(
    ("stream", "source", "fmt"),
    [
        (0, "subtitles.srt", "srt"),
        (0, "subtitles.srt", "vtt"),
        (1, "subtitles-utf8.vtt", "vtt"),
    ],
)
def test_cues_come_back_as_they_went_in(
    subtitled: Path, tmp_path: Path, stream: int, source: str, fmt: str
) -> None:
    result = run(subtitled, tmp_path, action="subtitles", subtitle_stream=stream, format=fmt)
    (artifact,) = result.artifacts
    assert artifact.name == f"subtitles.{fmt}"
    made = read_timed_text(artifact.path.read_text(encoding="utf-8"), vtt=fmt == "vtt")
    original_text = (MEDIA / source).read_text(encoding="utf-8-sig")
    original = read_timed_text(original_text, vtt=source.endswith(".vtt"))
    assert [(c.start, c.end, c.text) for c in made] == [(c.start, c.end, c.text) for c in original]
    if stream == 0:
        assert result.payload["output"]["language"] == "fre"


def test_errors(subtitled: Path, test_video: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="no subtitle"):
        run(test_video, tmp_path / "a", action="subtitles")
    with pytest.raises(InvalidParameter, match="2 subtitle"):
        run(subtitled, tmp_path / "b", action="subtitles", subtitle_stream=2)
    with pytest.raises(InvalidParameter) as refused:
        validate_params(OPERATION, {"action": "subtitles", "format": "ass"})
    assert refused.value.fields["parameter"] == "format"


def test_burnt_subtitles_are_drawn_while_their_cue_shows(subtitled: Path, tmp_path: Path) -> None:
    # The VTT stream's first cue shows from 0.35 s; nothing shows before it.
    plain = run(subtitled, tmp_path / "plain", format="mp4", duration="3.5")
    burnt = run(
        subtitled,
        tmp_path / "burnt",
        format="mp4",
        duration="3.5",
        burn_subtitles=True,
        subtitle_stream=1,
    )
    assert [a.name for a in burnt.artifacts] == ["video.mp4"]

    def bottom(result: Result, at: str, folder: str) -> list[int]:
        frame = run(result.artifacts[0].path, tmp_path / folder, action="frame", time=at)
        with Image.open(frame.artifacts[0].path) as image:
            width, height = image.size
            box = image.convert("L").crop((0, int(height * 0.7), width, height))
            return list(box.tobytes())

    def differing(a: list[int], b: list[int]) -> int:
        return sum(1 for x, y in zip(a, b, strict=True) if abs(x - y) > 60)

    during = differing(bottom(plain, "1", "p1"), bottom(burnt, "1", "b1"))
    before = differing(bottom(plain, "0.1", "p0"), bottom(burnt, "0.1", "b0"))
    assert during > 200 and before < 50
    with pytest.raises(UnsupportedFormat, match="no subtitle"):
        run(plain.artifacts[0].path, tmp_path / "none", burn_subtitles=True)
