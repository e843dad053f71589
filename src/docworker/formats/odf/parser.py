"""OpenDocument text, spreadsheets and presentations (odt, ods, odp), read from their XML.

The package is opened by :mod:`~docworker.formats.odf.package` (decrypting it
when it was saved with a password); ``content.xml`` holds the body,
``styles.xml`` the named and list styles and the master pages, ``meta.xml``
the metadata. Text is read by :mod:`~docworker.formats.odf.text`, tables by
:mod:`~docworker.formats.odf.tables`.

- **odt**: the body in reading order. A text document has no fixed pages, so a
  page selection is ignored (with a warning); ``metadata.page_count`` is the
  count saved in ``meta.xml``. The master pages' headers and footers are
  HEADER and FOOTER blocks, once each (before and after the body); endnotes
  close the document.
- **ods**: one page per sheet, labelled with its name and opened by a level-2
  HEADING with it (unless ``ctx.sheet_names`` is off), its cells split into
  tables as the Excel reader splits them; the display text of a cell
  (``text:p``) is used, so numbers, dates and percentages read as the author
  saw them. Drawings on the sheet follow.
- **odp**: one page per slide, labelled with its title (else its name), sized
  by its master page; shapes in reading order as the PowerPoint reader orders
  them, the title placeholder a HEADING (the first slide's a TITLE), the
  speaker notes one FOOTNOTE block after the slide.

Embedded charts are read in place. Embedded text documents, spreadsheets and
presentations (folders of the package) and OLE objects (files of it) are read
after the content, in the order it shows them, through the embedded-document
dispatch, each under ``Attachment: <name>`` and on the page showing it.

``ctx.pages`` selects sheets and slides; ``ctx.limits.max_cells`` bounds the
cells of all tables and sheets together.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from lxml import etree

from docworker.document import BBox, BlockKind, Document, DocumentBuilder
from docworker.errors import CorruptDocument, LimitExceeded
from docworker.formats.base import ParseContext, Source
from docworker.formats.embedded import append_embedded, append_ole_object, within_budget
from docworker.formats.odf.package import OdfPackage, read_metadata
from docworker.formats.odf.tables import TABLE, read_grid
from docworker.formats.odf.text import (
    DRAW,
    OFFICE,
    STYLE,
    SVG,
    EmbeddedObject,
    Styles,
    TextReader,
    cell_text,
    flat_text,
)
from docworker.formats.ooxml.package import PACKAGE_ERRORS, translate_errors
from docworker.formats.ooxml.slides import BAND, reading_order
from docworker.formats.ooxml.spreadsheet import Merge, add_sheet_tables

_PREFIX = "application/vnd.oasis.opendocument."
ODT_MIME = f"{_PREFIX}text"
ODS_MIME = f"{_PREFIX}spreadsheet"
ODP_MIME = f"{_PREFIX}presentation"
_KINDS = {ODT_MIME: "odt", ODS_MIME: "ods", ODP_MIME: "odp"}

_PRESENTATION = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}"
_FO = "{urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0}"
#: Where a master page keeps its running headers and footers.
_HEADERS = tuple(f"{STYLE}{name}" for name in ("header", "header-left", "header-first"))
_FOOTERS = tuple(f"{STYLE}{name}" for name in ("footer", "footer-left", "footer-first"))
_LENGTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?|-?\.\d+)\s*(cm|mm|in|pt|pc|px)?\s*$")
_POINTS_PER = {"cm": 72 / 2.54, "mm": 72 / 25.4, "in": 72.0, "pt": 1.0, "pc": 12.0, "px": 0.75}
_SHAPE_TAGS = frozenset(
    f"{DRAW}{name}" for name in ("frame", "custom-shape", "rect", "ellipse", "g", "caption")
)


class OpenDocumentParser:
    """OpenDocument text, spreadsheet and presentation files, encrypted ones included."""

    name: ClassVar[str] = "odf"
    media_types: ClassVar[frozenset[str]] = frozenset(_KINDS)

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        fmt = _KINDS.get(source.mime, "odt")
        with translate_errors(fmt, source.path), zipfile.ZipFile(source.path) as zf:
            package = OdfPackage(zf, fmt, ctx.password)
            content = package.xml("content.xml")
            if content is None:
                raise CorruptDocument(fmt, "the package has no content.xml")
            styles_root = package.xml("styles.xml")
            metadata = read_metadata(package.xml("meta.xml"))
            metadata.encrypted = package.encrypted
            builder = DocumentBuilder(fmt, source.mime, metadata, limits=ctx.limits)
            styles = Styles(content, styles_root)
            body = content.find(f"{OFFICE}body")
            if body is None:
                raise CorruptDocument(fmt, "content.xml has no office:body")
            styles.drop_hidden(body)
            reader = TextReader(builder, styles, ctx.limits.max_cells, _loader(package, builder))
            if fmt == "ods":
                _read_sheets(body, content, reader, ctx)
            elif fmt == "odp":
                _read_slides(body, styles_root, reader, ctx)
            else:
                _read_text(body, styles_root, reader, ctx)
            _append_objects(package, reader, ctx)
            return builder.finish()


def _loader(
    package: OdfPackage, builder: DocumentBuilder
) -> Callable[[str], etree._Element | None]:
    """Reads embedded objects' parts; one that is broken is skipped with a warning."""

    def load(name: str) -> etree._Element | None:
        try:
            return package.xml(name)
        except PACKAGE_ERRORS as exc:
            builder.warn("object-unreadable", f"the embedded {name} could not be read: {exc}")
            return None

    return load


