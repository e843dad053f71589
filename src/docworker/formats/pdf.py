"""PDF documents through pdfium: text in reading order, headings, tables, links, metadata.

pdfium (through pypdfium2) opens and repairs the file and orders each page's
characters into lines, which :mod:`docworker.formats.pdf_text` reads;
:mod:`docworker.formats.pdf_layout` turns them into paragraphs, columns and
headings. Per-character calls into pdfium are what costs time, so a line is
measured from a few of its characters only (its first and last for the box,
three samples for the font size). Lines are laid out on the page turned so
that its text is upright, which is how it is displayed but for a page turned
without its text, or text set sideways; boxes are given on the page as
displayed. When only the text is wanted (``ctx.structure`` false) fonts are
not read at all, and no headings, list items, running headers, tables,
captions or links are looked for.

With structure, what each page draws is glanced at (:mod:`docworker.formats.pdf_graphics`):
pages ruled into a grid have their tables found (:mod:`docworker.formats.pdf_tables`),
and a block naming a figure or table right next to one is its caption.

Pages are read one at a time and closed straight away, so a long document
needs memory for its text only. A page pdfium cannot load becomes a warning.
A page without a usable text layer (none, garbage, or a scan) is rendered and
read by the caller's OCR reader as ``ctx.ocr_policy`` asks
(:mod:`docworker.formats.pdf_ocr`); without a reader, or with OCR off, a page
without text yields no blocks and a ``no-text-layer`` warning. AcroForm fields
become ``metadata.extra["form_fields"]`` (:mod:`docworker.formats.pdf_metadata`).
Files attached to the PDF are listed and read through
:mod:`docworker.formats.embedded`, as every format's embedded files are. Every
pdfium failure leaves this module as a :mod:`docworker.errors` input error.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
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
    Page,
    TextSource,
)
from docworker.errors import CorruptDocument, PasswordRequired, WrongPassword
from docworker.formats.base import OcrReader, ParseContext, Source
from docworker.formats.embedded import append_embedded
from docworker.formats.ocr_blocks import add_ocr_blocks
from docworker.formats.pdf_graphics import read_graphics
from docworker.formats.pdf_layout import (
    Box,
    HeadingScale,
    Style,
    TextBlock,
    could_be_heading,
    cut_out,
    group_blocks,
    is_caption,
    reading_order,
    running_key,
)
from docworker.formats.pdf_metadata import FormFields, read_metadata
from docworker.formats.pdf_ocr import render_page, scanned, usable_text
from docworker.formats.pdf_tables import FoundTable, find_tables
from docworker.formats.pdf_text import (
    PageFrame,
    PageText,
    annotation_links,
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
#: Pages with less text than this are checked for a scan under it (a stamp on a scan).
_SHORT_TEXT = 400


class PdfParser:
    """PDF files through pdfium: text layer or OCR, headings, tables, links, metadata."""

    name: ClassVar[str] = FORMAT
    media_types: ClassVar[frozenset[str]] = frozenset({"application/pdf"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        pdf = _open(source.path, ctx.password)
        try:
            total = len(pdf)
            numbers = ctx.select_pages(total)
            builder = DocumentBuilder(FORMAT, source.mime, read_metadata(pdf))
            forms = FormFields(pdf)
            reader = _PageReader(pdf, builder, ctx, forms)
            try:
                for number in ctx.each_page(numbers, total):
                    reader.read(number)
            finally:
                fields = forms.close()
            if fields:
                builder.metadata.extra["form_fields"] = fields
            reader.finish()
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


@dataclass(frozen=True)
class _Page:
    """A page being read: pdfium's handles on it, how it is seen, and its model."""

    handle: Any
    text: PageText
    #: The page as displayed (its rotation applied): the frame of the boxes given out.
    display: PageFrame
    #: The page turned so that its text is upright: the frame lines and blocks are laid out in.
    layout: PageFrame
    model: Page

    @property
    def number(self) -> int:
        return self.model.number

    def shown(self, box: Box) -> BBox:
        """A box of the layout as a box of the displayed page."""
        x0, y0, x1, y1 = self.layout.moved_to(self.display, box)
        return BBox(x0=x0, y0=y0, x1=x1, y1=y1)


