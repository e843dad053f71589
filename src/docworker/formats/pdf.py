"""PDF documents through pdfium: text in reading order, headings, links, metadata.

pdfium (through pypdfium2) opens and repairs the file and orders each page's
characters into lines, which :mod:`docworker.formats.pdf_text` reads;
:mod:`docworker.formats.pdf_layout` turns them into paragraphs, columns and
headings. Per-character calls into pdfium are what
costs time, so a line is measured from a few of its characters only (its
first and last for the box, three samples for the font size). When only the
text is wanted (``ctx.structure`` false) fonts are not read at all, and no
headings, list items, running headers or links are looked for.

Pages are read one at a time and closed straight away, so a long document
needs memory for its text only. A page pdfium cannot load becomes a warning;
a page without a text layer yields no blocks and a ``no-text-layer`` warning,
which is where OCR takes over. Files attached to the PDF are listed and read
through :mod:`docworker.formats.embedded`, as every format's embedded files are.
Every pdfium failure leaves this module as a :mod:`docworker.errors` input error.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from docworker.document import (
    BBox,
    Block,
    BlockKind,
    BlockSource,
    Document,
    DocumentBuilder,
    Link,
    Metadata,
)
from docworker.errors import CorruptDocument, PasswordRequired, WrongPassword
from docworker.formats.base import ParseContext, Source
from docworker.formats.embedded import append_embedded
from docworker.formats.pdf_layout import (
    HeadingScale,
    Style,
    TextBlock,
    could_be_heading,
    group_blocks,
    reading_order,
    running_key,
)
from docworker.formats.pdf_text import (
    Box,
    PageFrame,
    PageText,
    annotation_links,
    printable,
    read_lines,
    written_links,
)

FORMAT = "pdf"

_OPEN_ERRORS = {
    pdfium_c.FPDF_ERR_FILE: "the file could not be read",
    pdfium_c.FPDF_ERR_FORMAT: "it is not a PDF file, or it is damaged beyond repair",
    pdfium_c.FPDF_ERR_SECURITY: "it uses an unsupported security handler",
    pdfium_c.FPDF_ERR_PAGE: "its page tree is damaged",
}
_PERMISSIONS = {
    "print": 1 << 2,
    "modify": 1 << 3,
    "copy": 1 << 4,
    "annotate": 1 << 5,
    "fill_forms": 1 << 8,
    "extract_for_accessibility": 1 << 9,
    "assemble": 1 << 10,
    "print_high_quality": 1 << 11,
}
_FORM_TYPES = {
    pdfium_c.FORMTYPE_ACRO_FORM: "acroform",
    pdfium_c.FORMTYPE_XFA_FULL: "xfa",
    pdfium_c.FORMTYPE_XFA_FOREGROUND: "xfa-foreground",
}
_PDF_DATE = re.compile(
    r"\s*(?:D\s*:)?\s*(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?"
    r"\s*(?:([Zz+-])\s*(\d{1,2})?\s*'?\s*(\d{2})?)?"
)


class PdfParser:
    """PDF files through pdfium: text layer, headings from font sizes, links, metadata."""

    name: ClassVar[str] = FORMAT
    media_types: ClassVar[frozenset[str]] = frozenset({"application/pdf"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        pdf = _open(source.path, ctx.password)
        try:
            builder = DocumentBuilder(FORMAT, source.mime, read_metadata(pdf))
            total = len(pdf)
            structure = _Structure() if ctx.structure else None
            reader = _PageReader(pdf, builder, structure)
            for number in ctx.each_page(ctx.select_pages(total), total):
                reader.read(number)
            if structure is not None:
                structure.apply(builder.metadata, len(builder.document.pages))
            _attach_files(pdf, builder, ctx)
        finally:
            pdf.close()
        return builder.finish()


def _open(path: Path, password: str | None) -> Any:
    """The pdfium document, or the input error that explains why it cannot be opened."""
    try:
        pdf = _load(path, password or None)
    except PasswordRequired:
        if not password:
            raise
        # pdfium refuses a password even for a file that opens without one (only
        # an owner password set), so such a file is opened as if none were given.
        try:
            pdf = _load(path, None)
        except PasswordRequired:
            raise WrongPassword(FORMAT) from None
    if len(pdf) == 0:
        pdf.close()
        raise CorruptDocument(FORMAT, "it has no readable pages")
    return pdf


def _load(path: Path, password: str | None) -> Any:
    try:
        return pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise PasswordRequired(FORMAT) from exc
        raise CorruptDocument(FORMAT, _OPEN_ERRORS.get(code, "pdfium could not open it")) from exc


# -- metadata ----------------------------------------------------------------------------


def read_metadata(pdf: Any) -> Metadata:
    """The document information dictionary, the page count and a few cheap facts."""
    info = {key: _clean(value) for key, value in pdf.get_metadata_dict(skip_empty=True).items()}
    encrypted = pdfium_c.FPDF_GetSecurityHandlerRevision(pdf.raw) != -1
    extra: dict[str, Any] = {}
    version = pdf.get_version()
    if version:
        extra["pdf_version"] = f"{version // 10}.{version % 10}"
    if pdf.is_tagged():
        extra["tagged"] = True
    form = _FORM_TYPES.get(pdf.get_formtype())
    if form:
        extra["form"] = form
    if encrypted:
        granted = pdfium_c.FPDF_GetDocPermissions(pdf.raw)
        extra["permissions"] = {name: bool(granted & bit) for name, bit in _PERMISSIONS.items()}
    return Metadata(
        title=info.get("Title") or None,
        authors=_authors(info.get("Author")),
        subject=info.get("Subject") or None,
        keywords=_split(info.get("Keywords"), ",;"),
        creator=info.get("Creator") or None,
        producer=info.get("Producer") or None,
        created=parse_pdf_date(info.get("CreationDate")),
        modified=parse_pdf_date(info.get("ModDate")),
        encrypted=encrypted,
        page_count=len(pdf),
        extra=extra,
    )


def _clean(value: str) -> str:
    return " ".join(printable(value).split())


def _split(value: str | None, separators: str) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in re.split(f"[{separators}]", value) if part.strip()]


def _authors(value: str | None) -> list[str]:
    """Names from an Author entry: split on semicolons, or on commas and "and" when
    every part is a full name (so "Smith, John" stays one author)."""
    names = _split(value, ";")
    if len(names) == 1:
        parts = [p.strip() for p in re.split(r",\s*(?:and\s+)?|\s+and\s+", names[0]) if p.strip()]
        if len(parts) > 1 and all(len(part.split()) > 1 for part in parts):
            return parts
    return names


def parse_pdf_date(value: str | None) -> datetime | None:
    """A PDF date (``D:YYYYMMDDHHmmSS+HH'mm'``, any tail missing) or None if it is garbage.

    Dates without a zone are returned naive, since the PDF does not say where they are.
    """
    match = _PDF_DATE.match(value or "")
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups()[:6])
    sign, zone_hours, zone_minutes = match.group(7, 8, 9)
    try:
        zone: timezone | None = None
        if sign in ("Z", "z"):
            zone = UTC
        elif sign:
            offset = timedelta(hours=int(zone_hours or 0), minutes=int(zone_minutes or 0))
            zone = timezone(-offset if sign == "-" else offset)
        return datetime(year, month or 1, day or 1, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None


def _attach_files(pdf: Any, builder: DocumentBuilder, ctx: ParseContext) -> None:
    """List the embedded files and read them, as every format's embedded files are read."""
    for index in range(pdf.count_attachments()):
        try:
            attachment = pdf.get_attachment(index)
            name = attachment.get_name()
            data = bytes(attachment.get_data())
        except pdfium.PdfiumError:
            builder.warn("attachment-unreadable", f"embedded file {index + 1} could not be read")
            continue
        append_embedded(builder, data, name, ctx)