def _append_objects(package: OdfPackage, reader: TextReader, ctx: ParseContext) -> None:
    """Read the embedded documents and OLE objects the content showed, each once, in order."""
    builder = reader.builder
    first: dict[str, EmbeddedObject] = {}
    for found in reader.objects:
        first.setdefault(found.name, found)
    for found in first.values():
        if ctx.cancelled() or not within_budget(builder, _object_size(package, found), ctx):
            continue
        try:
            if found.mime is None:
                data = package.read(found.name)
            else:
                data = package.subdocument(found.name, found.mime)
        except PACKAGE_ERRORS as exc:
            builder.warn("attachment-unreadable", f"{found.name} could not be unpacked: {exc}")
            continue
        if not data:
            continue  # named, but not in the package: its picture stands alone
        if found.mime is None:
            append_ole_object(builder, data, found.name, ctx, path=found.name, page=found.page)
        else:
            name, path = f"{found.name}{found.extension}", f"{found.name}/"
            append_embedded(builder, data, name, ctx, path=path, page=found.page)


def _object_size(package: OdfPackage, found: EmbeddedObject) -> int:
    """An object's unpacked size as the zip declares it, known before anything is read."""
    if found.mime is not None:
        return package.size_under(found.name)
    info = package.zf.NameToInfo.get(found.name)
    return info.file_size if info is not None else 0


def _read_text(
    body: etree._Element, styles: etree._Element | None, reader: TextReader, ctx: ParseContext
) -> None:
    builder = reader.builder
    if ctx.pages is not None:
        builder.warn(
            "pages-ignored",
            "a text document has no fixed pages: the page selection was ignored",
        )
    masters = list(styles.iter(f"{STYLE}master-page")) if styles is not None else []
    _add_running(builder, masters, _HEADERS, BlockKind.HEADER)
    for text in body.iterchildren(f"{OFFICE}text"):
        reader.read(text)
    _add_running(builder, masters, _FOOTERS, BlockKind.FOOTER)
    for note, label in reader.endnotes:
        builder.add(BlockKind.FOOTNOTE, note, label=label)
    ctx.progress(1.0, f"{len(builder.document.blocks)} blocks")