class _PageReader:
    """Reads pages one at a time into the builder, closing each as soon as it is read."""

    def __init__(
        self, pdf: Any, builder: DocumentBuilder, ctx: ParseContext, forms: FormFields
    ) -> None:
        self.pdf = pdf
        self.builder = builder
        self.ctx = ctx
        self.forms = forms
        self.structure = _Structure() if ctx.structure else None
        #: The reader of pages that need OCR; None when OCR is off or there is no engine.
        self.ocr: OcrReader | None = ctx.ocr if ctx.ocr_policy != "off" else None

    def read(self, number: int) -> None:
        try:
            handle = self.pdf[number - 1]
        except pdfium.PdfiumError:
            self.builder.warn("page-unreadable", f"page {number} could not be loaded", page=number)
            return
        try:
            self.forms.read(handle, number)
            left, bottom, right, top = handle.get_bbox()
            display = PageFrame(left, bottom, right, top, rotation=handle.get_rotation() % 360)
            model = self.builder.add_page(
                number,
                width=handle.get_width(),
                height=handle.get_height(),
                rotation=display.rotation,
            )
            textpage = handle.get_textpage()
            try:
                text = PageText(textpage)
                layout = display.turned(text.upright_turn())
                page = _Page(handle, text, display, layout, model)
                if self.ocr is not None and self._needs_ocr(page):
                    self._read_image(page, self.ocr)
                else:
                    self._read_text(page)
            finally:
                textpage.close()
        except pdfium.PdfiumError:
            message = f"the text of page {number} could not be read"
            self.builder.warn("page-unreadable", message, page=number)
        finally:
            handle.close()

    def finish(self) -> None:
        """Decide what needed every page read: headings, running headers and footers."""
        if self.structure is not None:
            self.structure.apply(self.builder.metadata, len(self.builder.document.pages))

    # -- OCR --

    def _needs_ocr(self, page: _Page) -> bool:
        """Whether the page is read by OCR rather than from its text layer (see pdf_ocr)."""
        if self.ctx.ocr_policy == "force":
            return True
        text = page.text.text
        if not usable_text(text):
            # A page that draws nothing at all is blank, not a scan.
            return bool(pdfium_c.FPDFPage_CountObjects(page.handle.raw))
        if len(text) >= _SHORT_TEXT:
            return False
        graphics = read_graphics(page.handle, page.display, rules=False)
        share = graphics.image_share(page.display.width, page.display.height)
        return scanned(sum(map(str.isalnum, text)), share)

    def _read_image(self, page: _Page, reader: OcrReader) -> None:
        image, points = render_page(page.handle, self.ctx.ocr_dpi, self.ctx.limits.max_pixels)
        ocr = reader.read(image, languages=self.ctx.ocr_languages)
        page.model.text_source, page.model.confidence = TextSource.OCR, ocr.confidence
        if not add_ocr_blocks(self.builder, page.number, ocr, scale=points):
            message = f"OCR found no text on page {page.number}"
            self.builder.warn("ocr-no-text", message, page=page.number)

    # -- text layer --

    def _read_text(self, page: _Page) -> None:
        if not any(c.isalnum() for c in page.text.text):
            message = f"page {page.number} has no text layer{self._no_ocr_reason()}"
            self.builder.warn("no-text-layer", message, page=page.number)
            return
        lines = read_lines(page.text, page.layout, measure_fonts=self.structure is not None)
        if page.layout.rotation:
            # pdfium orders lines as for text upright in user space; turned text comes
            # out in an order of its own (bottom line first, for text running down).
            lines.sort(key=lambda line: (round(line.y1), line.x0))
        blocks = reading_order(group_blocks(lines))
        if self.structure is None:
            for block in blocks:
                self._add_block(page, block, BlockKind.PARAGRAPH)
        else:
            self._read_structure(page, blocks)

    def _no_ocr_reason(self) -> str:
        if self.ctx.ocr_policy == "off":
            return " and OCR is off"
        if self.ctx.ocr is None:
            return " and no OCR engine is available"
        return ""

    def _read_structure(self, page: _Page, blocks: list[TextBlock]) -> None:
        """Add the blocks, tables in place of the lines they hold, captions told, links placed."""
        assert self.structure is not None
        graphics = read_graphics(page.handle, page.layout)
        found: list[FoundTable] = []
        if graphics.has_grid():
            found = find_tables(page.handle, page.text, page.layout)
        boxes = [table.box for table in found]
        figures = graphics.figures + boxes
        placed: list[tuple[Block, TextBlock]] = []
        for item in cut_out(blocks, boxes):
            if isinstance(item, int):
                self._add_table(page, found[item])
                continue
            kind = BlockKind.CAPTION if is_caption(item, figures) else BlockKind.PARAGRAPH
            block = self._add_block(page, item, kind)
            if block is not None:
                placed.append((block, item))
                self.structure.note(block, item, page.number, page.layout.height)
        if placed:
            links = annotation_links(self.pdf, page.handle, page.text, page.layout)
            _place_links(links, placed)

    def _add_block(self, page: _Page, block: TextBlock, kind: BlockKind) -> Block | None:
        content = page.text.clean(block.text)
        fields: dict[str, Any] = {}
        if self.structure is not None:
            # Only what Markdown, HTML and JSON show: plain text has no lists or links.
            fields["links"] = written_links(content)
            if block.bulleted:
                kind, content = BlockKind.LIST_ITEM, content.lstrip()[1:].lstrip()
                fields.update(level=1, ordered=False)
        return self.builder.add(
            kind,
            content,
            page=page.number,
            bbox=page.shown((block.x0, block.y0, block.x1, block.y1)),
            source=BlockSource.TEXT_LAYER,
            **fields,
        )

    def _add_table(self, page: _Page, found: FoundTable) -> None:
        self.builder.add(
            BlockKind.TABLE,
            page=page.number,
            bbox=page.shown(found.box),
            table=found.table,
            source=BlockSource.TEXT_LAYER,
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
