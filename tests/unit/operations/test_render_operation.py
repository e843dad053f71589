"""The ``render`` operation on corpus PDFs, office files and images, and on images the
tests make: sizes, formats by magic bytes, pixels, orientation, limits."""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
import pyvips
from PIL import Image

from bench.scoring import corpus_root
from docworker.config import LibreOfficeSettings, Settings, load_settings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import (
    CorruptDocument,
    InvalidParameter,
    LimitExceeded,
    PasswordRequired,
    UnsupportedFormat,
    WrongPassword,
)
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, PartResult, Result, SplitPlan, operation_context

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
ARTICLE = CORPUS / "pdf/multi-page-article.pdf"
OPERATION = get_operation("render")
MAGIC = {
    "png": lambda data: data[:8] == b"\x89PNG\r\n\x1a\n",
    "jpeg": lambda data: data[:3] == b"\xff\xd8\xff",
    "webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
}


def render(
    path: Path,
    workdir: Path,
    settings: Settings | None = None,
    convert: Any = None,
    **params: Any,
) -> Result:
    ctx = operation_context(settings or load_settings(), workdir=workdir, convert=convert)
    return OPERATION.run(ctx, InputFile(path, path.name), validate_params(OPERATION, params))


def pdf_sizes(path: Path) -> list[tuple[float, float]]:
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        return [pdf[index].get_size() for index in range(len(pdf))]
    finally:
        pdf.close()


def opened(result: Result, index: int = 0) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(result.artifacts[index].path))


def check_images(result: Result, fmt: str) -> None:
    """Every artifact is a ``fmt`` image whose size the payload states truly."""
    assert len(result.artifacts) == len(result.payload["pages"])
    for artifact, page in zip(result.artifacts, result.payload["pages"], strict=True):
        data = artifact.path.read_bytes()
        assert MAGIC[fmt](data), artifact.name
        assert artifact.name == page["artifact"] and artifact.mime == f"image/{fmt}"
        assert page["size"] == len(data)
        image = pyvips.Image.new_from_buffer(data, "")
        assert (image.width, image.height) == (page["width"], page["height"])


def test_pdf_pages_at_a_dpi_are_the_page_size_times_dpi_over_72(tmp_path: Path) -> None:
    result = render(ARTICLE, tmp_path, dpi=100)
    sizes = pdf_sizes(ARTICLE)
    assert result.payload["page_count"] == len(sizes) == 5
    assert [p["page"] for p in result.payload["pages"]] == [1, 2, 3, 4, 5]
    for page, (width, height) in zip(result.payload["pages"], sizes, strict=True):
        assert (page["width"], page["height"]) == (
            math.ceil(width * 100 / 72),
            math.ceil(height * 100 / 72),
        )
        assert page["dpi"] == 100.0
    check_images(result, "png")


def test_a_rendered_page_shows_the_page(tmp_path: Path) -> None:
    image = opened(render(ARTICLE, tmp_path, pages="1", dpi=72))
    grey = image.colourspace("b-w")
    # White paper with black text: the darkest pixels are dark and the page is not flat.
    assert grey.min() < 60 and grey.max() > 250 and grey.deviate() > 10
    assert grey.avg() > 200


@pytest.mark.parametrize(("fmt", "box"), [("jpeg", (400, None)), ("webp", (300, 300))])
def test_pages_fit_the_box_asked_for(tmp_path: Path, fmt: str, box: tuple[int, Any]) -> None:
    width, height = box
    params = {"width": width} | ({"height": height} if height else {})
    result = render(ARTICLE, tmp_path, pages="1-2", format=fmt, **params)
    check_images(result, fmt)
    (page_width, page_height), _ = pdf_sizes(ARTICLE)[:2]
    for page in result.payload["pages"]:
        scale = min(width / page_width, (height or math.inf) / page_height)
        assert page["width"] <= width and (height is None or page["height"] <= height)
        assert (page["width"], page["height"]) == (
            math.ceil(page_width * scale - 1e-9),
            math.ceil(page_height * scale - 1e-9),
        )
    assert width in {p["width"] for p in result.payload["pages"]} or height in {
        p["height"] for p in result.payload["pages"]
    }


