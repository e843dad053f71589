"""Excel workbooks (xlsx, xlsm): one page per sheet, its tables, charts and pictures.

Cell values come from python-calamine (fast, and it gives typed values: numbers,
dates, booleans), a row at a time. Each sheet becomes a
:class:`~docworker.document.Page` labelled with the sheet's name, opened by a
level-2 HEADING with that name (unless ``ctx.sheet_names`` is off). The used
range is split into tables where blank rows and columns separate blocks of
cells (see :func:`table_regions`), each held as rows (``Table.from_rows``: a
large sheet makes no model object per cell); merged cells become spans; a lone
cell on its own is a PARAGRAPH (typically a title or a note). Numbers are written as a
person would (``3``, not ``3.0``), dates in ISO 8601. Charts, pictures and text
boxes drawn on the sheet follow its tables, then the objects embedded in it (OLE
objects, embedded packages), read on its page through the embedded-document
dispatch, each under ``Attachment: <name>``; the other files under
``xl/embeddings/`` (a chart's workbook, an object on a sheet not selected) are
listed only. ``ctx.pages`` selects sheets by
number; ``ctx.limits.max_cells`` bounds the cells read over all sheets; without
``ctx.structure`` each sheet's filled range is one table. Hidden sheets are read
too, and listed in ``metadata.extra["hidden_sheets"]``.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from lxml import etree
from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    SheetTypeEnum,
    SheetVisibleEnum,
)

from docworker.document import BlockKind, Document, DocumentBuilder, Table, TableCell
from docworker.errors import LimitExceeded
from docworker.formats.base import ParseContext, Source
from docworker.formats.ooxml.charts import add_chart, read_chart
from docworker.formats.ooxml.package import (
    OBJECT_RELS,
    PACKAGE_ERRORS,
    EmbeddedParts,
    clean_alt_text,
    local_name,
    parse_xml,
    read_metadata,
    refuse_non_package,
    relationships,
    shown_objects,
    translate_errors,
)
from docworker.formats.ooxml.sheet_extent import declared_cells

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MACRO_MIME = "application/vnd.ms-excel.sheet.macroEnabled.12"

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_XDR = "{http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_C_CHART = "{http://schemas.openxmlformats.org/drawingml/2006/chart}chart"
_OLE_OBJECT = f"{_MAIN}oleObject"
#: Above this many filled cells (or separate blocks of cells), a sheet's used range is
#: kept as one table: finding the blocks would cost more than it is worth.
_SPLIT_MAX_CELLS = 250_000
_SPLIT_MAX_BLOCKS = 500


class XlsxParser:
    """Excel 2007+ workbooks, macro-enabled ones included."""

    name: ClassVar[str] = "xlsx"
    media_types: ClassVar[frozenset[str]] = frozenset({XLSX_MIME, XLSX_MACRO_MIME})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        refuse_non_package(source.path, self.name)
        with (
            translate_errors(self.name, source.path, CalamineError),
            zipfile.ZipFile(source.path) as zf,
        ):
            builder = DocumentBuilder(self.name, source.mime, read_metadata(zf), limits=ctx.limits)
            workbook = CalamineWorkbook.from_path(str(source.path))
            objects = EmbeddedParts(builder, zf, "xl/embeddings/", ctx)
            try:
                _read_sheets(workbook, zf, objects, ctx)
            finally:
                workbook.close()
            objects.list_rest()
            return builder.finish()


def _read_sheets(
    workbook: CalamineWorkbook, zf: zipfile.ZipFile, objects: EmbeddedParts, ctx: ParseContext
) -> None:
    builder = objects.builder
    sheets = workbook.sheets_metadata
    names = [sheet.name for sheet in sheets]
    builder.metadata.extra["sheets"] = names
    hidden = [sheet.name for sheet in sheets if sheet.visible != SheetVisibleEnum.Visible]
    if hidden:
        builder.metadata.extra["hidden_sheets"] = hidden
    builder.metadata.page_count = len(names)
    parts = _sheet_parts(zf)
    cells_read = 0
    for number in ctx.each_page(ctx.select_pages(len(names)), len(names)):
        name = names[number - 1]
        builder.add_page(number, label=name)
        if ctx.sheet_names:
            builder.add(BlockKind.HEADING, name, level=2, page=number)
        part = parts.get(name)
        if sheets[number - 1].typ == SheetTypeEnum.WorkSheet:
            if part is not None:
                # Before calamine allocates the range (sheet_extent.py).
                _check_cells(cells_read + declared_cells(zf, part), ctx)
            sheet = workbook.get_sheet_by_index(number - 1)
            cells_read += _extent(sheet)
            _check_cells(cells_read, ctx)
            _read_cells(sheet, builder, number, split=ctx.structure)
        if part is not None:
            _read_drawn_and_embedded(zf, part, objects, number)


def _check_cells(cells: int, ctx: ParseContext) -> None:
    if cells > ctx.limits.max_cells:
        raise LimitExceeded("cells", cells, ctx.limits.max_cells)


def _extent(sheet: CalamineSheet) -> int:
    """The cells of the sheet's used range together with its merged ranges (a merge
    reaching far past the data is walked cell by cell when tables are found)."""
    top, left = sheet.start or (0, 0)
    bottom, right = top + sheet.height - 1, left + sheet.width - 1
    for (r0, c0), (r1, c1) in sheet.merged_cell_ranges or []:
        top, left = min(top, r0), min(left, c0)
        bottom, right = max(bottom, r1), max(right, c1)
    return max(0, bottom - top + 1) * max(0, right - left + 1)


def _read_drawn_and_embedded(
    zf: zipfile.ZipFile, part: str, objects: EmbeddedParts, page: int
) -> None:
    """What is drawn on a sheet (charts, pictures, shapes), then the objects embedded in it.

    The objects come in the order of the sheet's ``oleObject`` elements. The
    sheet is read for them only when it relates to an object at all; a sheet
    that cannot be read for them is a warning, and its objects then come by name.
    """
    builder = objects.builder
    rels = relationships(zf, part)
    for kind, target in rels.values():
        if kind.endswith("/drawing") and target in zf.NameToInfo:
            _read_drawing(zf, target, builder, page)
    ids: list[str] = []
    if any(kind.endswith(OBJECT_RELS) for kind, _ in rels.values()):
        try:
            ids = _object_ids(zf, part)
        except PACKAGE_ERRORS as exc:
            builder.warn(
                "object-unreadable", f"{part} could not be read for its objects: {exc}", page
            )
    objects.append(shown_objects(rels, ids), page=page)


def _read_cells(sheet: CalamineSheet, builder: DocumentBuilder, page: int, split: bool) -> None:
    top, left = sheet.start or (0, 0)
    # Row by row: the typed values of the whole sheet are never held beside its texts.
    texts = [list(map(cell_text, row)) for row in sheet.iter_rows()]
    merges = [
        Merge(r0 - top, c0 - left, r1 - top, c1 - left)
        for (r0, c0), (r1, c1) in sheet.merged_cell_ranges or []
    ]
    add_sheet_tables(builder, texts, merges, page, split)


def add_sheet_tables(
    builder: DocumentBuilder, texts: list[list[str]], merges: list[Merge], page: int, split: bool
) -> None:
    """A sheet's tables (and lone cells) in reading order; one table unless ``split``.

    ``texts`` are the sheet's cell texts by row (rows may be of any length);
    ``merges`` its merged ranges in the same coordinates.
    """
    for region in table_regions(texts, merges, split):
        if region.top == region.bottom and region.left == region.right:
            row = texts[region.top]
            builder.add(BlockKind.PARAGRAPH, row[region.left], page=page)
        else:
            builder.add(BlockKind.TABLE, table=_table(texts, merges, region), page=page)


@dataclass(frozen=True)
class Region:
    """A rectangle of cells, bounds included, 0-based."""

    top: int
    left: int
    bottom: int
    right: int

    def overlaps(self, other: Region) -> bool:
        return not (
            other.left > self.right
            or other.right < self.left
            or other.top > self.bottom
            or other.bottom < self.top
        )

    def union(self, other: Region) -> Region:
        return Region(
            min(self.top, other.top),
            min(self.left, other.left),
            max(self.bottom, other.bottom),
            max(self.right, other.right),
        )


#: A merged range of cells has the same shape as a region.
Merge = Region


def table_regions(texts: list[list[str]], merges: list[Merge], split: bool = True) -> list[Region]:
    """The separate tables of a sheet, in reading order.

    A table is a block of filled cells (a merged range counts as filled when its
    first cell is) connected through shared edges, so that blank rows and columns
    separate tables while a diagonal touch does not join them; blocks whose
    bounding boxes overlap are one table. Without ``split``, the filled range is one table.
    """
    if not split or _filled_count(texts) > _SPLIT_MAX_CELLS:
        whole = _filled_bounds(texts, merges)
        return [whole] if whole is not None else []
    filled = {(r, c) for r, row in enumerate(texts) for c, text in enumerate(row) if text}
    for merge in merges:
        if (merge.top, merge.left) in filled:
            filled.update(
                (r, c)
                for r in range(merge.top, merge.bottom + 1)
                for c in range(merge.left, merge.right + 1)
            )
    if not filled:
        return []
    boxes = [_bounds(block) for block in _connected_blocks(filled)]
    if len(boxes) > _SPLIT_MAX_BLOCKS:
        return [_bounds(filled)]
    return sorted(_merge_overlapping(boxes), key=lambda b: (b.top, b.left))


def _filled_count(texts: list[list[str]]) -> int:
    return sum(len(row) - row.count("") for row in texts)


def _filled_bounds(texts: list[list[str]], merges: list[Merge]) -> Region | None:
    """The smallest region holding every filled cell (and the merged ranges they start),
    found row by row: a large sheet is not turned into a set of its cells."""
    top = bottom = left = right = -1
    for r, row in enumerate(texts):
        if not any(row):
            continue
        first, last = 0, len(row) - 1
        while not row[first]:
            first += 1
        while not row[last]:
            last -= 1
        if top < 0:
            top, left, right = r, first, last
        bottom, left, right = r, min(left, first), max(right, last)
    found = Region(top, left, bottom, right) if top >= 0 else None
    applied: list[Merge] = []
    for merge in merges:
        # As in table_regions: a merge counts when its first cell has text or lies in
        # a merged range counted before it.
        start = texts[merge.top] if merge.top < len(texts) else []
        has_text = merge.left < len(start) and bool(start[merge.left])
        origin = Region(merge.top, merge.left, merge.top, merge.left)
        if has_text or any(origin.overlaps(other) for other in applied):
            applied.append(merge)
            found = merge if found is None else found.union(merge)
    return found


def _connected_blocks(filled: set[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    unseen = set(filled)
    while unseen:
        stack = [unseen.pop()]
        block: list[tuple[int, int]] = []
        while stack:
            r, c = stack.pop()
            block.append((r, c))
            for neighbour in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if neighbour in unseen:
                    unseen.remove(neighbour)
                    stack.append(neighbour)
        yield block


def _bounds(cells: Iterable[tuple[int, int]]) -> Region:
    rows, cols = zip(*cells, strict=True)
    return Region(min(rows), min(cols), max(rows), max(cols))


def _merge_overlapping(boxes: list[Region]) -> list[Region]:
    merged = True
    while merged:
        merged = False
        result: list[Region] = []
        for box in boxes:
            for i, other in enumerate(result):
                if box.overlaps(other):
                    result[i] = other.union(box)
                    merged = True
                    break
            else:
                result.append(box)
        boxes = result
    return boxes


def _table(texts: list[list[str]], merges: list[Merge], region: Region) -> Table:
    """The cells of ``region`` as a table held as rows: the places a merged range covers
    are not listed, a range starting in the region is a spanning cell cut to its edges,
    and a first row of labels is the header."""
    rows = [
        texts[r][region.left : region.right + 1] if r < len(texts) else []
        for r in range(region.top, region.bottom + 1)
    ]
    covered = {
        (r - region.top, c - region.left)
        for m in merges
        for r in range(max(m.top, region.top), min(m.bottom, region.bottom) + 1)
        for c in range(max(m.left, region.left), min(m.right, region.right) + 1)
        if (r, c) != (m.top, m.left)
    }
    header = len(rows) > 1 and _looks_like_header(rows[0])
    spans: dict[tuple[int, int], TableCell] = {}
    for m in merges:
        r, c = m.top - region.top, m.left - region.left
        if not (0 <= r < len(rows) and 0 <= c <= region.right - region.left):
            continue
        spans[(r, c)] = TableCell(
            row=r,
            col=c,
            text=rows[r][c] if c < len(rows[r]) else "",
            row_span=min(m.bottom, region.bottom) - m.top + 1,
            col_span=min(m.right, region.right) - m.left + 1,
            header=header and r == 0,
        )
    width = region.right - region.left + 1
    return Table.from_rows(
        rows, width, header_rows=1 if header else 0, spans=list(spans.values()), covered=covered
    )


def _looks_like_header(row: list[str]) -> bool:
    """A first row of labels: some text, and no numbers or dates."""
    filled = [text for text in row if text]
    return bool(filled) and not any(_is_number_like(text) for text in filled)


def _is_number_like(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text[:4].isdigit() and text[4:5] == "-"
    return True


def cell_text(value: Any) -> str:
    """A cell value as a person reads it: ``3`` not ``3.0``, dates in ISO 8601."""
    kind = type(value)  # the common kinds first: a large sheet has millions of cells
    if kind is str:
        return str(value).strip()
    if kind is float:
        return _number_text(value)
    return _other_text(value)


def _other_text(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        value = value.date()
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return "" if value is None else str(value).strip()


def _number_text(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    # Excel shows at most 15 significant digits; beyond them is binary noise.
    return format(value, ".15g")


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → the part holding the sheet, for the sheets whose part is there."""
    main = next(
        (t for kind, t in relationships(zf, "").values() if kind.endswith("/officeDocument")), None
    )
    if main is None or main not in zf.NameToInfo:
        return {}
    workbook_rels = relationships(zf, main)
    found: dict[str, str] = {}
    for sheet in parse_xml(zf.read(main)).iter(f"{_MAIN}sheet"):
        _, part = workbook_rels.get(sheet.get(_R_ID, ""), ("", ""))
        if part in zf.NameToInfo:
            found[sheet.get("name", "")] = part
    return found


