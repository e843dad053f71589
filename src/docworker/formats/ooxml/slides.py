"""PowerPoint presentations (pptx, pptm): one page per slide, shapes in reading order.

Each slide is a :class:`~docworker.document.Page` labelled with its title. Its
title placeholder becomes a HEADING of level 1 (the first slide's a TITLE); the
other shapes follow in reading order (top to bottom in bands, left to right
within a band; groups are read as a unit): text frames as paragraphs or list
items (a paragraph is a list item when its bullet, inherited from the layout and
master like PowerPoint does, is a character or a number), tables as TABLE
blocks, pictures as IMAGE blocks with their description, charts through
:mod:`~docworker.formats.ooxml.charts`. The slide's speaker notes come last, as one
FOOTNOTE block: notes annotate the slide rather than belong to its text.
Objects embedded on the slide (OLE objects, embedded packages) are read after
its notes, on its page, through the embedded-document dispatch, each under
``Attachment: <name>``; the other files under ``ppt/embeddings/`` (a chart's
workbook, an object on a slide not selected) are listed only.
``ctx.pages`` selects slides by number.

The package is read with :mod:`zipfile` and lxml (:mod:`.slides_package`) rather
than python-pptx, which loads every part of the package (layouts, masters,
themes, media) and wraps each shape in proxy objects before anything is read.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Protocol, TypeVar

from lxml import etree

from docworker.document import (
    BBox,
    BlockKind,
    Document,
    DocumentBuilder,
    Link,
    Table,
    TableCell,
)
from docworker.formats.base import ParseContext, Source
from docworker.formats.ooxml.charts import add_chart, read_chart
from docworker.formats.ooxml.omml import M_NS, to_latex
from docworker.formats.ooxml.package import (
    EmbeddedParts,
    clean_alt_text,
    local_name,
    read_metadata,
    refuse_non_package,
    shown_objects,
    translate_errors,
)
from docworker.formats.ooxml.slides_package import (
    NOTES_SLIDE,
    SLIDE_LAYOUT,
    SLIDE_MASTER,
    Package,
    Part,
    master_type,
    own_geometry,
    placeholder,
    placeholder_idx,
    placeholder_type,
    shape_children,
)

PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
PPTX_MACRO_MIME = "application/vnd.ms-powerpoint.presentation.macroEnabled.12"

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_EMU_PER_POINT = 12700
#: Shapes whose tops differ by less than this share of the slide height are one band.
BAND = 0.05
_GRAPHIC_DATA = f"{_A}graphic/{_A}graphicData"
_RUN_TAGS = frozenset({f"{_A}r", f"{_A}fld"})
_TABLE_URI = "http://schemas.openxmlformats.org/drawingml/2006/table"
_CHART_URI = "http://schemas.openxmlformats.org/drawingml/2006/chart"
_OLE_URI = "http://schemas.openxmlformats.org/presentationml/2006/ole"
_CHART = "{http://schemas.openxmlformats.org/drawingml/2006/chart}chart"

# Placeholder types (``p:ph/@type``; absent means "obj").
_TITLES = {"title", "ctrTitle"}
_BODIES = {"body", "obj"}
_MARGINS = {"ftr", "dt"}
_SKIPPED = {"sldNum"}
#: Shapes that take their position from a layout placeholder when they are one.
_INHERITING = {f"{_P}sp", f"{_P}graphicFrame", f"{_P}pic"}
#: A shape's left, top, width and height in EMU, None where not known.
Geometry = tuple[int | None, ...]


class PptxParser:
    """PowerPoint 2007+ presentations, macro-enabled ones included."""

    name: ClassVar[str] = "pptx"
    media_types: ClassVar[frozenset[str]] = frozenset({PPTX_MIME, PPTX_MACRO_MIME})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        refuse_non_package(source.path, self.name)
        with (
            translate_errors(self.name, source.path),
            zipfile.ZipFile(source.path) as zf,
        ):
            builder = DocumentBuilder(self.name, source.mime, read_metadata(zf), limits=ctx.limits)
            package = Package(zf, str(source.path))
            slides = package.slides
            objects = EmbeddedParts(builder, zf, "ppt/embeddings/", ctx)
            width, height = package.slide_size()
            size = {"width": _points(width), "height": _points(height)}
            for number in ctx.each_page(ctx.select_pages(len(slides)), len(slides)):
                slide = package.part(slides[number - 1])
                builder.add_page(number, label=_title_text(slide), **size)
                reader = _SlideReader(builder, package, slide, number, height or 0)
                reader.read()
                objects.append(shown_objects(slide.rels, reader.object_ids), page=number)
            objects.list_rest()
            builder.metadata.page_count = len(slides)
            hidden = [
                n
                for n, name in enumerate(slides, 1)
                if package.part(name).root.get("show") in {"0", "false"}
            ]
            if hidden:
                builder.metadata.extra["hidden_slides"] = hidden
            return builder.finish()


def _completed(own: Geometry, inherited: Geometry) -> Geometry:
    """``own``'s values, each taken from ``inherited`` where not set."""
    return tuple(value if value is not None else inherited[i] for i, value in enumerate(own))


