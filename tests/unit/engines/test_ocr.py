"""The Tesseract engine, with the real Tesseract: languages, text, boxes, preparation steps.

Each preparation step is checked on a page drawn here with Pillow (turned by a
quarter, skewed by 5°, printed small, sprinkled with noise), so what the step
must undo is known exactly.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from bench.scoring import corpus_root
from docworker.engines.ocr import (
    Preprocessing,
    TesseractOcr,
    _ApiPool,
    available_languages,
    check_psm,
    recognize,
    tessdata_dir,
    validate_languages,
)
from docworker.engines.ocr_preprocess import grey_pixels
from docworker.errors import DependencyDown, InvalidParameter
from docworker.formats.base import OcrPage

CORPUS = corpus_root()
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
needs_font = pytest.mark.skipif(
    not FONT.is_file(), reason="DejaVu Sans (fonts-dejavu-core) missing"
)
LINES = ["The quick brown fox jumps", "over the lazy dog near the", "river bank every morning"]
WORDS = " ".join(LINES).split()


def page(size: int = 32) -> Image.Image:
    """Three lines of black text on white, ``size`` pixels high."""
    font = ImageFont.truetype(str(FONT), size)
    image = Image.new("L", (size * 16, size * 6), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(LINES):
        draw.text((size, size + index * size * 1.5), line, fill="black", font=font)
    return image


def words_of(result: OcrPage) -> list[str]:
    return [word.text for paragraph in result.paragraphs for word in paragraph.words]


def assert_boxes_inside(result: OcrPage) -> None:
    for paragraph in result.paragraphs:
        for box in [paragraph.bbox, *(word.bbox for word in paragraph.words)]:
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= result.width and 0 <= y0 < y1 <= result.height, box


def test_languages_are_the_installed_data_files_but_not_the_orientation_model() -> None:
    languages = available_languages()
    assert "eng" in languages
    assert "osd" not in languages
    assert languages == sorted(languages)
    assert (tessdata_dir() / "eng.traineddata").is_file()


def test_language_lists_are_normalised_and_unknown_ones_named() -> None:
    assert validate_languages("eng") == "eng"
    assert validate_languages(" eng, eng +") == "eng"
    with pytest.raises(InvalidParameter) as refused:
        validate_languages("eng+xx_nope+zz_nope", "languages")
    assert refused.value.fields["parameter"] == "languages"
    assert "xx_nope, zz_nope" in refused.value.detail
    assert "available: " in refused.value.detail
    with pytest.raises(InvalidParameter):
        validate_languages(" + ")
    with pytest.raises(InvalidParameter):
        recognize(Image.new("L", (10, 10), "white"), languages="../../etc/passwd")


def test_modes_that_read_no_text_are_refused() -> None:
    check_psm(6)
    for mode in (0, 2, 14, -1):
        with pytest.raises(InvalidParameter):
            check_psm(mode)


@pytest.fixture
def no_language_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    monkeypatch.setattr("docworker.engines.ocr._TESSDATA_GLOBS", ())
    tessdata_dir.cache_clear()
    yield
    tessdata_dir.cache_clear()


@pytest.mark.usefixtures("no_language_data")
def test_without_language_data_ocr_is_reported_down() -> None:
    with pytest.raises(DependencyDown, match="no Tesseract language data"):
        available_languages()
    with pytest.raises(DependencyDown):
        TesseractOcr().read(Image.new("L", (10, 10), "white"))


def test_tessdata_prefix_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tessdata_dir()
    monkeypatch.setenv("TESSDATA_PREFIX", str(real.parent))
    tessdata_dir.cache_clear()
    try:
        assert tessdata_dir() == real
    finally:
        tessdata_dir.cache_clear()


@needs_corpus
def test_a_corpus_image_gives_its_text_with_word_boxes_and_confidences() -> None:
    with Image.open(CORPUS / "images/ocr-text.png") as image:
        result = TesseractOcr().read(image)
    assert result.text == "This file contains some words."
    assert (result.width, result.height) == (982, 622)
    assert 0.8 < result.confidence <= 1
    [paragraph] = result.paragraphs
    assert [word.text for word in paragraph.words] == ["This", "file", "contains", "some", "words."]
    assert_boxes_inside(result)
    # The line sits at the top of the image, its words left to right.
    boxes = [word.bbox for word in paragraph.words]
    assert all(box[1] < 80 for box in boxes)
    assert [box[0] for box in boxes] == sorted(box[0] for box in boxes)


@needs_corpus
def test_chinese_is_joined_without_spaces() -> None:
    with Image.open(CORPUS / "images/chinese-simplified.jpeg") as image:
        result = recognize(image, languages="chi_sim")
    assert "“清道夫”" in result.text
    assert "肌肤" in result.text


@pytest.mark.parametrize("size", [(300, 200), (1, 1), (5000, 1)])
def test_a_blank_image_has_no_text(size: tuple[int, int]) -> None:
    result = recognize(Image.new("RGB", size, "white"), languages="eng")
    assert result.paragraphs == ()
    assert result.confidence == 0.0
    assert result.text == ""


@needs_font
def test_lines_and_paragraphs_group_the_words() -> None:
    result = recognize(page(), languages="eng")
    assert words_of(result) == WORDS
    [paragraph] = result.paragraphs
    assert [line.text for line in paragraph.lines] == LINES
    assert paragraph.text == " ".join(LINES)
    assert_boxes_inside(result)


@needs_font
def test_a_page_on_its_side_is_turned_upright_and_boxes_follow() -> None:
    upright = page()
    straight = recognize(upright, languages="eng", preprocessing=Preprocessing.none())
    sideways = upright.rotate(90, expand=True)  # counter-clockwise
    result = recognize(sideways, languages="eng")
    assert words_of(result) == WORDS
    assert result.rotation_applied == 90
    assert (result.width, result.height) == sideways.size
    # A point (x, y) of the upright page is at (y, width - x) on the turned one.
    first, turned = straight.paragraphs[0].words[0], result.paragraphs[0].words[0]
    x0, y0, x1, y1 = first.bbox
    expected = (y0, upright.width - x1, y1, upright.width - x0)
    assert turned.bbox == pytest.approx(expected, abs=3)


@needs_font
def test_an_upside_down_page_is_read() -> None:
    result = recognize(page().rotate(180), languages="eng")
    assert result.rotation_applied == 180
    assert words_of(result) == WORDS


@needs_font
def test_a_skewed_page_is_straightened() -> None:
    skewed = page().rotate(-5, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC)
    result = recognize(skewed, languages="eng")
    assert result.skew_degrees == pytest.approx(5, abs=0.3)
    assert words_of(result) == WORDS
    assert_boxes_inside(result)
    left_alone = recognize(page(), languages="eng")
    assert left_alone.skew_degrees == 0.0


@needs_font
def test_small_text_is_scaled_up_and_boxes_scaled_back() -> None:
    small = page(size=9)
    result = recognize(small, languages="eng")
    assert result.scale > 1.5
    assert words_of(result) == WORDS
    assert (result.width, result.height) == small.size
    assert_boxes_inside(result)


@needs_font
def test_denoise_and_binarize_read_a_noisy_page() -> None:
    noisy = page()
    pixels = noisy.load()
    assert pixels is not None
    chance = random.Random(7)
    for _ in range(noisy.width * noisy.height // 50):
        pixels[chance.randrange(noisy.width), chance.randrange(noisy.height)] = chance.choice(
            [0, 255]
        )
    steps = Preprocessing(denoise=True, binarize=True)
    assert words_of(recognize(noisy, languages="eng", preprocessing=steps)) == WORDS


def test_transparency_becomes_white_paper_and_deep_grey_is_scaled() -> None:
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert grey_pixels(clear).min() == 255
    deep = Image.new("I;16", (2, 1))
    deep.putpixel((1, 0), 60000)
    assert grey_pixels(deep).tolist() == [[0, 255]]


@needs_font
def test_threads_share_the_engine_safely() -> None:
    image, found = page(), []

    def read() -> None:
        found.append(
            words_of(recognize(image, languages="eng", preprocessing=Preprocessing.none()))
        )

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [WORDS] * 3


def test_instances_are_reused_and_the_idle_ones_bounded() -> None:
    pool = _ApiPool()
    with pool.api("eng", 6) as first:
        pass
    with pool.api("eng", 6) as again:
        assert again is first
    for psm in (3, 4, 7, 11, 13):
        with pool.api("eng", psm):
            pass
    idle = pool._idle
    assert sum(len(instances) for instances in idle.values()) == 4
    # The least recently used went first.
    assert ("eng", 6) not in idle and ("eng", 13) in idle