def test_a_rotated_page_is_rendered_as_displayed(tmp_path: Path) -> None:
    path = CORPUS / "pdf/rotated-page-90.pdf"
    ((width, height),) = pdf_sizes(path)
    page = render(path, tmp_path, dpi=72).payload["pages"][0]
    assert (page["width"], page["height"]) == (math.ceil(width), math.ceil(height))
    assert page["width"] > page["height"]


def test_page_selection_and_the_page_limit(tmp_path: Path) -> None:
    settings = load_settings(render={"max_pages": 2})
    with pytest.raises(LimitExceeded, match="5 pages would be rendered") as caught:
        render(ARTICLE, tmp_path, settings)
    assert caught.value.fields["limit"] == "pages"
    with pytest.raises(InvalidParameter, match="selects none of its 5 pages"):
        render(ARTICLE, tmp_path, pages="7-9")
    result = render(ARTICLE, tmp_path, settings, pages="2,4")
    assert [p["artifact"] for p in result.payload["pages"]] == ["page-0002.png", "page-0004.png"]


def test_a_page_over_the_pixel_limit_is_refused_before_rendering(tmp_path: Path) -> None:
    settings = load_settings(limits={"max_pixels": 1_000_000})
    with pytest.raises(LimitExceeded, match=r"page 1 would be 2481×3508 pixels") as caught:
        render(ARTICLE, tmp_path, settings, pages="1", dpi=300)
    assert caught.value.fields == {"limit": "pixels", "value": 2481 * 3508, "maximum": 1_000_000}
    assert not list(tmp_path.iterdir())


def huge_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width``×``height`` and whose pixel data is garbage:
    decoding it fails, so only a check of the header can refuse it by its size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"not deflate data at all")
        + chunk(b"IEND", b"")
    )
    return path


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = huge_png(tmp_path / "bomb.png", 100_000, 100_000)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(LimitExceeded, match=r"100000×100000 pixels .* not decoded") as caught:
        render(bomb, work, format="jpeg")
    assert caught.value.fields["value"] == 10**10
    # The same garbage under the limit is decoded, and fails as corrupt: the limit came first.
    small = huge_png(tmp_path / "small.png", 100, 100)
    with pytest.raises(CorruptDocument):
        render(small, work)


def test_a_transparent_png_as_jpeg_gets_the_background(tmp_path: Path) -> None:
    source = tmp_path / "transparent.png"
    image = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 20, 30))
    image.save(source)
    work = tmp_path / "work"
    work.mkdir()
    result = render(source, work, format="jpeg", background="#ff0000")
    check_images(result, "jpeg")
    out = opened(result)
    assert out.bands == 3
    left, right = out.getpoint(5, 15), out.getpoint(35, 15)
    assert left[2] > 200 and left[0] < 40  # the opaque blue stays
    assert right[0] > 200 and right[1] < 40 and right[2] < 40  # transparency became red
    # PNG keeps the transparency.
    kept = opened(render(source, work, format="png"))
    assert kept.bands == 4 and kept.getpoint(35, 15)[3] == 0


def test_heic_input(tmp_path: Path) -> None:
    result = render(CORPUS / "images/tika-test.heic", tmp_path, format="png")
    check_images(result, "png")
    assert [(p["width"], p["height"]) for p in result.payload["pages"]] == [(800, 544)]
    assert opened(result).deviate() > 5


def test_each_frame_of_a_multi_page_tiff_is_a_page(tmp_path: Path) -> None:
    path = CORPUS / "images/multipage.tif"
    result = render(path, tmp_path, format="webp")
    check_images(result, "webp")
    assert result.payload["page_count"] == 2
    assert [(p["page"], p["width"], p["height"]) for p in result.payload["pages"]] == [
        (1, 800, 600),
        (2, 800, 600),
    ]
    second = render(path, tmp_path, pages="2", width=400)
    assert [(p["artifact"], p["width"], p["height"]) for p in second.payload["pages"]] == [
        ("page-0002.png", 400, 300)
    ]