class _Shape:
    """A shape of a slide and its position (EMU), inherited from the layout for placeholders."""

    __slots__ = ("element", "height", "left", "ph", "top", "width")

    def __init__(
        self, element: etree._Element, ph: etree._Element | None, geometry: tuple[Any, ...]
    ) -> None:
        self.element = element
        self.ph = ph
        self.left, self.top, self.width, self.height = geometry


class _SlideReader:
    def __init__(
        self, builder: DocumentBuilder, package: Package, slide: Part, number: int, height: int
    ) -> None:
        self.builder = builder
        self.package = package
        self.slide = slide
        self.number = number
        self.band = max(int(height * BAND), 1)
        #: The relationship ids of the objects embedded on the slide, in reading order.
        self.object_ids: list[str] = []

    def read(self) -> None:
        shapes = [self._top_level(e) for e in self.slide.shapes()]
        self._shapes(shapes, top_level=True)
        if any(kind == NOTES_SLIDE for kind, _ in self.slide.rels.values()):
            notes = self.package.related(self.slide, NOTES_SLIDE)
            body = notes.placeholder_of("body")
            if body is not None:
                if body.tag != f"{_P}sp":
                    raise AttributeError("the notes placeholder has no text frame")
                # A line break inside a paragraph is a line break of the notes.
                text = _frame_text(body.find(f"{_P}txBody")).replace("\v", "\n").strip()
                self.builder.add(BlockKind.FOOTNOTE, text, page=self.number)

    def _top_level(self, element: etree._Element) -> _Shape:
        ph = placeholder(element)
        geometry: Geometry = own_geometry(element)
        if ph is not None and element.tag in _INHERITING and None in geometry:
            geometry = self._inherited(placeholder_idx(ph), geometry)
        return _Shape(element, ph, geometry)

    def _inherited(self, idx: int, own: Geometry) -> Geometry:
        """``own`` completed from the layout placeholder ``idx``, itself from the master's."""
        layout = self.package.related(self.slide, SLIDE_LAYOUT)
        base = layout.placeholder_at(idx)
        if base is None:
            return _completed(own, (None, None, None, None))
        from_layout = own_geometry(base)
        merged = _completed(own, from_layout)
        if base.tag != f"{_P}sp" or None not in merged:
            return merged
        # A layout placeholder takes what it does not set from the master's.
        ph = placeholder(base)
        assert ph is not None
        master = self.package.related(layout, SLIDE_MASTER).placeholder_of(master_type(ph))
        from_master = own_geometry(master) if master is not None else (None, None, None, None)
        return _completed(own, _completed(from_layout, from_master))

    def _shapes(self, shapes: Iterable[_Shape], top_level: bool) -> None:
        for shape in reading_order(shapes, self.band):
            # Positions inside a group are in the group's own coordinates.
            fields: dict[str, Any] = {"page": self.number}
            if top_level:
                fields["bbox"] = _bbox(shape)
            self._shape(shape, top_level, fields)

    def _shape(self, shape: _Shape, top_level: bool, fields: dict[str, Any]) -> None:
        element = shape.element
        tag = element.tag
        uri = _graphic_uri(element) if tag == f"{_P}graphicFrame" else None
        if tag == f"{_P}grpSp":
            members = shape_children(element)
            self._shapes(
                [_Shape(e, placeholder(e), own_geometry(e)) for e in members], top_level=False
            )
        elif uri == _TABLE_URI:
            table = _table(element.find(f"{_GRAPHIC_DATA}/{_A}tbl"))
            self.builder.add(BlockKind.TABLE, table=table, **fields)
        elif uri == _CHART_URI:
            chart = element.find(f"{_GRAPHIC_DATA}/{_CHART}")
            rel_id = chart.get(_R_ID) if chart is not None else None
            if rel_id is None:
                raise ValueError("this graphic frame does not contain a chart")
            part = self.slide.rels[rel_id][1]
            add_chart(
                self.builder, read_chart(self.package.zf.read(part)), _alt_text(element), **fields
            )
        elif (
            uri == _OLE_URI and _embeds_object(element) and not (top_level and shape.ph is not None)
        ):
            # PowerPoint writes the object twice (mc:Choice, mc:Fallback), under one id.
            self.object_ids += [o.get(_R_ID, "") for o in element.iter(f"{_P}oleObj")]
        elif tag == f"{_P}pic" or element.find(f"{_P}blipFill") is not None:
            self.builder.add(BlockKind.IMAGE, _alt_text(element), **fields)
        elif tag == f"{_P}sp":
            self._text(shape, fields)

    def _text(self, shape: _Shape, fields: dict[str, Any]) -> None:
        placeholder = placeholder_type(shape.ph) if shape.ph is not None else None
        paragraphs = list(shape.element.iterfind(f"{_P}txBody/{_A}p"))
        if placeholder in _SKIPPED:
            return
        if placeholder in _TITLES:
            text = _one_line(paragraphs)
            kind = BlockKind.TITLE if self.number == 1 else BlockKind.HEADING
            self.builder.add(kind, text, level=1 if kind == BlockKind.HEADING else None, **fields)
            return
        if placeholder in _MARGINS:
            text = "\n".join(_paragraph_text(p) for p in paragraphs)
            self.builder.add(BlockKind.FOOTER, text.strip(), **fields)
            return
        styles = list(self._list_styles(shape, placeholder))
        for paragraph in paragraphs:
            self._paragraph(paragraph, styles, fields)

    def _paragraph(
        self, paragraph: etree._Element, styles: list[etree._Element], fields: dict[str, Any]
    ) -> None:
        text = _paragraph_text(paragraph).strip()
        props = paragraph.find(f"{_A}pPr")
        level = _level(props)
        bullet = _bullet(props, styles, level)
        links = [
            Link(text=(run.findtext(f"{_A}t") or "").strip(), url=url)
            for run, url in self._links(paragraph)
        ]
        if bullet is None:
            self.builder.add(BlockKind.PARAGRAPH, text, links=links, **fields)
        else:
            self.builder.add(
                BlockKind.LIST_ITEM, text, level=level + 1, ordered=bullet, links=links, **fields
            )

    def _links(self, paragraph: etree._Element) -> Iterator[tuple[etree._Element, str]]:
        for run in paragraph.iterfind(f"{_A}r"):
            click = run.find(f"{_A}rPr/{_A}hlinkClick")
            rel_id = click.get(_R_ID) if click is not None else None
            if rel_id and rel_id in self.slide.rels and (run.findtext(f"{_A}t") or "").strip():
                yield run, self.package.target_ref(self.slide, rel_id)

    def _list_styles(self, shape: _Shape, placeholder: str | None) -> Iterator[etree._Element]:
        """Where a paragraph's bullet may come from, nearest first.

        The shape's own list style; for a placeholder, then the matching layout and
        master placeholders' list styles and the master's body or other text style.
        """
        yield from shape.element.iterfind(f"{_P}txBody/{_A}lstStyle")
        if placeholder is None or shape.ph is None:
            return
        layout = self.package.related(self.slide, SLIDE_LAYOUT)
        master = self.package.related(layout, SLIDE_MASTER)
        inherited = [
            layout.placeholder_at(placeholder_idx(shape.ph)),
            master.placeholder_of(placeholder),
        ]
        for base in inherited:
            if base is not None:
                yield from base.iterfind(f"{_P}txBody/{_A}lstStyle")
        style = "bodyStyle" if placeholder in _BODIES else "otherStyle"
        yield from master.root.iterfind(f"{_P}txStyles/{_P}{style}")


