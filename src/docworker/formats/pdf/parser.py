"""PDF documents through pdfium: text in reading order, headings, tables, links, metadata.

pdfium (through pypdfium2) opens and repairs the file and orders each page's
characters into lines, which :mod:`docworker.formats.pdf.text` reads;
:mod:`docworker.formats.pdf.layout` turns them into paragraphs, columns and
headings. Per-character calls into pdfium are what costs time, so a line is
measured from a few of its characters only (its first and last for the box,
three samples for the font size). Lines are laid out on the page turned so
that its text is upright, which is how it is displayed but for a page turned
without its text, or text set sideways; boxes are given on the page as
displayed. When only the text is wanted (``ctx.structure`` false) fonts are
not read at all, and no headings, list items, running headers, tables,
captions or links are looked for.

With structure, what each page draws is glanced at (:mod:`docworker.formats.pdf.graphics`):
pages ruled into a grid have their tables found (:mod:`docworker.formats.pdf.tables`),
tables without a grid are told from their words' alignment
(:mod:`docworker.formats.pdf.aligned`), and a block naming a figure or table right next
to one is its caption. Once every page is read, the short lines in the top or bottom
margin that come back page after page are running headers and footers, even one
set with no gap against the body and so read as the first (last) line of its block:
that line then becomes a block of its own.

Pages are read one at a time and closed straight away, so a long document
needs memory for its text only. A page pdfium cannot load becomes a warning.
A page without a usable text layer (none, garbage, or a scan) is rendered and
read by the caller's OCR reader as ``ctx.ocr_policy`` asks
(:mod:`docworker.formats.pdf.ocr`); without a reader, or with OCR off, a page
without text yields no blocks and a ``no-text-layer`` warning. Under ``auto``,
a page read from its text layer that also shows a picture of text (a pasted
scan, a screenshot) is mixed: the pictures the text layer leaves bare are read
by OCR too, their paragraphs put in the page's reading order. AcroForm fields
become ``metadata.extra["form_fields"]`` (:mod:`docworker.formats.pdf.metadata`).
Files attached to the PDF are listed and read through
:mod:`docworker.formats.embedded`, as every format's embedded files are. Every
pdfium failure leaves this module as a :mod:`docworker.errors` input error.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
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
from docworker.formats.base import OcrPage, OcrReader, ParseContext, Source
from docworker.formats.embedded import append_embedded
from docworker.formats.ocr_blocks import add_ocr_blocks
from docworker.formats.pdf.aligned import find_aligned_tables
from docworker.formats.pdf.graphics import PageGraphics, read_graphics
from docworker.formats.pdf.layout import (
    Box,
    HeadingScale,
    Line,
    RunningEdge,
    Style,
    TextBlock,
    could_be_heading,
    cut_out,
    group_blocks,
    interleave,
    is_caption,
    reading_order,
    running_edge,
    running_key,
)
from docworker.formats.pdf.metadata import FormFields, read_metadata
from docworker.formats.pdf.ocr import (
    picture_regions,
    render_page,
    render_region,
    scanned,
    usable_text,
)
from docworker.formats.pdf.tables import FoundTable, find_tables
from docworker.formats.pdf.text import (
    PageFrame,
    PageText,
    annotation_links,
    close_text,
    load_text,
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
        pdf = open_pdf(source.path, ctx.password)
        try:
            total = len(pdf)
            numbers = ctx.select_pages(total)
            builder = DocumentBuilder(FORMAT, source.mime, read_metadata(pdf), limits=ctx.limits)
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


def open_pdf(path: Path, password: str | None) -> Any:
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


def pages_to_ocr(
    path: Path, ctx: ParseContext, *, sample: int | None = None, at_least: int = 1
) -> list[int]:
    """The selected pages a parse with ``ctx`` reads whole by OCR: every page under
    ``force``, pages without a usable text layer under ``auto``. Cheap (text layers
    only, nothing rendered), so that the OCR can be planned before it runs.

    With ``sample``, that many pages spread over the selection are looked at first,
    and when none of them needs OCR the answer is no page: a document with a text
    layer costs a few pages' look, not one of every page (1 s for 619 pages).

    With ``at_least``, a selection of fewer pages is not looked at: no page (a planner
    that splits from that many pages up has nothing to plan).
    """
    if ctx.ocr is None or ctx.ocr_policy == "off":
        return []
    pdf = open_pdf(path, ctx.password)
    try:
        numbers = ctx.select_pages(len(pdf))
        if len(numbers) < at_least:
            return []
        if ctx.ocr_policy == "force":
            return numbers
        if sample is not None and len(numbers) > sample:
            step = len(numbers) / sample
            probe = [numbers[int(i * step)] for i in range(sample)]
            if not any(_page_is_scan(pdf, number) for number in probe):
                return []
        return [number for number in numbers if _page_is_scan(pdf, number)]
    except pdfium.PdfiumError:
        return []
    finally:
        pdf.close()


def _page_is_scan(pdf: Any, number: int) -> bool:
    handle = pdf[number - 1]
    try:
        textpage = load_text(handle)
        try:
            return _scan_page(handle, PageText(textpage), _display_frame(handle))
        finally:
            close_text(textpage)
    finally:
        handle.close()


def _display_frame(handle: Any) -> PageFrame:
    """The page as displayed: its box, with its rotation applied."""
    left, bottom, right, top = handle.get_bbox()
    return PageFrame(left, bottom, right, top, rotation=handle.get_rotation() % 360)


def _scan_page(handle: Any, text: PageText, display: PageFrame) -> bool:
    """Whether a page has no usable text layer, so that ``auto`` reads it by OCR."""
    content = text.text
    if not usable_text(content):
        # A page that draws nothing at all is blank, not a scan.
        return bool(pdfium_c.FPDFPage_CountObjects(handle.raw))
    if len(content) >= _SHORT_TEXT:
        return False
    graphics = read_graphics(handle, display, rules=False)
    share = graphics.image_share(display.width, display.height)
    return scanned(sum(map(str.isalnum, content)), share)


# -- pages -------------------------------------------------------------------------------

#: pdfium's page rotations (quarter turns) in degrees, as pypdfium2 gives them.
_DEGREES = {0: 0, 1: 90, 2: 180, 3: 270}


class _PlainPage:
    """A page loaded straight through pdfium, for a read that never renders it.

    The few of pypdfium2's page methods a text read calls, done as it does them.
    pypdfium2's page object carries a finalizer and a place among its document's
    children, which cost more per page than a plain-text read's own work on it.
    """

    __slots__ = ("raw",)

    def __init__(self, pdf: Any, index: int) -> None:
        self.raw = pdfium_c.FPDF_LoadPage(pdf.raw, index)
        if not self.raw:
            raise pdfium.PdfiumError("Failed to load page.")

    def get_bbox(self) -> Box:
        rect = pdfium_c.FS_RECTF()
        if not pdfium_c.FPDF_GetPageBoundingBox(self.raw, rect):
            raise pdfium.PdfiumError("Failed to get page bounding box.")
        return rect.left, rect.bottom, rect.right, rect.top

    def get_rotation(self) -> int:
        rotation: int = pdfium_c.FPDFPage_GetRotation(self.raw)
        if rotation == -1:
            raise pdfium.PdfiumError("Failed to get page rotation.")
        return _DEGREES[rotation]

    def get_width(self) -> float:
        width: float = pdfium_c.FPDF_GetPageWidthF(self.raw)
        return width

    def get_height(self) -> float:
        height: float = pdfium_c.FPDF_GetPageHeightF(self.raw)
        return height

    def close(self) -> None:
        pdfium_c.FPDF_ClosePage(self.raw)


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


@dataclass(frozen=True)
class _PictureText:
    """What OCR read in a picture on a page read from its text layer, and where it sits."""

    #: The picture's box in the page's layout frame, which places its text among the blocks.
    box: Box
    #: Only the paragraphs read with confidence enough.
    ocr: OcrPage
    #: The points one pixel of the image read measures.
    points: float
    #: The image's top-left corner on the page as displayed.
    origin: tuple[float, float]

    @property
    def word_confidences(self) -> list[float]:
        """The confidence of each word read."""
        return [word.confidence for p in self.ocr.paragraphs for word in p.words]


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
        #: The reader of pictures on pages read from their text layer: under ``auto`` only,
        #: since ``force`` reads those pages whole.
        self.picture_ocr: OcrReader | None = ctx.ocr if ctx.ocr_policy == "auto" else None

    def read(self, number: int) -> None:
        try:
            handle = self._load(number)
        except pdfium.PdfiumError:
            self.builder.warn("page-unreadable", f"page {number} could not be loaded", page=number)
            return
        try:
            self.forms.read(handle, number)
            display = _display_frame(handle)
            model = self.builder.add_page(
                number,
                width=handle.get_width(),
                height=handle.get_height(),
                rotation=display.rotation,
            )
            textpage = load_text(handle)
            try:
                text = PageText(textpage)
                layout = display.turned(text.upright_turn())
                page = _Page(handle, text, display, layout, model)
                if self.ocr is not None and self._needs_ocr(page):
                    self._read_image(page, self.ocr)
                else:
                    self._read_text(page)
            finally:
                close_text(textpage)
        except pdfium.PdfiumError:
            message = f"the text of page {number} could not be read"
            self.builder.warn("page-unreadable", message, page=number)
        finally:
            handle.close()

    def _load(self, number: int) -> Any:
        """Page ``number`` through pypdfium2 where it may be rendered (for OCR) or the
        form environment is open; straight through pdfium (:class:`_PlainPage`) otherwise."""
        if self.ocr is not None or self.pdf.formenv:
            return self.pdf[number - 1]
        return _PlainPage(self.pdf, number - 1)

    def finish(self) -> None:
        """Decide what needed every page read: headings, running headers and footers."""
        if self.structure is not None:
            self.structure.apply(self.builder, len(self.builder.document.pages))

    # -- OCR --

    def _needs_ocr(self, page: _Page) -> bool:
        """Whether the page is read by OCR rather than from its text layer (see pdf_ocr)."""
        return self.ctx.ocr_policy == "force" or _scan_page(page.handle, page.text, page.display)

    def _read_image(self, page: _Page, reader: OcrReader) -> None:
        read_before = self.ctx.ocr_pages
        if read_before is not None and page.number in read_before:
            before = read_before[page.number]
            if before is None:
                page.model.text_source = TextSource.OCR
                message = f"page {page.number} could not be read by OCR"
                self.builder.warn("ocr-failed", message, page=page.number)
                return
            ocr, points = before.page, before.points_per_pixel
        else:
            image, points = render_page(page.handle, self.ctx.ocr_dpi, self.ctx.limits.max_pixels)
            ocr = reader.read(image, languages=self.ctx.ocr_languages)
        page.model.text_source, page.model.confidence = TextSource.OCR, ocr.confidence
        if not add_ocr_blocks(self.builder, page.number, ocr, scale=points):
            message = f"OCR found no text on page {page.number}"
            self.builder.warn("ocr-no-text", message, page=page.number)

    def _read_pictures(
        self, page: _Page, lines: list[Line], graphics: PageGraphics | None
    ) -> list[_PictureText]:
        """OCR of the pictures the text layer leaves bare (see pdf_ocr); the page is then mixed."""
        reader = self.picture_ocr
        if reader is None or graphics is None or not graphics.images:
            return []
        layout = page.layout
        regions = picture_regions(
            graphics.images, lines, layout.width, layout.height, self.ctx.mixed_pages
        )
        found = [
            picture
            for picture in (self._read_picture(page, region, lines, reader) for region in regions)
            if picture is not None
        ]
        if found:
            page.model.text_source = TextSource.MIXED
            page.model.confidence = _mean(
                [c for picture in found for c in picture.word_confidences]
            )
        return found

    def _read_picture(
        self, page: _Page, region: Box, lines: list[Line], reader: OcrReader
    ) -> _PictureText | None:
        """The text of one picture, None if none was read with confidence enough.

        The picture is rendered on its own, the text layer's lines over it
        blanked out; paragraphs read with too little confidence, or with no
        letter or digit (a photo's noise, a diagram's arrows), are dropped.
        """
        shown = page.layout.moved_to(page.display, region)
        rendered = render_region(page.handle, shown, self.ctx.ocr_dpi, self.ctx.limits.max_pixels)
        rendered.blank_out(
            [
                page.layout.moved_to(page.display, _box(line))
                for line in lines
                if _overlap(_box(line), region)
            ]
        )
        ocr = reader.read(rendered.image, languages=self.ctx.ocr_languages, picture=True)
        least = self.ctx.mixed_pages.min_confidence
        kept = tuple(p for p in ocr.paragraphs if p.confidence >= least and _wordy(p.text))
        if not kept:
            return None
        confidence = _mean([word.confidence for paragraph in kept for word in paragraph.words])
        ocr = replace(ocr, paragraphs=kept, confidence=confidence)
        return _PictureText(region, ocr, rendered.points, rendered.origin)

    def _add_picture(self, page: _Page, picture: _PictureText) -> None:
        add_ocr_blocks(
            self.builder, page.number, picture.ocr, scale=picture.points, origin=picture.origin
        )

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
        graphics = None
        if self.structure is not None or self.picture_ocr is not None:
            # Rules are only wanted for tables, pictures for captions and OCR.
            graphics = read_graphics(page.handle, page.layout, rules=self.structure is not None)
        pictures = self._read_pictures(page, lines, graphics)
        if self.structure is not None:
            assert graphics is not None
            self._read_structure(page, lines, blocks, graphics, pictures)
            return
        items: list[TextBlock | _PictureText] = list(blocks)
        if pictures:
            items = interleave(blocks, [_box(b) for b in blocks], [(p.box, p) for p in pictures])
        for item in items:
            if isinstance(item, _PictureText):
                self._add_picture(page, item)
            else:
                self._add_block(page, item, BlockKind.PARAGRAPH)

    def _no_ocr_reason(self) -> str:
        if self.ctx.ocr_policy == "off":
            return " and OCR is off"
        if self.ctx.ocr is None:
            return " and no OCR engine is available"
        return ""

    def _read_structure(
        self,
        page: _Page,
        lines: list[Line],
        blocks: list[TextBlock],
        graphics: PageGraphics,
        pictures: list[_PictureText],
    ) -> None:
        """Add the blocks, tables in place of the lines they hold, captions told, links
        placed, the pictures' text in its place."""
        assert self.structure is not None
        found: list[FoundTable] = []
        if graphics.has_grid():
            found = find_tables(page.handle, page.text, page.layout)
        taken = [table.box for table in found]
        found += find_aligned_tables(lines, page.text, page.layout, graphics.across, taken)
        boxes = [table.box for table in found]
        figures = graphics.figures + boxes
        placed: list[tuple[Block, TextBlock]] = []
        cut = cut_out(blocks, boxes)
        items: list[TextBlock | int | _PictureText] = list(cut)
        if pictures:
            places = [boxes[item] if isinstance(item, int) else _box(item) for item in cut]
            items = interleave(cut, places, [(p.box, p) for p in pictures])
        for item in items:
            if isinstance(item, int):
                self._add_table(page, found[item])
                continue
            if isinstance(item, _PictureText):
                self._add_picture(page, item)
                continue
            kind = BlockKind.CAPTION if is_caption(item, figures) else BlockKind.PARAGRAPH
            block = self._add_block(page, item, kind)
            if block is not None:
                placed.append((block, item))
                self.structure.note(block, item, page.number, page.layout.height)
                edge = running_edge(item, page.layout.height)
                if edge is not None:
                    self.structure.note_edge(block, edge, self._told_apart(page, edge))
        if placed:
            links = annotation_links(self.pdf, page.handle, page.text, page.layout)
            _place_links(links, placed)

    def _add_block(self, page: _Page, block: TextBlock, kind: BlockKind) -> Block | None:
        content = page.text.clean(block.text)
        bbox = page.shown((block.x0, block.y0, block.x1, block.y1))
        if self.structure is None:
            # Plain text has no lists or links; this runs for every block of every page.
            return self.builder.add(
                kind, content, page=page.number, bbox=bbox, source=BlockSource.TEXT_LAYER
            )
        # Only what Markdown, HTML and JSON show.
        fields: dict[str, Any] = {"links": written_links(content)}
        if block.bulleted:
            kind, content = BlockKind.LIST_ITEM, content.lstrip()[1:].lstrip()
            fields.update(level=1, ordered=False)
        return self.builder.add(
            kind, content, page=page.number, bbox=bbox, source=BlockSource.TEXT_LAYER, **fields
        )

    def _told_apart(self, page: _Page, edge: RunningEdge) -> tuple[Block, str]:
        """The line of a running edge as a block of its own (not added yet), and the text
        left to the block it was read into."""
        line, rest = edge.line, edge.rest
        head = Block(
            id="",
            kind=BlockKind.HEADER if edge.key[0] == "header" else BlockKind.FOOTER,
            text=page.text.clean(line.text),
            page=page.number,
            bbox=page.shown((line.x0, line.y0, line.x1, line.y1)),
            source=BlockSource.TEXT_LAYER,
        )
        return head, page.text.clean(rest.text)

    def _add_table(self, page: _Page, found: FoundTable) -> None:
        self.builder.add(
            BlockKind.TABLE,
            page=page.number,
            bbox=page.shown(found.box),
            table=found.table,
            source=BlockSource.TEXT_LAYER,
        )