def exif_rotated_jpeg(path: Path) -> Path:
    """A 3000×2000 JPEG stored sideways with EXIF orientation 6 (turn 90° clockwise to
    show): its stored top-left corner is red, so shown upright the top-right corner is.
    Large enough that turning it cannot be done reading it top to bottom."""
    image = Image.new("RGB", (3000, 2000), (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, 1000, 750))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(path, quality=90, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("params", [{}, {"width": 200}])
def test_an_exif_rotated_jpeg_comes_out_upright(tmp_path: Path, params: dict[str, Any]) -> None:
    source = exif_rotated_jpeg(tmp_path / "sideways.jpg")
    work = tmp_path / "work"
    work.mkdir()
    result = render(source, work, format="jpeg", **params)
    out = opened(result)
    scale = params.get("width", 2000) / 2000
    assert (out.width, out.height) == (round(2000 * scale), round(3000 * scale))
    margin = int(50 * scale)
    top_right = out.getpoint(out.width - 1 - margin, margin)
    top_left = out.getpoint(margin, margin)
    bottom_left = out.getpoint(margin, out.height - 1 - margin)
    assert top_right[0] > 200 and top_right[1] < 60
    assert min(top_left) > 200 and min(bottom_left) > 200
    assert not out.get_typeof("orientation") or out.get("orientation") == 1


def test_thumbnails_fit_the_box_as_webp(tmp_path: Path) -> None:
    result = render(ARTICLE, tmp_path, thumbnail=True)
    check_images(result, "webp")
    (page,) = result.payload["pages"]
    assert (page["page"], max(page["width"], page["height"])) == (1, 256)
    small = render(CORPUS / "images/paper-with-table.jpg", tmp_path, thumbnail=True, size=64)
    (page,) = small.payload["pages"]
    assert max(page["width"], page["height"]) == 64


def test_encrypted_pdfs_need_their_password(tmp_path: Path) -> None:
    path = CORPUS / "pdf/encrypted-password-1234.pdf"
    with pytest.raises(PasswordRequired):
        render(path, tmp_path)
    with pytest.raises(WrongPassword):
        render(path, tmp_path, password="nope")
    result = render(path, tmp_path, password="1234", dpi=50)
    check_images(result, "png")


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"dpi": 100, "width": 300}, "params"),
        ({"size": 100}, "params"),
        ({"background": "tomato-ish"}, "background"),
        ({"format": "gif"}, "format"),
        ({"pages": "0-"}, "pages"),
        ({"dpi": 5000}, "dpi"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        validate_params(OPERATION, params)
    assert caught.value.fields["parameter"] == name


def test_a_box_side_over_the_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="width"):
        render(ARTICLE, tmp_path, load_settings(render={"max_side": 1000}), width=1001)


def test_html_and_other_types_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="HTML"):
        render(CORPUS / "web/table-rowspan.html", tmp_path)
    with pytest.raises(UnsupportedFormat):
        render(CORPUS / "web/simple.json", tmp_path)


def test_a_long_pdf_splits_into_page_ranges_whose_merge_is_the_whole(tmp_path: Path) -> None:
    settings = load_settings(render={"split_min_pages": 2})
    ctx = operation_context(settings, workdir=tmp_path)
    params = validate_params(OPERATION, {"dpi": 40, "format": "jpeg"})
    source = InputFile(ARTICLE, ARTICLE.name, "application/pdf")
    parts = OPERATION.split(ctx, source, params, SplitPlan(parts=2, min_pages=4))
    assert parts is not None and [p.params for p in parts] == [{"pages": "1-3"}, {"pages": "4-5"}]
    assert OPERATION.split(ctx, source, params, SplitPlan(parts=2, min_pages=6)) is None
    results = []
    for index, part in enumerate(parts, 1):
        folder = tmp_path / f"part{index}"
        folder.mkdir()
        done = render(ARTICLE, folder, settings, dpi=40, format="jpeg", **part.params)
        artifacts = {a.name: a.path for a in done.artifacts}
        results.append(PartResult(index, part.params, "succeeded", done.payload, artifacts))
    merged_dir = tmp_path / "merged"
    merged_dir.mkdir()
    merged = OPERATION.merge(
        operation_context(settings, workdir=merged_dir), source, params, results
    )
    whole_dir = tmp_path / "whole"
    whole_dir.mkdir()
    whole = render(ARTICLE, whole_dir, settings, dpi=40, format="jpeg")
    assert merged.payload == whole.payload and merged.errors == []
    assert [a.name for a in merged.artifacts] == [a.name for a in whole.artifacts]
    for ours, theirs in zip(merged.artifacts, whole.artifacts, strict=True):
        assert ours.path.read_bytes() == theirs.path.read_bytes()