def _add_running(
    builder: DocumentBuilder, masters: list[etree._Element], tags: tuple[str, ...], kind: BlockKind
) -> None:
    """Each distinct header (or footer) of the master pages, once."""
    seen: set[str] = set()
    for master in masters:
        for element in master:
            if element.tag in tags and element.get(f"{STYLE}display") != "false":
                text = flat_text(element)
                if text and text not in seen:
                    seen.add(text)
                    builder.add(kind, text)


# -- spreadsheets --------------------------------------------------------------------------


def _read_sheets(
    body: etree._Element, content: etree._Element, reader: TextReader, ctx: ParseContext
) -> None:
    builder = reader.builder
    sheets = [
        sheet
        for book in body.iterchildren(f"{OFFICE}spreadsheet")
        for sheet in book.iterchildren(f"{TABLE}table")
    ]
    names = [s.get(f"{TABLE}name") or f"Sheet{n}" for n, s in enumerate(sheets, 1)]
    builder.metadata.extra["sheets"] = names
    hidden = _hidden_table_styles(content)
    hidden_names = [
        n for n, s in zip(names, sheets, strict=True) if s.get(f"{TABLE}style-name") in hidden
    ]
    if hidden_names:
        builder.metadata.extra["hidden_sheets"] = hidden_names
    builder.metadata.page_count = len(sheets)
    for number in ctx.each_page(ctx.select_pages(len(sheets)), len(sheets)):
        sheet, name = sheets[number - 1], names[number - 1]
        builder.add_page(number, label=name)
        if ctx.sheet_names:
            builder.add(BlockKind.HEADING, name, level=2, page=number)
        grid = read_grid(sheet, cell_text, ctx.limits.max_cells - reader.cells)
        reader.cells += grid.size
        merges = _merges(grid.rows, grid.spans, ctx.limits.max_cells - reader.cells)
        add_sheet_tables(builder, grid.rows, merges, number, ctx.structure)
        reader.fields = {"page": number}
        for shape in _sheet_shapes(sheet):
            reader.shape(shape)


def _merges(
    rows: list[list[str]], spans: list[tuple[int, int, int, int]], budget: int
) -> list[Merge]:
    """Spanning cells as merged ranges, cut to the filled part of the sheet.

    The cells merged count against ``budget``: the tables are laid out cell by
    cell, and overlapping merges in a hostile file could cover the sheet many times.
    """
    width = max((len(row) for row in rows), default=0)
    merges = [
        Merge(r, c, min(r + down, len(rows)) - 1, min(c + across, width) - 1)
        for r, c, down, across in spans
        if c < width
    ]
    covered = sum((m.bottom - m.top + 1) * (m.right - m.left + 1) for m in merges)
    if covered > budget:
        raise LimitExceeded("cells", covered, budget)
    return merges


def _hidden_table_styles(content: etree._Element) -> set[str]:
    hidden: set[str] = set()
    for style in content.iter(f"{STYLE}style"):
        properties = style.find(f"{STYLE}table-properties")
        if properties is not None and properties.get(f"{TABLE}display") == "false":
            hidden.add(style.get(f"{STYLE}name", ""))
    return hidden


def _sheet_shapes(sheet: etree._Element) -> list[etree._Element]:
    """Drawings on the sheet: in its shapes layer, or anchored to a cell."""
    found: list[etree._Element] = []
    for child in sheet.iter(f"{TABLE}shapes", f"{TABLE}table-cell"):
        found.extend(shape for shape in child if shape.tag in _SHAPE_TAGS)
    return found


# -- presentations -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """A shape on a slide with its position in points (None when it has none)."""

    element: etree._Element
    top: float | None
    left: float | None
    bbox: BBox | None