# -- pages -------------------------------------------------------------------------------


class _PageReader:
    """Reads pages one at a time into the builder, closing each as soon as it is read."""

    def __init__(self, pdf: Any, builder: DocumentBuilder, structure: _Structure | None) -> None:
        self.pdf = pdf
        self.builder = builder
        self.structure = structure

    def read(self, number: int) -> None:
        try:
            page = self.pdf[number - 1]
        except pdfium.PdfiumError:
            self.builder.warn("page-unreadable", f"page {number} could not be loaded", page=number)
            return
        try:
            left, bottom, right, top = page.get_bbox()
            frame = PageFrame(left, bottom, right, top, rotation=page.get_rotation() % 360)
            added = self.builder.add_page(
                number, width=page.get_width(), height=page.get_height(), rotation=frame.rotation
            )
            textpage = page.get_textpage()
            try:
                self._read_text(page, PageText(textpage), frame, number, added.height or 0.0)
            finally:
                textpage.close()
        except pdfium.PdfiumError:
            message = f"the text of page {number} could not be read"
            self.builder.warn("page-unreadable", message, page=number)
        finally:
            page.close()

    def _read_text(
        self, page: Any, text: PageText, frame: PageFrame, number: int, height: float
    ) -> None:
        if not any(c.isalnum() for c in text.text):
            self.builder.warn("no-text-layer", f"page {number} has no text layer", page=number)
            return
        structure = self.structure
        lines = read_lines(text, frame, measure_fonts=structure is not None)
        placed: list[tuple[Block, TextBlock]] = []
        for block in reading_order(group_blocks(lines)):
            added = self._add_block(block, text, number)
            if added is not None:
                placed.append((added, block))
                if structure is not None:
                    structure.note(added, block, number, height)
        if structure is not None and placed:
            _place_links(annotation_links(self.pdf, page, text, frame), placed)

    def _add_block(self, block: TextBlock, text: PageText, number: int) -> Block | None:
        content = text.clean(block.text)
        kind = BlockKind.PARAGRAPH
        fields: dict[str, Any] = {}
        if self.structure is not None:
            # Only what Markdown, HTML and JSON show: plain text has no lists or links.
            fields["links"] = written_links(content)
            if block.bulleted:
                kind, content = BlockKind.LIST_ITEM, content.lstrip()[1:].lstrip()
                fields.update(level=1, ordered=False)
        bbox = BBox(x0=block.x0, y0=block.y0, x1=block.x1, y1=block.y1)
        return self.builder.add(
            kind, content, page=number, bbox=bbox, source=BlockSource.TEXT_LAYER, **fields
        )


