"""The ``ocr`` operation on corpus images and PDFs, with the real Tesseract: its text,
JSON, searchable PDF and v1 outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdfium2
import pytest

from bench.scoring import corpus_root, score, token_f1, tokens
from docworker.config import LibreOfficeSettings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import (
    InvalidParameter,
    PasswordRequired,
    ProcessingFailed,
    UnsupportedFormat,
    WrongPassword,
)
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.extract import ExtractOperation, ExtractParams
from docworker.operations.ocr import OcrOperation, OcrParams
from docworker.operations.ocr_v1 import V1_ALLOWED_CHARACTERS, v1_confidence

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
    assert set(page) == {"page", "confidence", "word_count", "text"}
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


# -- searchable PDF --------------------------------------------------------------------


def test_a_searchable_pdf_of_an_image_is_an_artifact_beside_the_text(tmp_path: Path) -> None:
    image = CORPUS / "images/ocr-text.png"
    result = OPERATION.run(
        OperationContext(workdir=tmp_path),
        InputFile(image, name=image.name),
        OcrParams(output="searchable_pdf"),
    )
    payload = result.payload
    assert payload["output"] == "searchable_pdf"
    assert payload["content"] == "This file contains some words."
    assert [set(page) for page in payload["pages"]] == [
        {"page", "confidence", "word_count", "text"}
    ]
    [artifact] = result.artifacts
    assert (artifact.name, artifact.mime) == ("searchable.pdf", "application/pdf")
    assert artifact.path == tmp_path / "searchable.pdf"
    pdf = pypdfium2.PdfDocument(artifact.path)
    assert len(pdf) == 1
    assert pdf[0].get_textpage().get_text_range() == payload["content"]


def test_a_searchable_pdf_of_a_pdf_keeps_its_page(tmp_path: Path) -> None:
    ctx = OperationContext(workdir=tmp_path)
    result = OPERATION.run(
        ctx, InputFile(SCANNED, name=SCANNED.name), OcrParams(output="searchable_pdf", dpi=150)
    )
    [artifact] = result.artifacts
    original, made = pypdfium2.PdfDocument(SCANNED), pypdfium2.PdfDocument(artifact.path)
    assert len(made) == len(original) == 1
    assert made[0].get_size() == original[0].get_size()
    text = made[0].get_textpage().get_text_range()
    assert token_f1(tokens(text), tokens(result.payload["content"])) > 0.95
    assert result.payload["warnings"] == []


def test_a_searchable_pdf_holds_the_frames_read(tmp_path: Path) -> None:
    result = OPERATION.run(
        OperationContext(workdir=tmp_path),
        InputFile(CORPUS / "images/multipage.tif"),
        OcrParams(output="searchable_pdf", pages="2", preprocess=False),
    )
    pdf = pypdfium2.PdfDocument(result.artifacts[0].path)
    assert len(pdf) == 1
    assert " ".join(pdf[0].get_textpage().get_text_range().split()) == (
        "Multipage TIFF Example Page 2"
    )


def test_a_searchable_pdf_needs_a_place_to_be_written() -> None:
    with pytest.raises(ProcessingFailed):
        run(CORPUS / "images/ocr-text.png", output="searchable_pdf")


# -- allowed characters ---------------------------------------------------------------


def test_allowed_characters_keep_the_text_to_them() -> None:
    payload = run(CORPUS / "images/ocr-text.png", allowed_characters="aeiost ", preprocess=False)
    assert payload["content"]
    assert set(payload["content"]) <= set("aeiost \n")
    # The engine's instances are shared: the next reading may use any character again.
    assert run(CORPUS / "images/ocr-text.png")["content"] == "This file contains some words."


# -- v1 --------------------------------------------------------------------------------


def test_v1_reads_an_image_into_the_v1_shape() -> None:
    ctx = OperationContext(ocr_psm=6, ocr_dpi=200)
    payload = run(CORPUS / "images/ocr-text.png", ctx, output="v1")
    assert payload == {
        "text": "This file contains some words.",
        # 30 bytes; "or" (in "words") and "ile" (in "file").
        "confidence": 0.5 + 0.05 + 0.05,
        "language": "eng",
        "page_count": 1,
        "metadata": {"input_file": "ocr-text.png", "psm": 6, "dpi": 200},
    }


def test_v1_keeps_to_its_characters_unless_told_otherwise() -> None:
    image = CORPUS / "images/english-and-korean.png"
    ctx = OperationContext(ocr_languages="eng+kor")
    kept = run(image, ctx, output="v1")["text"]
    assert kept.startswith("RULES AND INSTRUCTIONS")
    assert set(kept) <= set(V1_ALLOWED_CHARACTERS + "\n")
    free = run(image, ctx, output="v1", allowed_characters="")["text"]
    assert "안녕하세요" in free


def test_v1_reads_the_first_page_of_a_pdf() -> None:
    article = CORPUS / "pdf/multi-page-article.pdf"
    ctx = OperationContext(ocr_dpi=150)
    payload = run(article, ctx, output="v1", allowed_characters="")
    assert payload["page_count"] == 1
    assert payload["metadata"] == {
        "input_file": "pdf-page-1.png",
        "psm": 3,
        "dpi": 150,
        "source_type": "pdf",
        "page_number": 1,
        "source_file": "multi-page-article.pdf",
    }
    assert payload["text"] == payload["text"].strip() and "\n" in payload["text"]
    assert payload["confidence"] == v1_confidence(payload["text"])
    pdf = pypdfium2.PdfDocument(article)
    first, second = (tokens(pdf[i].get_textpage().get_text_range()) for i in (0, 1))
    read = tokens(payload["text"])
    assert token_f1(read, first) > 0.9 > 0.5 > token_f1(read, second)


def test_v1_refuses_office_documents_without_libreoffice_and_other_files() -> None:
    with pytest.raises(UnsupportedFormat, match="LibreOffice"):
        run(CORPUS / "office/text-document.odt", output="v1")
    with pytest.raises(UnsupportedFormat):
        run(CORPUS / "office/poetry.epub", output="v1")


@pytest.mark.skipif(
    not LibreOfficeEngine(LibreOfficeSettings()).status()["installed"],
    reason="LibreOffice (soffice, python3-uno) is not installed",
)
def test_v1_reads_an_office_document_through_libreoffice() -> None:
    document = CORPUS / "office/text-document.odt"
    with LibreOfficeEngine(LibreOfficeSettings()) as libreoffice:
        ctx = OperationContext(convert=libreoffice.convert, ocr_dpi=150)
        payload = run(document, ctx, output="v1", allowed_characters="")
    assert payload["metadata"]["source_file"] == "text-document.pdf"
    assert payload["metadata"]["input_file"] == "pdf-page-1.png"
    truth = document.with_suffix(".expected.md").read_text(encoding="utf-8")
    assert score(payload["text"], "txt", truth, "md") > 0.8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0.0),
        ("x", 0.5),
        # Longer than 50 bytes: +0.1; than 100 bytes: +0.2 (bytes, not characters).
        ("x" * 51, 0.6),
        ("x" * 101, 0.7),
        ("ğ" * 26, 0.6),
        ("ğ" * 25, 0.5),
        # Each word counts once, found inside other words too, in any case.
        ("THE", 0.55),
        ("the the", 0.55),
        ("thesis", 0.55),
        ("bird", 0.55),  # "bir"
        ("İÇİN", 0.55),  # Go lower-cases "İ" to "i"
        ("the and or bir ve bu da de için ile", 0.5 + 0.5),
        # Symbols over a tenth of the bytes: -0.2, and the result stays within 0..1.
        ("x!", 0.3),
        ("xxxxxxxxx!", 0.5),
        ("!!!", 0.3),
    ],
)
def test_v1_confidence_follows_v1s_rules(text: str, expected: float) -> None:
    assert v1_confidence(text) == pytest.approx(expected)


def test_v1_confidence_stays_within_bounds() -> None:
    text = "the and or bir ve bu da de için ile " * 5
    assert v1_confidence(text) == 1.0
    assert v1_confidence("(" * 200) == pytest.approx(0.5)