class Positioned(Protocol):
    """Something placed on a slide: a shape, with its top-left corner when it has one."""

    @property
    def top(self) -> float | None: ...

    @property
    def left(self) -> float | None: ...


_Placed = TypeVar("_Placed", bound=Positioned)


def reading_order(shapes: Iterable[_Placed], band: float) -> list[_Placed]:
    """Shapes top to bottom in bands of height ``band``, left to right within a band."""
    placed = sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))
    ordered: list[_Placed] = []
    current: list[_Placed] = []
    band_top: float = 0
    for shape in placed:
        top = shape.top or 0
        if current and top - band_top >= band:
            ordered += sorted(current, key=lambda s: s.left or 0)
            current = []
        if not current:
            band_top = top
        current.append(shape)
    return ordered + sorted(current, key=lambda s: s.left or 0)


def _graphic_uri(frame: etree._Element) -> str:
    """What a graphic frame holds (a table, a chart, an object): its graphic data's URI."""
    data = frame.find(_GRAPHIC_DATA)
    uri = data.get("uri") if data is not None else None
    if uri is None:
        raise ValueError("the graphic frame has no graphic data URI")
    return uri


def _embeds_object(frame: etree._Element) -> bool:
    """Whether a frame's OLE object is embedded rather than linked (its last ``p:oleObj``)."""
    objects = list(frame.find(_GRAPHIC_DATA).iter(f"{_P}oleObj"))  # type: ignore[union-attr]
    return bool(objects) and objects[-1].find(f"{_P}embed") is not None