def _read_slides(
    body: etree._Element, styles: etree._Element | None, reader: TextReader, ctx: ParseContext
) -> None:
    builder = reader.builder
    slides = list(body.iter(f"{DRAW}page"))
    sizes = _master_sizes(styles)
    builder.metadata.page_count = len(slides)
    for number in ctx.each_page(ctx.select_pages(len(slides)), len(slides)):
        slide = slides[number - 1]
        width, height = sizes.get(slide.get(f"{DRAW}master-page-name", ""), (None, None))
        label = _slide_title(slide) or slide.get(f"{DRAW}name")
        builder.add_page(number, label=label, width=width, height=height)
        band = max((height or 540.0) * BAND, 1.0)
        shapes = [_placed(s) for s in slide if s.tag in _SHAPE_TAGS]
        for shape in reading_order(shapes, band):
            reader.fields = {"page": number, "bbox": shape.bbox}
            _read_slide_shape(shape.element, reader, number)
        notes = slide.find(f"{_PRESENTATION}notes")
        if notes is not None:
            text = "\n".join(
                flat_text(frame)
                for frame in notes.iter(f"{DRAW}frame")
                if frame.get(f"{_PRESENTATION}class") == "notes"
            )
            builder.add(BlockKind.FOOTNOTE, text.strip(), page=number)


def _read_slide_shape(element: etree._Element, reader: TextReader, number: int) -> None:
    role = element.get(f"{_PRESENTATION}class")
    if role == "title":
        text = " ".join(flat_text(element).split())
        kind = BlockKind.TITLE if number == 1 else BlockKind.HEADING
        level = None if kind is BlockKind.TITLE else 1
        reader.builder.add(kind, text, level=level, **reader.fields)
    elif role in {"footer", "date-time", "header"}:
        reader.builder.add(BlockKind.FOOTER, flat_text(element), **reader.fields)
    elif role != "page-number":
        reader.shape(element)


def _slide_title(slide: etree._Element) -> str | None:
    for frame in slide:
        if frame.get(f"{_PRESENTATION}class") == "title":
            return " ".join(flat_text(frame).split()) or None
    return None


def _placed(element: etree._Element) -> _Placed:
    """A shape and where it is; a group (which has no position) is where its shapes are."""
    if element.tag == f"{DRAW}g":
        inside = [_placed(shape) for shape in element if shape.tag in _SHAPE_TAGS]
        tops = [p.top for p in inside if p.top is not None]
        lefts = [p.left for p in inside if p.left is not None]
        return _Placed(element, min(tops, default=None), min(lefts, default=None), None)
    x, y = _points(element.get(f"{SVG}x")), _points(element.get(f"{SVG}y"))
    width, height = _points(element.get(f"{SVG}width")), _points(element.get(f"{SVG}height"))
    bbox = None
    if x is not None and y is not None and width is not None and height is not None:
        bbox = BBox(x0=x, y0=y, x1=round(x + width, 2), y1=round(y + height, 2))
    return _Placed(element, y, x, bbox)


def _master_sizes(styles: etree._Element | None) -> dict[str, tuple[float | None, float | None]]:
    """Master page name → its page size in points, from its page layout."""
    if styles is None:
        return {}
    layouts: dict[str, tuple[float | None, float | None]] = {}
    for layout in styles.iter(f"{STYLE}page-layout"):
        properties = layout.find(f"{STYLE}page-layout-properties")
        if properties is not None:
            size = (
                _points(properties.get(f"{_FO}page-width")),
                _points(properties.get(f"{_FO}page-height")),
            )
            layouts[layout.get(f"{STYLE}name", "")] = size
    return {
        master.get(f"{STYLE}name", ""): layouts.get(
            master.get(f"{STYLE}page-layout-name", ""), (None, None)
        )
        for master in styles.iter(f"{STYLE}master-page")
    }


def _points(length: str | None) -> float | None:
    """An ODF length (``2.5cm``, ``1in``, ``12pt``) in points."""
    match = _LENGTH.match(length or "")
    if match is None:
        return None
    return round(float(match.group(1)) * _POINTS_PER[match.group(2) or "pt"], 2)