def _object_ids(zf: zipfile.ZipFile, part: str) -> list[str]:
    """The relationship ids of a sheet's ``oleObject`` elements, in order.

    The sheet is read as a stream, its rows dropped as they end: a sheet part
    can be far larger than its tree should be in memory.
    """
    found: list[str] = []
    with zf.open(part) as stream:
        for _, element in etree.iterparse(
            stream, tag=(f"{_MAIN}row", _OLE_OBJECT), resolve_entities=False, no_network=True
        ):
            if element.tag == _OLE_OBJECT:
                found.append(element.get(_R_ID, ""))
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
    return found


def _read_drawing(zf: zipfile.ZipFile, part: str, builder: DocumentBuilder, page: int) -> None:
    """Charts, pictures and text shapes of a drawing part, in anchor order."""
    rels = relationships(zf, part)
    anchors = [a for a in parse_xml(zf.read(part)) if local_name(a).endswith("Anchor")]
    anchors.sort(key=_anchor_position)
    for anchor in anchors:
        for item in _drawn_items(anchor):
            name = local_name(item)
            alt = clean_alt_text(_description(item))
            if name == "pic":
                builder.add(BlockKind.IMAGE, alt, page=page)
            elif name == "graphicFrame":
                chart = item.find(f".//{_C_CHART}")
                _, target = rels.get(chart.get(_R_ID, "") if chart is not None else "", ("", ""))
                if target in zf.NameToInfo:
                    add_chart(builder, read_chart(zf.read(target)), alt, page=page)
            elif name == "sp":
                text = "\n".join(
                    "".join(t.text or "" for t in p.iter(f"{_A}t")) for p in item.iter(f"{_A}p")
                )
                builder.add(BlockKind.PARAGRAPH, text.strip(), page=page)


def _drawn_items(element: etree._Element) -> Iterator[etree._Element]:
    """The pictures, graphic frames and shapes of an anchor, groups opened."""
    for child in element:
        name = local_name(child)
        if name == "grpSp":
            yield from _drawn_items(child)
        elif name in {"pic", "graphicFrame", "sp"}:
            yield child


def _anchor_position(anchor: etree._Element) -> tuple[int, int]:
    """Where an anchor starts, (row, column); absolute anchors and bad numbers first."""
    start = anchor.find(f"{_XDR}from")
    if start is None:
        return (0, 0)
    try:
        return (int(start.findtext(f"{_XDR}row") or 0), int(start.findtext(f"{_XDR}col") or 0))
    except ValueError:
        return (0, 0)


def _description(item: etree._Element) -> str:
    properties = next((e for e in item.iter(f"{_XDR}cNvPr")), None)
    if properties is None:
        return ""
    return properties.get("descr") or properties.get("title") or ""