def _bullet(props: etree._Element | None, styles: list[etree._Element], level: int) -> bool | None:
    """None for a plain paragraph, else whether the list item is numbered."""
    sources = [props] + [style.find(f"{_A}lvl{level + 1}pPr") for style in styles]
    for source in sources:
        if source is None:
            continue
        for child in source:
            name = local_name(child)
            if name == "buNone":
                return None
            if name == "buAutoNum":
                return True
            if name in {"buChar", "buBlip"}:
                return False
    return None


def _paragraph_text(paragraph: etree._Element) -> str:
    """Runs, line breaks, fields and equations (as ``$LaTeX$``) of an ``a:p``."""
    parts: list[str] = []
    for child in paragraph:
        name = local_name(child)
        if name == "r":
            parts.append(child.findtext(f"{_A}t") or "")
        elif name == "br":
            parts.append("\n")
        elif name == "fld" and child.get("type") != "slidenum":
            parts.append(child.findtext(f"{_A}t") or "")
        elif name == "AlternateContent":
            choice = child.find(f"{_MC}Choice")
            maths = (
                choice.iter(f"{{{M_NS}}}oMathPara", f"{{{M_NS}}}oMath")
                if choice is not None
                else ()
            )
            latex = next((to_latex(m) for m in maths), "")
            parts.append(f"${latex}$" if latex else "")
    return "".join(parts)


def _table(tbl: etree._Element | None) -> Table:
    if tbl is None:
        raise ValueError("the table frame holds no table")
    grid = tbl.find(f"{_A}tblGrid")
    if grid is None:
        raise ValueError("required a:tblGrid child element not present")
    rows = tbl.findall(f"{_A}tr")
    props = tbl.find(f"{_A}tblPr")
    first_row = _flag(props.get("firstRow") if props is not None else None)
    cells: list[TableCell] = []
    n_rows = len(rows)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row.iterchildren(f"{_A}tc")):
            h_merge, v_merge = _flag(cell.get("hMerge")), _flag(cell.get("vMerge"))
            if h_merge or v_merge:
                continue
            row_span, col_span = int(cell.get("rowSpan", "1")), int(cell.get("gridSpan", "1"))
            origin = row_span > 1 or col_span > 1
            text = _frame_text(cell.find(f"{_A}txBody")).replace("\v", "\n").strip()
            cells.append(
                TableCell(
                    row=r,
                    col=c,
                    text=text,
                    row_span=row_span if origin else 1,
                    col_span=col_span if origin else 1,
                    header=r == 0 and first_row and n_rows > 1,
                )
            )
    return Table(n_rows=n_rows, n_cols=len(grid.findall(f"{_A}gridCol")), cells=cells)


def _flag(value: str | None) -> bool:
    """An ``xsd:boolean`` attribute, False when absent."""
    if value is None:
        return False
    if value not in {"1", "0", "true", "false"}:
        raise ValueError(f"value must be one of '1', '0', 'true' or 'false', got '{value}'")
    return value in {"1", "true"}


def _frame_text(body: etree._Element | None) -> str:
    """A text body's paragraphs, one a line, a line break within one as a vertical tab."""
    if body is None:
        return ""
    paragraphs = []
    for paragraph in body.iterchildren(f"{_A}p"):
        parts = []
        for child in paragraph:
            tag = child.tag
            if tag in _RUN_TAGS:
                parts.append(child.findtext(f"{_A}t") or "")
            elif tag == f"{_A}br":
                parts.append("\v")
        paragraphs.append("".join(parts))
    return "\n".join(paragraphs)


def _title_text(slide: Part) -> str | None:
    ordered = sorted(slide.placeholders(), key=lambda found: placeholder_idx(found[1]))
    for shape, ph in ordered:
        if placeholder_type(ph) in _TITLES:
            return _one_line(shape.iterfind(f"{_P}txBody/{_A}p")) or None
    return None


def _one_line(paragraphs: Iterable[etree._Element]) -> str:
    """The text of paragraphs on one line, as a title reads."""
    return " ".join(" ".join(_paragraph_text(p) for p in paragraphs).split())


def _level(props: etree._Element | None) -> int:
    """A paragraph's outline level, 0-8 (0 when absent or malformed)."""
    try:
        return min(max(int(props.get("lvl", "0")), 0), 8) if props is not None else 0
    except ValueError:
        return 0


def _alt_text(shape: etree._Element) -> str:
    properties = next(shape.iter(f"{_P}cNvPr"), None)
    if properties is None:
        return ""
    return clean_alt_text(properties.get("descr") or properties.get("title") or "")


def _bbox(shape: _Shape) -> BBox | None:
    if shape.left is None or shape.top is None or shape.width is None or shape.height is None:
        return None
    return BBox(
        x0=_points(shape.left),
        y0=_points(shape.top),
        x1=_points(shape.left + shape.width),
        y1=_points(shape.top + shape.height),
    )


def _points(emu: int | None) -> float | None:
    return None if emu is None else round(emu / _EMU_PER_POINT, 2)
