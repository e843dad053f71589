"""Which parser reads which media type, and the one entry point that parses a file.

The table is a literal mapping from media type to ``module:Class``; a parser
module is imported the first time a document of its type arrives, so a worker
that only sees CSV files never loads pdfium.
"""

from __future__ import annotations

import contextlib
import importlib
from functools import cache
from pathlib import Path

from docworker.document import Document, Warning
from docworker.errors import UnsupportedFormat
from docworker.formats.base import ParseContext, Parser, Source
from docworker.formats.detect import Detection, detect

_WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_SHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SLIDES = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

PARSERS: dict[str, str] = {
    "application/pdf": "docworker.formats.pdf.parser:PdfParser",
    _WORD: "docworker.formats.ooxml.word:DocxParser",
    "application/vnd.ms-word.document.macroEnabled.12": "docworker.formats.ooxml.word:DocxParser",
    _SHEET: "docworker.formats.ooxml.spreadsheet:XlsxParser",
    "application/vnd.ms-excel.sheet.macroEnabled.12": (
        "docworker.formats.ooxml.spreadsheet:XlsxParser"
    ),
    _SLIDES: "docworker.formats.ooxml.slides:PptxParser",
    "application/vnd.ms-powerpoint.presentation.macroEnabled.12": (
        "docworker.formats.ooxml.slides:PptxParser"
    ),
    "text/html": "docworker.formats.web.html:HtmlParser",
    "application/xhtml+xml": "docworker.formats.web.html:HtmlParser",
    "text/markdown": "docworker.formats.text.markdown:MarkdownParser",
    "text/x-markdown": "docworker.formats.text.markdown:MarkdownParser",
    "text/plain": "docworker.formats.text.plain:TextParser",
    "text/csv": "docworker.formats.text.delimited:DelimitedParser",
    "text/tab-separated-values": "docworker.formats.text.delimited:DelimitedParser",
    "application/json": "docworker.formats.text.jsondoc:JsonParser",
    "application/x-ndjson": "docworker.formats.text.jsondoc:JsonParser",
    "application/xml": "docworker.formats.text.xml:XmlParser",
    "text/xml": "docworker.formats.text.xml:XmlParser",
    "application/vnd.oasis.opendocument.text": "docworker.formats.odf.parser:OpenDocumentParser",
    "application/vnd.oasis.opendocument.spreadsheet": (
        "docworker.formats.odf.parser:OpenDocumentParser"
    ),
    "application/vnd.oasis.opendocument.presentation": (
        "docworker.formats.odf.parser:OpenDocumentParser"
    ),
    "application/epub+zip": "docworker.formats.web.epub:EpubParser",
    "application/rtf": "docworker.formats.rtf.parser:RtfParser",
    "message/rfc822": "docworker.formats.mail.parser:EmlParser",
    "application/vnd.ms-outlook": "docworker.formats.mail.parser:MsgParser",
    "text/vtt": "docworker.formats.text.subtitles:SubtitleParser",
    "application/x-subrip": "docworker.formats.text.subtitles:SubtitleParser",
    "application/ttml+xml": "docworker.formats.text.subtitles:SubtitleParser",
    "image/png": "docworker.formats.image.parser:ImageParser",
    "image/jpeg": "docworker.formats.image.parser:ImageParser",
    "image/tiff": "docworker.formats.image.parser:ImageParser",
    "image/webp": "docworker.formats.image.parser:ImageParser",
    "image/gif": "docworker.formats.image.parser:ImageParser",
    "image/bmp": "docworker.formats.image.parser:ImageParser",
    "image/heic": "docworker.formats.image.parser:ImageParser",
    "image/heif": "docworker.formats.image.parser:ImageParser",
    "image/avif": "docworker.formats.image.parser:ImageParser",
    "application/msword": "docworker.formats.ooxml.legacy:LegacyOfficeParser",
    "application/vnd.ms-excel": "docworker.formats.ooxml.legacy:LegacyOfficeParser",
    "application/vnd.ms-powerpoint": "docworker.formats.ooxml.legacy:LegacyOfficeParser",
    "application/x-encrypted-ooxml": "docworker.formats.ooxml.encrypted:EncryptedOfficeParser",
}


#: The types whose parser reads them through LibreOffice (it converts them first).
READ_THROUGH_LIBREOFFICE = frozenset(
    mime for mime, target in PARSERS.items() if target.endswith(":LegacyOfficeParser")
)


@cache
def _load(target: str) -> Parser:
    module_name, _, class_name = target.partition(":")
    parser_class = getattr(importlib.import_module(module_name), class_name)
    parser: Parser = parser_class()
    return parser


