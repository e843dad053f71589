"""Which parser reads which media type, and the one entry point that parses a file.

The table is a literal mapping from media type to ``module:Class``; a parser
module is imported the first time a document of its type arrives, so a worker
that only sees CSV files never loads pdfium.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from docworker.document import Document
from docworker.errors import PasswordRequired, UnsupportedFormat
from docworker.formats.base import ParseContext, Parser, Source
from docworker.formats.detect import Detection, detect

_WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_SHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SLIDES = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

PARSERS: dict[str, str] = {
    "application/pdf": "docworker.formats.pdf:PdfParser",
    _WORD: "docworker.formats.word:DocxParser",
    "application/vnd.ms-word.document.macroEnabled.12": "docworker.formats.word:DocxParser",
    _SHEET: "docworker.formats.spreadsheet:XlsxParser",
    "application/vnd.ms-excel.sheet.macroEnabled.12": "docworker.formats.spreadsheet:XlsxParser",
    _SLIDES: "docworker.formats.slides:PptxParser",
    "application/vnd.ms-powerpoint.presentation.macroEnabled.12": (
        "docworker.formats.slides:PptxParser"
    ),
    "text/html": "docworker.formats.html:HtmlParser",
    "application/xhtml+xml": "docworker.formats.html:HtmlParser",
    "text/markdown": "docworker.formats.markdown:MarkdownParser",
    "text/x-markdown": "docworker.formats.markdown:MarkdownParser",
    "text/plain": "docworker.formats.text:TextParser",
    "text/csv": "docworker.formats.delimited:DelimitedParser",
    "text/tab-separated-values": "docworker.formats.delimited:DelimitedParser",
    "application/json": "docworker.formats.jsondoc:JsonParser",
    "application/x-ndjson": "docworker.formats.jsondoc:JsonParser",
    "application/xml": "docworker.formats.xml:XmlParser",
    "text/xml": "docworker.formats.xml:XmlParser",
}

#: Types that are recognised but can only be refused with a precise reason.
_ENCRYPTED_OOXML = "application/x-encrypted-ooxml"


@cache
def _load(target: str) -> Parser:
    module_name, _, class_name = target.partition(":")
    parser_class = getattr(importlib.import_module(module_name), class_name)
    parser: Parser = parser_class()
    return parser


def parser_for(mime: str) -> Parser:
    """The parser for ``mime``, or :class:`UnsupportedFormat`."""
    if mime == _ENCRYPTED_OOXML:
        raise PasswordRequired(
            "office", "the Office document is encrypted; encrypted Office files are not yet read"
        )
    target = PARSERS.get(mime)
    if target is None:
        raise UnsupportedFormat(mime)
    return _load(target)


def preload() -> None:
    """Import every parser now, so that a worker's first job does not pay for it."""
    for target in set(PARSERS.values()):
        _load(target)


def supported_types() -> list[str]:
    return sorted(PARSERS)


def parse_path(
    path: Path, ctx: ParseContext, *, name: str | None = None, mime: str | None = None
) -> Document:
    """Detect ``path``'s type (unless ``mime`` is given) and parse it with its parser."""
    detection = Detection(mime=mime, format="", how="given") if mime else detect(path, name)
    parser = parser_for(detection.mime)
    return parser.parse(Source(path=path, mime=detection.mime, name=name), ctx)