def _place_links(
    links: list[tuple[Box, Link]],
    placed: list[tuple[Block, TextBlock]],
) -> None:
    """Give each link to the block that holds the middle of its box."""
    for (x0, y0, x1, y1), link in links:
        x, y = (x0 + x1) / 2, (y0 + y1) / 2
        for block, geometry in placed:
            if geometry.x0 <= x <= geometry.x1 and geometry.y0 <= y <= geometry.y1:
                if all(_bare(known.url) != _bare(link.url) for known in block.links):
                    block.links.append(link)
                break


def _bare(url: str) -> str:
    """A URL without scheme and trailing slash, so an annotation and the text's URL match."""
    return re.sub(r"^[a-z]+://", "", url.lower()).rstrip("/")


# -- document-wide structure -------------------------------------------------------------


class _Structure:
    """What can only be decided once every page is read: headings and running text.

    The body size is only known at the end, and a running header only shows
    by coming back page after page, so the blocks that may be either are kept
    and given their kind then.
    """

    def __init__(self) -> None:
        self.sizes: Counter[float] = Counter()
        self.candidates: list[tuple[Block, TextBlock, int]] = []
        self.running: dict[tuple[str, str], list[Block]] = defaultdict(list)

    def note(self, block: Block, geometry: TextBlock, page: int, page_height: float) -> None:
        for line in geometry.lines:
            self.sizes[line.size] += line.chars
        key = running_key(geometry, page_height)
        if key is not None:
            self.running[key].append(block)
        if block.kind is BlockKind.PARAGRAPH and could_be_heading(geometry):
            self.candidates.append((block, geometry, page))

    def apply(self, metadata: Metadata, pages: int) -> None:
        """Give the kept blocks their kinds, and the document a title if it has none."""
        self._headings(metadata)
        self._running_text(pages)

    def _headings(self, metadata: Metadata) -> None:
        scale = HeadingScale.measure(self.sizes, Counter(g.style for _, g, _ in self.candidates))
        title: tuple[Style, Block] | None = None
        for block, geometry, page in self.candidates:
            level = scale.level(geometry)
            if level is None:
                continue
            block.kind, block.level = BlockKind.HEADING, level
            if page == 1 and (title is None or geometry.style > title[0]):
                title = (geometry.style, block)
        if metadata.title is None and title is not None:
            metadata.title = title[1].text

    def _running_text(self, pages: int) -> None:
        # Three pages make a pattern; a short document shows it on two.
        needed = min(3, max(2, pages // 2))
        for (place, _), blocks in self.running.items():
            if len({b.page for b in blocks}) >= needed:
                kind = BlockKind.HEADER if place == "header" else BlockKind.FOOTER
                for block in blocks:
                    block.kind, block.level = kind, None
