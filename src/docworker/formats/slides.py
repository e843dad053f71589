"""PowerPoint presentations (pptx, pptm): one page per slide, shapes in reading order.

Each slide is a :class:`~docworker.document.Page` labelled with its title. Its
title placeholder becomes a HEADING of level 1 (the first slide's a TITLE); the
other shapes follow in reading order (top to bottom in bands, left to right
within a band; groups are read as a unit): text frames as paragraphs or list
items (a paragraph is a list item when its bullet, inherited from the layout and
master like PowerPoint does, is a character or a number), tables as TABLE
blocks, pictures as IMAGE blocks with their description, charts through
:mod:`~docworker.formats.charts`. The slide's speaker notes come last, as one
FOOTNOTE block: notes annotate the slide rather than belong to its text.
Objects embedded on the slide (OLE objects, embedded packages) are read after
its notes, on its page, through the embedded-document dispatch, each under
``Attachment: <name>``; the other files under ``ppt/embeddings/`` (a chart's
workbook, an object on a slide not selected) are listed only.
``ctx.pages`` selects slides by number.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Protocol, TypeVar

import pptx
from lxml import etree
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.exc import PythonPptxError
from pptx.shapes.base import BaseShape
from pptx.slide import Slide

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
from docworker.formats.charts import add_chart, read_chart
from docworker.formats.omml import M_NS, to_latex
from docworker.formats.ooxml import (
    EmbeddedParts,
    clean_alt_text,
    local_name,
    read_metadata,
    refuse_non_package,
    relationships,
    shown_objects,
    translate_errors,
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

_TITLES = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}
_BODIES = {
    PP_PLACEHOLDER.BODY,
    PP_PLACEHOLDER.OBJECT,
    PP_PLACEHOLDER.VERTICAL_BODY,
    PP_PLACEHOLDER.VERTICAL_OBJECT,
}
_MARGINS = {PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE}
_SKIPPED = {PP_PLACEHOLDER.SLIDE_NUMBER}


class PptxParser:
    """PowerPoint 2007+ presentations, macro-enabled ones included."""

    name: ClassVar[str] = "pptx"
    media_types: ClassVar[frozenset[str]] = frozenset({PPTX_MIME, PPTX_MACRO_MIME})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        refuse_non_package(source.path, self.name)
        with (
            translate_errors(self.name, source.path, PythonPptxError),
            zipfile.ZipFile(source.path) as zf,
        ):
            builder = DocumentBuilder(self.name, source.mime, read_metadata(zf))
            presentation = pptx.Presentation(str(source.path))
            slides = list(presentation.slides)
            objects = EmbeddedParts(builder, zf, "ppt/embeddings/", ctx)
            height = presentation.slide_height or 0
            size = {"width": _points(presentation.slide_width), "height": _points(height)}
            for number in ctx.each_page(ctx.select_pages(len(slides)), len(slides)):
                slide = slides[number - 1]
                builder.add_page(number, label=_title_text(slide), **size)
                reader = _SlideReader(builder, slide, number, height)
                reader.read()
                rels = relationships(zf, slide.part.partname.lstrip("/"))
                objects.append(shown_objects(rels, reader.object_ids), page=number)
            objects.list_rest()
            builder.metadata.page_count = len(slides)
            hidden = [n for n, s in enumerate(slides, 1) if s.element.get("show") in {"0", "false"}]
            if hidden:
                builder.metadata.extra["hidden_slides"] = hidden
            return builder.finish()


class _SlideReader:
    def __init__(self, builder: DocumentBuilder, slide: Slide, number: int, height: int) -> None:
        self.builder = builder
        self.slide = slide
        self.number = number
        self.band = max(int(height * BAND), 1)
        #: The relationship ids of the objects embedded on the slide, in reading order.
        self.object_ids: list[str] = []

    def read(self) -> None:
        self._shapes(self.slide.shapes, top_level=True)
        if self.slide.has_notes_slide:
            frame = self.slide.notes_slide.notes_text_frame
            if frame is not None:
                # python-pptx writes a line break inside a paragraph as a vertical tab.
                notes = frame.text.replace("\v", "\n").strip()
                self.builder.add(BlockKind.FOOTNOTE, notes, page=self.number)

    def _shapes(self, shapes: Iterable[BaseShape], top_level: bool) -> None:
        for shape in reading_order(shapes, self.band):
            # Positions inside a group are in the group's own coordinates.
            fields: dict[str, Any] = {"page": self.number}
            if top_level:
                fields["bbox"] = _bbox(shape)
            self._shape(shape, fields)

    def _shape(self, shape: BaseShape, fields: dict[str, Any]) -> None:
        kind = shape.shape_type
        if kind == MSO_SHAPE_TYPE.GROUP:
            self._shapes(shape.shapes, top_level=False)  # type: ignore[attr-defined]
        elif getattr(shape, "has_table", False):
            self.builder.add(BlockKind.TABLE, table=_table(shape.table), **fields)  # type: ignore[attr-defined]
        elif getattr(shape, "has_chart", False):
            chart = read_chart(shape.chart_part.blob)  # type: ignore[attr-defined]
            add_chart(self.builder, chart, _alt_text(shape), **fields)
        elif kind == MSO_SHAPE_TYPE.EMBEDDED_OLE_OBJECT:
            # PowerPoint writes the object twice (mc:Choice, mc:Fallback), under one id.
            self.object_ids += [o.get(_R_ID, "") for o in shape.element.iter(f"{_P}oleObj")]
        elif kind == MSO_SHAPE_TYPE.PICTURE or shape.element.find(f"{_P}blipFill") is not None:
            self.builder.add(BlockKind.IMAGE, _alt_text(shape), **fields)
        elif shape.has_text_frame:
            self._text(shape, fields)

    def _text(self, shape: BaseShape, fields: dict[str, Any]) -> None:
        placeholder = shape.placeholder_format.type if shape.is_placeholder else None
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
            if rel_id and rel_id in self.slide.part.rels and (run.findtext(f"{_A}t") or "").strip():
                yield run, self.slide.part.target_ref(rel_id)

    def _list_styles(
        self, shape: BaseShape, placeholder: PP_PLACEHOLDER | None
    ) -> Iterator[etree._Element]:
        """Where a paragraph's bullet may come from, nearest first.

        The shape's own list style; for a placeholder, then the matching layout and
        master placeholders' list styles and the master's body or other text style.
        """
        yield from shape.element.iterfind(f"{_P}txBody/{_A}lstStyle")
        if placeholder is None:
            return
        layout = self.slide.slide_layout
        inherited = [layout.placeholders.get(idx=shape.placeholder_format.idx)]
        master = layout.slide_master
        inherited.append(master.placeholders.get(placeholder))
        for base in inherited:
            if base is not None:
                yield from base.element.iterfind(f"{_P}txBody/{_A}lstStyle")
        style = "bodyStyle" if placeholder in _BODIES else "otherStyle"
        yield from master.element.iterfind(f"{_P}txStyles/{_P}{style}")


class Positioned(Protocol):
    """Something placed on a slide: a shape, with its top-left corner when it has one."""

    @property
    def top(self) -> float | None: ...

    @property
    def left(self) -> float | None: ...


_Shape = TypeVar("_Shape", bound=Positioned)


def reading_order(shapes: Iterable[_Shape], band: float) -> list[_Shape]:
    """Shapes top to bottom in bands of height ``band``, left to right within a band."""
    placed = sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))
    ordered: list[_Shape] = []
    current: list[_Shape] = []
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


def _table(table: Any) -> Table:
    cells: list[TableCell] = []
    n_rows = len(table.rows)
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            if cell.is_spanned:
                continue
            text = cell.text.replace("\v", "\n").strip()
            cells.append(
                TableCell(
                    row=r,
                    col=c,
                    text=text,
                    row_span=cell.span_height if cell.is_merge_origin else 1,
                    col_span=cell.span_width if cell.is_merge_origin else 1,
                    header=r == 0 and table.first_row and n_rows > 1,
                )
            )
    return Table(n_rows=n_rows, n_cols=len(table.columns), cells=cells)


def _title_text(slide: Slide) -> str | None:
    for shape in slide.placeholders:
        if shape.placeholder_format.type in _TITLES:
            return _one_line(shape.element.iterfind(f"{_P}txBody/{_A}p")) or None
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


def _alt_text(shape: BaseShape) -> str:
    properties = next(shape.element.iter(f"{_P}cNvPr"), None)
    if properties is None:
        return ""
    return clean_alt_text(properties.get("descr") or properties.get("title") or "")


def _bbox(shape: BaseShape) -> BBox | None:
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