def _box(item: TextBlock | Line) -> Box:
    return item.x0, item.y0, item.x1, item.y1


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _wordy(text: str) -> bool:
    """Whether OCR text holds a letter or digit: lines and arrows read as dashes do not."""
    return any(char.isalnum() for char in text)


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


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
        #: Running lines read into a block of the body, by key: (the block, its edge, the
        #: line as a block of its own and the text left to the block).
        self.edges: dict[tuple[str, str], list[tuple[Block, RunningEdge, Block, str]]] = (
            defaultdict(list)
        )

    def note(self, block: Block, geometry: TextBlock, page: int, page_height: float) -> None:
        for line in geometry.lines:
            self.sizes[line.size] += line.chars
        key = running_key(geometry, page_height)
        if key is not None:
            self.running[key].append(block)
        if block.kind is BlockKind.PARAGRAPH and could_be_heading(geometry):
            self.candidates.append((block, geometry, page))

    def note_edge(self, block: Block, edge: RunningEdge, apart: tuple[Block, str]) -> None:
        """A block whose first (last) line may be a running header (footer) set against it."""
        self.edges[edge.key].append((block, edge, *apart))

    def apply(self, builder: DocumentBuilder, pages: int) -> None:
        """Give the kept blocks their kinds, and the document a title if it has none."""
        self._split_edges(builder, pages)
        self._headings(builder.metadata)
        self._running_text(pages)

    def _split_edges(self, builder: DocumentBuilder, pages: int) -> None:
        """Tell a running line apart from the block it touches when it comes back on as
        many pages (alone or touching) as a running header or footer must."""
        before: dict[str, list[Block]] = defaultdict(list)
        after: dict[str, list[Block]] = defaultdict(list)
        split: dict[int, TextBlock] = {}
        for key, edges in self.edges.items():
            seen = {b.page for b in self.running.get(key, [])} | {b.page for b, *_ in edges}
            if len(seen) < _running_pages(pages):
                continue
            for block, edge, head, rest in edges:
                if not rest.strip():
                    continue
                block.text = rest
                block.links = [link for link in block.links if link.text in rest]
                (before if key[0] == "header" else after)[block.id].append(head)
                self.running[key].append(head)
                split[id(block)] = edge.rest
        if not split:
            return
        builder.insert(before, after)
        self.candidates = [
            (block, split.get(id(block), geometry), page)
            for block, geometry, page in self.candidates
            if id(block) not in split or could_be_heading(split[id(block)])
        ]

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
        needed = _running_pages(pages)
        for (place, _), blocks in self.running.items():
            if len({b.page for b in blocks}) >= needed:
                kind = BlockKind.HEADER if place == "header" else BlockKind.FOOTER
                for block in blocks:
                    block.kind, block.level = kind, None


def _running_pages(pages: int) -> int:
    """On how many pages a line must come back to be a running header or footer: three
    pages make a pattern; a short document shows it on two."""
    return min(3, max(2, pages // 2))