def parser_for(mime: str) -> Parser:
    """The parser for ``mime``, or :class:`UnsupportedFormat`."""
    target = PARSERS.get(mime)
    if target is None:
        raise UnsupportedFormat(mime)
    try:
        return _load(target)
    except ImportError as exc:
        raise UnsupportedFormat(
            mime, f"the reader for {mime} is not installed here ({exc})"
        ) from None


def parser_modules() -> list[str]:
    """The modules of every parser (for a template process to import once, see
    :mod:`docworker.jobs.template`)."""
    return sorted({target.partition(":")[0] for target in PARSERS.values()})


def preload() -> None:
    """Import every parser now, so that a worker's first job does not pay for it.

    A parser whose module cannot be imported here is left for its first document,
    which then fails with a clear error instead of the whole worker.
    """
    for target in sorted(set(PARSERS.values())):
        with contextlib.suppress(ImportError):
            _load(target)


def parse_path(
    path: Path, ctx: ParseContext, *, name: str | None = None, mime: str | None = None
) -> Document:
    """Detect ``path``'s type (unless ``mime`` is given) and parse it with its parser; its
    text is cut at ``ctx.limits.max_text_chars`` (:func:`cap_text`)."""
    detection = Detection(mime=mime, format="", how="given") if mime else detect(path, name)
    parser = parser_for(detection.mime)
    document = parser.parse(Source(path=path, mime=detection.mime, name=name), ctx)
    mismatch = None if mime else type_mismatch(detection, name or path.name)
    if mismatch is not None:
        warning = Warning(code=TYPE_MISMATCH, message=mismatch)
        document = document.model_copy(update={"warnings": [*document.warnings, warning]})
    return cap_text(document, ctx.limits.max_text_chars)


#: The warning of a file whose name claims another type than its content shows.
TYPE_MISMATCH = "type-mismatch"
#: What a file's extension claims it is, for the extensions that name one type: a file
#: is read as its content says, and a warning tells when the name said otherwise.
_CLAIMS = {
    "pdf": "pdf",
    "docx": "docx",
    "xlsx": "xlsx",
    "pptx": "pptx",
    "doc": "doc",
    "xls": "xls",
    "ppt": "ppt",
    "odt": "odt",
    "ods": "ods",
    "odp": "odp",
    "rtf": "rtf",
    "epub": "epub",
    "eml": "eml",
    "msg": "msg",
    "zip": "zip",
    "7z": "7z",
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "gif": "image",
    "tif": "image",
    "tiff": "image",
    "webp": "image",
    "txt": "text",
    "md": "markdown",
    "csv": "csv",
    "tsv": "csv",
    "json": "json",
    "xml": "xml",
    "html": "html",
    "htm": "html",
}
#: Families of plain text, told apart by their content more than by any name: a name
#: of one and content of another is no mismatch (a .txt of Markdown, an .xml of XHTML).
_TEXT_FAMILIES = frozenset({"text", "markdown", "csv", "json", "xml", "html", "subtitles"})
#: Content that is the claimed type in another wrapping: an encrypted Office package.
_SAME_CLAIM = {"encrypted-ooxml": frozenset({"docx", "xlsx", "pptx"})}


def type_mismatch(detection: Detection, name: str) -> str | None:
    """What to warn when ``name``'s extension claims another type than the content
    detected (a ``.pdf`` that is plain text), or None."""
    extension = Path(name).suffix.lower().lstrip(".")
    claimed = _CLAIMS.get(extension)
    found = detection.format
    if claimed is None or claimed == found or claimed in _SAME_CLAIM.get(found, ()):
        return None
    if claimed in _TEXT_FAMILIES and found in _TEXT_FAMILIES:
        return None
    return (
        f"the file is named .{extension} ({claimed}) but its content is {found} "
        f"({detection.mime}): it was read as {found}"
    )


#: The warning of a document whose text was cut at the limit.
TEXT_TRUNCATED = "text-truncated"


def cap_text(document: Document, limit: int) -> Document:
    """``document`` with at most ``limit`` characters of text in its blocks.

    Blocks are kept in reading order while they fit; the text block that passes the
    limit is cut there, a table that does not fit whole is left out, and so is every
    block after them. A :data:`TEXT_TRUNCATED` warning says how much was left out;
    the metadata still describes the whole document (its counts, its pages).
    """
    total = 0
    for index, block in enumerate(document.blocks):
        size = document.text_size(block)
        if total + size <= limit:
            total += size
            continue
        kept = document.blocks[:index]
        room = limit - total
        if block.table is None and room > 0:
            kept = [*kept, block.model_copy(update={"text": block.text[:room]})]
        full = total + sum(document.text_size(b) for b in document.blocks[index:])
        warning = Warning(
            code=TEXT_TRUNCATED,
            message=f"the text was cut at {limit:,} of its {full:,} characters "
            "(limits.max_text_chars): what follows is left out",
        )
        return document.model_copy(
            update={"blocks": kept, "warnings": [*document.warnings, warning]}
        )
    return document
