"""The ``ocr`` operation on corpus images and the corpus's scanned PDF, with the real Tesseract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.scoring import corpus_root, score
from docworker.errors import InvalidParameter, PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.extract import ExtractOperation, ExtractParams
from docworker.operations.ocr import OcrOperation, OcrParams

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
SCANNED = CORPUS / "pdf/scanned-ocr-test.pdf"
OPERATION = OcrOperation()


def run(path: Path, ctx: OperationContext | None = None, **params: Any) -> dict[str, Any]:
    return OPERATION.run(
        ctx or OperationContext(), InputFile(path, name=path.name), OcrParams(**params)
    ).payload


def inside(box: list[float], width: float, height: float) -> bool:
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_an_image_as_json_has_paragraphs_lines_and_words_with_boxes() -> None:
    payload = run(CORPUS / "images/ocr-text.png", output="json")
    assert payload["mime"] == "image/png" and payload["languages"] == "eng"
    assert payload["content"] == "This file contains some words."
    assert payload["page_count"] == 1 and 0.8 < payload["confidence"] <= 1
    [page] = payload["pages"]
    assert (page["page"], page["width"], page["height"], page["unit"]) == (1, 982, 622, "px")
    [paragraph] = page["paragraphs"]
    [line] = paragraph["lines"]
    assert [w["text"] for w in line["words"]] == ["This", "file", "contains", "some", "words."]
    for item in [paragraph, line, *line["words"]]:
        assert inside(item["bbox"], 982, 622) and 0 < item["confidence"] <= 1


def test_text_output_leaves_the_boxes_out() -> None:
    payload = run(CORPUS / "images/ocr-text.png", preprocess=False)
    [page] = payload["pages"]
    assert set(page) == {"page", "confidence", "text"}
    assert page["text"] == "This file contains some words."


def test_a_scanned_pdf_is_rendered_and_read() -> None:
    progress: list[tuple[float, str]] = []
    ctx = OperationContext(progress=lambda fraction, message: progress.append((fraction, message)))
    payload = run(SCANNED, ctx, output="json", dpi=150)
    truth = SCANNED.with_suffix(".expected.md").read_text(encoding="utf-8")
    assert score(payload["content"], "md", truth, "md") >= 0.95
    [page] = payload["pages"]
    assert page["dpi"] == 150
    # An A4 page (595 × 842 pt) at 150 dpi, rounded up by pdfium.
    assert (page["width"], page["height"]) == (1241, 1755)
    words = [w for p in page["paragraphs"] for line in p["lines"] for w in line["words"]]
    assert words and all(inside(w["bbox"], 1241, 1755) for w in words)
    assert progress[-1] == (1.0, "page 1 of 1")


def test_pages_choose_the_frames_read() -> None:
    payload = run(CORPUS / "images/multipage.tif", pages="2", preprocess=False)
    assert payload["page_count"] == 2
    assert [(p["page"], p["text"]) for p in payload["pages"]] == [
        (2, "Multipage TIFF Example Page 2")
    ]


def test_languages_default_to_the_service_setting_and_are_checked() -> None:
    ctx = OperationContext(ocr_languages="eng+kor", ocr_psm=6)
    payload = run(CORPUS / "images/ocr-text.png", ctx, preprocess=False)
    assert payload["languages"] == "eng+kor"
    with pytest.raises(InvalidParameter) as refused:
        run(CORPUS / "images/ocr-text.png", languages="klingon")
    assert refused.value.fields["parameter"] == "languages"


def test_modes_without_text_are_refused_with_the_parameters() -> None:
    with pytest.raises(InvalidParameter):
        OcrParams(psm=0)
    with pytest.raises(InvalidParameter):
        OcrParams(pages="3-1")


def test_a_photo_gives_no_text_and_says_so() -> None:
    payload = run(CORPUS / "images/exif.jpg")
    assert payload["content"] == ""
    assert [w["code"] for w in payload["warnings"]] == ["ocr-no-text"]


def test_other_documents_are_refused() -> None:
    with pytest.raises(UnsupportedFormat):
        run(CORPUS / "text/plain-utf8.txt")


def test_an_encrypted_pdf_needs_its_password() -> None:
    path = CORPUS / "pdf/encrypted-password-1234.pdf"
    with pytest.raises(PasswordRequired) as refused:
        run(path, dpi=100, preprocess=False)
    assert not isinstance(refused.value, WrongPassword)
    with pytest.raises(WrongPassword):
        run(path, password="4321", dpi=100, preprocess=False)
    assert run(path, password="1234", dpi=100, preprocess=False)["content"].strip()


def test_extract_reads_images_through_ocr_unless_it_is_off() -> None:
    image = InputFile(CORPUS / "images/ocr-text.png", name="ocr-text.png")
    extract = ExtractOperation()
    read = extract.run(OperationContext(), image, ExtractParams(output="text")).payload
    assert read["content"].strip() == "This file contains some words."
    skipped = extract.run(OperationContext(), image, ExtractParams(ocr="off")).payload
    assert not skipped["content"].strip()
    assert [w["code"] for w in skipped["warnings"]] == ["ocr-off"]
    with pytest.raises(InvalidParameter) as refused:
        extract.run(OperationContext(), image, ExtractParams(ocr_lang="eng+nope"))
    assert refused.value.fields["parameter"] == "ocr_lang"
