"""The ``v1_media`` operation: v1's image pipeline (one geometric operation by priority,
the ffmpeg semantics) and document pipeline (PDF → page → image, or the PDF), run in
process on images made here and a corpus PDF; outputs opened and measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.scoring import corpus_root
from docworker.config import Settings
from docworker.engines.vips import pyvips
from docworker.errors import InvalidParameter, UnsupportedFormat
from docworker.operations.base import InputFile, Result, operation_context
from docworker.operations.v1_media import V1MediaOperation, V1MediaParams
from tests.videos import make_video, needs_ffmpeg

PDF = corpus_root() / "pdf" / "multi-page-article.pdf"


@pytest.fixture
def landscape(tmp_path: Path) -> InputFile:
    """A 400 × 200 PNG."""
    path = tmp_path / "wide.png"
    pyvips.Image.black(400, 200, bands=3).linear(1, 120).cast("uchar").write_to_file(str(path))
    return InputFile(path, path.name, "image/png")


def run(tmp_path: Path, source: InputFile, **raw: Any) -> Result:
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = operation_context(Settings(), workdir=workdir)
    return V1MediaOperation().run(ctx, source, V1MediaParams.model_validate(raw))


def opened(result: Result) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(result.artifacts[0].path))


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ({}, (400, 200)),
        ({"resize": 50, "crop": "0:0:5:5", "width": 10}, (200, 100)),
        ({"crop": "10:20:30:40", "width": 10}, (30, 40)),
        ({"width": 100}, (100, 50)),
        ({"height": 50}, (100, 50)),
        ({"width": 800, "height": 100}, (200, 100)),
        ({"vips": False, "width": 100, "height": 100}, (100, 100)),
        ({"vips": False, "height": 50}, (100, 50)),
        ({"vips": False, "resize": 50, "crop": "20:10"}, (20, 10)),
        ({"vips": False, "width": 100, "crop": "30:20:70:30"}, (30, 20)),
    ],
)
def test_one_geometric_operation_by_priority(
    tmp_path: Path, landscape: InputFile, raw: dict[str, Any], size: tuple[int, int]
) -> None:
    result = run(tmp_path, landscape, format="png", **raw)
    image = opened(result)
    assert (image.width, image.height) == size
    assert (result.payload["width"], result.payload["height"]) == size


def test_the_output_is_named_by_the_format_asked(tmp_path: Path, landscape: InputFile) -> None:
    result = run(tmp_path, landscape, format="JPG", quality=40)
    artifact = result.artifacts[0]
    assert artifact.name == "output.jpg" and artifact.mime == "image/jpeg"
    assert artifact.path.read_bytes().startswith(b"\xff\xd8\xff")
    default = run(tmp_path / "default", landscape)
    assert default.artifacts[0].name == "output.webp"
    assert default.artifacts[0].path.read_bytes()[8:12] == b"WEBP"


@pytest.mark.parametrize(
    ("raw", "parameter"),
    [
        ({"crop": "0:0:10"}, "crop"),
        ({"crop": "a:b:c:d"}, "crop"),
        ({"crop": "-1:0:10:10"}, "crop"),
        ({"vips": False, "crop": "1:2:3"}, "crop"),
        ({"format": "bmp"}, "format"),
        ({"resize": 0}, "resize"),
    ],
)
def test_bad_parameters_fail_naming_them(
    tmp_path: Path, landscape: InputFile, raw: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        run(tmp_path, landscape, **raw)
    assert caught.value.to_dict()["parameter"] == parameter


def test_a_document_page_at_150_dpi_or_the_pdf_itself(tmp_path: Path) -> None:
    source = InputFile(PDF, PDF.name, "application/pdf")
    page = run(tmp_path, source, kind="document")
    image = opened(page)
    assert (image.width, image.height) == (1241, 1754)  # A4 at 150 dpi
    assert page.payload["page"] == 1 and page.payload["page_count"] == 5
    as_pdf = run(tmp_path / "p", source, kind="document", format="pdf")
    assert as_pdf.artifacts[0].path.read_bytes() == PDF.read_bytes()
    with pytest.raises(InvalidParameter):
        run(tmp_path / "x", source, kind="document", page=6)


def test_a_document_that_is_an_image_goes_to_the_image_pipeline(
    tmp_path: Path, landscape: InputFile
) -> None:
    result = run(tmp_path, landscape, kind="document", width=40)
    assert (opened(result).width, opened(result).height) == (40, 20)
    with pytest.raises(InvalidParameter):
        run(tmp_path, landscape, kind="document", format="pdf")


def test_text_is_not_an_image(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just words\n", encoding="utf-8")
    with pytest.raises(UnsupportedFormat):
        run(tmp_path, InputFile(text, text.name, "text/plain"), kind="document")


@needs_ffmpeg
def test_a_video_is_webm_clipped_by_a_two_part_clip(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", size="160x120", seconds=2)
    source = InputFile(video, video.name, "video/mp4")
    clipped = run(tmp_path / "a", source, kind="video", clip="0.5:1", format="png", width=10)
    artifact = clipped.artifacts[0]
    assert artifact.name == "video.webm" and artifact.mime == "video/webm"
    assert artifact.path.read_bytes().startswith(b"\x1a\x45\xdf\xa3")
    assert abs(clipped.payload["output"]["duration"] - 1.0) < 0.15
    whole = run(tmp_path / "b", source, kind="video", clip="00:00:00:01")
    assert abs(whole.payload["output"]["duration"] - 2.0) < 0.15  # v1 ignored that shape
    with pytest.raises(InvalidParameter) as caught:
        run(tmp_path / "c", source, kind="video", clip="soon:later")
    assert caught.value.to_dict()["parameter"] == "clip"