# -- office documents, through LibreOffice ---------------------------------------------------


@pytest.fixture(scope="module")
def libreoffice() -> Iterator[LibreOfficeEngine]:
    engine = LibreOfficeEngine(LibreOfficeSettings())
    if not engine.status()["installed"]:
        pytest.skip("LibreOffice is not installed")
    with engine:
        yield engine


@pytest.mark.parametrize(
    "name", ["office/word-sample.docx", "office/powerpoint-sample.pptx", "office/legacy-word.doc"]
)
def test_office_pages_are_rendered_from_libreoffices_pdf(
    tmp_path: Path, libreoffice: LibreOfficeEngine, name: str
) -> None:
    path = CORPUS / name
    pdf = libreoffice.convert(path, "pdf")
    try:
        sizes = pdf_sizes(pdf)
    finally:
        pdf.unlink()
    result = render(path, tmp_path, convert=libreoffice.convert, dpi=60, format="jpeg")
    check_images(result, "jpeg")
    assert result.payload["page_count"] == len(sizes) >= 1
    assert [(p["width"], p["height"]) for p in result.payload["pages"]] == [
        (math.ceil(w * 60 / 72), math.ceil(h * 60 / 72)) for w, h in sizes
    ]
    assert opened(result).colourspace("b-w").deviate() > 5


def test_an_office_thumbnail(tmp_path: Path, libreoffice: LibreOfficeEngine) -> None:
    path = CORPUS / "office/powerpoint-sample.pptx"
    result = render(path, tmp_path, convert=libreoffice.convert, thumbnail=True, size=128)
    check_images(result, "webp")
    (page,) = result.payload["pages"]
    assert page["width"] == 128 and page["height"] < 128  # a landscape slide


def test_office_files_without_libreoffice_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="LibreOffice"):
        render(CORPUS / "office/word-sample.docx", tmp_path)


def test_a_page_image_decodes_as_the_format_says(tmp_path: Path) -> None:
    result = render(CORPUS / "images/ocr-text.png", tmp_path, format="webp", quality=50)
    with Image.open(io.BytesIO(result.artifacts[0].path.read_bytes())) as image:
        assert image.format == "WEBP" and image.size == (982, 622)


def test_an_encrypted_workbook_is_rendered_with_its_password(
    tmp_path: Path, libreoffice: LibreOfficeEngine
) -> None:
    path = CORPUS / "office/encrypted-password-tika.xlsx"
    with pytest.raises(PasswordRequired):
        render(path, tmp_path, convert=libreoffice.convert)
    with pytest.raises(WrongPassword):
        render(path, tmp_path, convert=libreoffice.convert, password="not-tika")
    result = render(path, tmp_path, convert=libreoffice.convert, password="tika", dpi=40)
    check_images(result, "png")
    assert result.payload["source_mime"] == "application/x-encrypted-ooxml"
    assert result.payload["page_count"] >= 1
    assert opened(result).colourspace("b-w").deviate() > 1


def test_hostile_inputs_are_rendered_or_refused_by_what_they_are(tmp_path: Path) -> None:
    # pdfium runs no JavaScript: the page is drawn like any other.
    result = render(CORPUS / "hostile/pdf-javascript-action.pdf", tmp_path, dpi=30)
    check_images(result, "png")
    # An MP3 that is also a valid JPEG is rendered as the 6×2 picture it holds, whatever
    # its name says.
    picture = render(CORPUS / "hostile/polyglot-mp3-jpg.mp3", tmp_path, format="webp")
    check_images(picture, "webp")
    assert [(p["width"], p["height"]) for p in picture.payload["pages"]] == [(6, 2)]
