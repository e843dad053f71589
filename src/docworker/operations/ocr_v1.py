"""The ``ocr`` operation's ``v1`` output: documents-worker v1's ``OCRResult``, exactly.

v1 read an image as it was, and of a document only the first page, rendered
from a PDF (LibreOffice made one of anything else); Tesseract could output
only the characters of :data:`V1_ALLOWED_CHARACTERS`; and the confidence it
reported was a heuristic on the text, not Tesseract's (:func:`v1_confidence`).
The operation reads the pages; this module holds v1's rules and shapes.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from docworker.errors import UnsupportedFormat
from docworker.formats.base import OcrPage
from docworker.formats.detect import format_of

#: The characters v1 let Tesseract output: ASCII letters and digits, the Turkish
#: letters, the space and a little punctuation (line breaks still come out).
V1_ALLOWED_CHARACTERS = string.ascii_letters + string.digits + "ğüşıöçĞÜŞİÖÇ" + " .,!?:;()-"
#: v1's image name for the page of a document it read.
V1_PAGE_IMAGE = "pdf-page-1.png"
_PDF = "application/pdf"
#: Words that raise the confidence when found anywhere in the text, inside other words too.
_COMMON_WORDS = ("the", "and", "or", "bir", "ve", "bu", "da", "de", "için", "ile")
#: Symbols whose share of the text's bytes, over 0.1, lowers the confidence.
_SYMBOLS = frozenset("!@#$%^&*()_+=[]{}|;:,.<>?")
_SYMBOLS_SHARE = 0.1
#: Document families LibreOffice turns into a PDF to be read.
_CONVERTED_TO_PDF = frozenset(
    {
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "odt",
        "ods",
        "odp",
        "odg",
        "rtf",
        "text",
        "csv",
        "html",
        "markdown",
    }
)


def v1_confidence(text: str) -> float:
    """v1's confidence in ``text`` (trimmed), from the text alone, 0..1.

    0 for no text. Otherwise 0.5, plus 0.2 for more than 100 bytes (UTF-8) or
    0.1 for more than 50, plus 0.05 for each of :data:`_COMMON_WORDS` found in
    the lower-cased text, minus 0.2 when the characters of :data:`_SYMBOLS`
    number more than a tenth of its bytes. Lower-casing is Go's, rune by rune:
    "İ" becomes "i" (Python makes it "i" and a combining dot).
    """
    if not text:
        return 0.0
    size = len(text.encode("utf-8"))
    confidence = 0.5
    if size > 100:
        confidence += 0.2
    elif size > 50:
        confidence += 0.1
    lowered = text.replace("\u0130", "i").lower()
    for word in _COMMON_WORDS:
        if word in lowered:
            confidence += 0.05
    if sum(char in _SYMBOLS for char in text) / size > _SYMBOLS_SHARE:
        confidence -= 0.2
    return max(0.0, min(confidence, 1.0))


def v1_text(pages: Sequence[OcrPage]) -> str:
    """The text as Tesseract's command line writes it, trimmed: a line on each line,
    paragraphs apart by a blank line, pages apart by a form feed."""
    return "\f".join(
        "\n\n".join(
            "\n".join(line.text for line in paragraph.lines) for paragraph in page.paragraphs
        )
        for page in pages
    ).strip()


def v1_result(text: str, languages: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """v1's ``OCRResult``: always one page, whatever was read."""
    return {
        "text": text,
        "confidence": v1_confidence(text),
        "language": languages,
        "page_count": 1,
        "metadata": metadata,
    }


def image_metadata(input_file: str, psm: int, dpi: int) -> dict[str, Any]:
    """``metadata`` of an image read; ``dpi`` is the service's PDF setting, as in v1."""
    return {"input_file": input_file, "psm": psm, "dpi": dpi}


def document_metadata(source_file: str, psm: int, dpi: int) -> dict[str, Any]:
    """``metadata`` of a document, of which the first page of ``source_file`` was read."""
    return {
        "input_file": V1_PAGE_IMAGE,
        "psm": psm,
        "dpi": dpi,
        "source_type": "pdf",
        "page_number": 1,
        "source_file": source_file,
    }


def converted_to_pdf(mime: str) -> bool:
    """Whether :func:`as_pdf` has LibreOffice convert a document of type ``mime``."""
    return mime != _PDF and format_of(mime) in _CONVERTED_TO_PDF


@contextmanager
def as_pdf(
    path: Path, name: str, mime: str, convert: Callable[[Path, str], Path] | None
) -> Iterator[tuple[Path, str]]:
    """The document at ``path`` as a PDF, and the PDF's file name.

    A PDF is itself; an office or text document is converted by ``convert``
    (LibreOffice) and the copy deleted when the block ends. Anything else, or
    any other document where no converter runs, is refused.
    """
    if mime == _PDF:
        yield path, name
        return
    if format_of(mime) not in _CONVERTED_TO_PDF:
        raise UnsupportedFormat(
            mime, f"images, PDFs and documents LibreOffice opens are read, not {mime}"
        )
    if convert is None:
        raise UnsupportedFormat(
            mime, "documents other than PDFs are read through LibreOffice, which is not here"
        )
    converted = convert(path, "pdf")
    try:
        yield converted, f"{Path(name).stem or 'document'}.pdf"
    finally:
        converted.unlink(missing_ok=True)
