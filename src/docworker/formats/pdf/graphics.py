"""What a PDF page draws besides text: ruling lines, boxes and pictures, read from pdfium.

Finding a table's cells (:mod:`docworker.formats.pdf.tables`) costs far more
than reading a page's text, so it only runs on pages that draw a grid: ruling
lines crossing each other. That is told here from pdfium's page objects, one
type call per object and one bounds call per path, with no segment read: a
thin path is a rule, a wider one a box whose four sides count as rules. The
same pass finds the pictures (images, embedded page descriptions) that
captions sit under and that show a page to be a scan. Only on a page with a
grid are the paths' segments read, for the straight strokes the table finder
works from (:func:`ruling_edges`).

Embedded page descriptions (form XObjects) are looked into, two levels deep,
their objects carried onto the page by their transforms. Boxes are given in
the frame asked for (:class:`~docworker.formats.pdf.text.PageFrame`).
"""

from __future__ import annotations

import ctypes
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pypdfium2.raw as pdfium_c

from docworker.formats.pdf.layout import Box
from docworker.formats.pdf.text import PageFrame, bare

#: A path thinner than this (points) is a ruling line.
_THIN = 2.0
#: Shorter paths are glyph-like marks (ticks, bullets), not rules.
_MIN_RULE = 5.0
#: A box this large each way may frame a figure, and a caption may sit under it.
_MIN_FIGURE = 40.0
#: Ends of rules closer than this (points) meet.
_TOLERANCE = 2.0
#: Column boundaries along a rule closer than this are one.
_SAME_PLACE = 3.0
#: A page drawing more rules than this is a drawing (a map, a chart), not a table page.
_MAX_RULES = 1500
#: Embedded page descriptions are looked into this deep, and this far.
_FORM_DEPTH = 2
_MAX_FORM_CHILDREN = 5000
#: Segments of one path read for rules; longer paths are drawings.
_MAX_SEGMENTS = 2000
#: A path of this many segments or fewer may round its corners (a rounded cell or box);
#: a longer one only if it is as large as a figure (a table's rounded border).
_SHAPE_SEGMENTS = 12
#: A stroke whose other side is shorter than this (points) runs straight across or down.
_STRAIGHT = 0.5
#: A grid needs this many rules, each crossed into at least two columns.
_GRID_ROWS = 3


@dataclass
class PageGraphics:
    """A page's rules (``(y, x0, x1)`` across, ``(x, y0, y1)`` down) and pictures."""

    across: list[tuple[float, float, float]] = field(default_factory=list)
    down: list[tuple[float, float, float]] = field(default_factory=list)
    #: Images, and embedded page descriptions (a LaTeX paper's figures): what a caption names.
    figures: list[Box] = field(default_factory=list)
    #: The raster images among them, which make a page a scan when they cover it.
    images: list[Box] = field(default_factory=list)

    def has_grid(self) -> bool:
        """Whether rules cross into a grid of at least two rows of two columns.

        A rule counts when the rules crossing it, with its own two ends, cut it
        into two columns or more; a table's rows are bounded by several such
        rules. Tables open at the sides (no outer vertical lines) count too,
        since the ends of their rules bound the outer columns. A photo's frame
        or a bar chart's bars do not: their rules are crossed at the ends only.
        """
        if not _GRID_ROWS <= len(self.across) <= _MAX_RULES or not 0 < len(self.down) <= _MAX_RULES:
            return False
        down = sorted(self.down)
        places = [x for x, _, _ in down]
        rows: set[int] = set()
        for y, x0, x1 in self.across:
            near = down[
                bisect_left(places, x0 - _TOLERANCE) : bisect_right(places, x1 + _TOLERANCE)
            ]
            crossing = [x for x, y0, y1 in near if y0 - _TOLERANCE <= y <= y1 + _TOLERANCE]
            if _columns([x0, x1, *crossing]) >= 2:
                rows.add(round(y / _SAME_PLACE))
                if len(rows) >= _GRID_ROWS:
                    return True
        return False

    def image_share(self, width: float, height: float) -> float:
        """The share of the page the largest image covers (0..1)."""
        if not self.images or width <= 0 or height <= 0:
            return 0.0
        largest = max((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in self.images)
        return min(largest / (width * height), 1.0)


def _columns(places: list[float]) -> int:
    """How many columns the boundaries at ``places`` make (closer than ``_SAME_PLACE``: one)."""
    ordered = sorted(places)
    return sum(1 for a, b in pairwise(ordered) if b - a > _SAME_PLACE)


def read_graphics(page: Any, frame: PageFrame, *, rules: bool = True) -> PageGraphics:
    """The rules (when ``rules``), figures and images ``page`` draws, seen in ``frame``."""
    graphics = PageGraphics()
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    corners = (ctypes.byref(left), ctypes.byref(bottom), ctypes.byref(right), ctypes.byref(top))
    for item, kind, to_page in _objects(page):
        if kind == pdfium_c.FPDF_PAGEOBJ_PATH and not rules:
            continue
        if not _bare_bounds(item, *corners):
            continue
        bounds = (left.value, bottom.value, right.value, top.value)
        box = frame.box(*(_moved_box(bounds, to_page) if to_page else bounds))
        if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
            _add_path(graphics, box)
            continue
        graphics.figures.append(box)
        if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
            graphics.images.append(box)
    return graphics


def _add_path(graphics: PageGraphics, box: Box) -> None:
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if height <= _THIN and width >= _MIN_RULE:
        graphics.across.append(((y0 + y1) / 2, x0, x1))
    elif width <= _THIN and height >= _MIN_RULE:
        graphics.down.append(((x0 + x1) / 2, y0, y1))
    elif width >= _MIN_RULE and height >= _MIN_RULE:
        # A box: a cell's border or background, or a figure's frame.
        graphics.across += [(y0, x0, x1), (y1, x0, x1)]
        graphics.down += [(x0, y0, y1), (x1, y0, y1)]
        if width >= _MIN_FIGURE and height >= _MIN_FIGURE:
            graphics.figures.append(box)


def ruling_edges(page: Any, frame: PageFrame) -> list[dict[str, Any]]:
    """Every straight stroke of the page's paths that runs across or down ``frame``.

    Each is an edge as pdfplumber's table finder takes them: ``x0``, ``x1``,
    ``top``, ``bottom``, ``width``, ``height`` and ``orientation`` (``h`` or
    ``v``). Curves are left out: table rules are straight.
    """
    edges: list[dict[str, Any]] = []
    matrix = pdfium_c.FS_MATRIX()
    point = _Point()
    for item, kind, to_page in _objects(page):
        if kind != pdfium_c.FPDF_PAGEOBJ_PATH or not pdfium_c.FPDFPageObj_GetMatrix(item, matrix):
            continue
        own = (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)
        transform = _compose(own, to_page) if to_page else own
        edges += _strokes(_segments(item, point), transform, frame)
    return edges


#: ``FPDFPageObj_GetType(object)``, ``FPDFPageObj_GetBounds(object, byref(left), ...)``.
_bare_object_type = bare(pdfium_c.FPDFPageObj_GetType)
_bare_bounds = bare(pdfium_c.FPDFPageObj_GetBounds)
_bare_segment_type = bare(pdfium_c.FPDFPathSegment_GetType)
_bare_segment_point = bare(pdfium_c.FPDFPathSegment_GetPoint)
_bare_segment_close = bare(pdfium_c.FPDFPathSegment_GetClose)


class _Point:
    """Two floats pdfium writes a segment's end point into, with pointers to them."""

    __slots__ = ("x", "x_ref", "y", "y_ref")

    def __init__(self) -> None:
        self.x, self.y = ctypes.c_float(), ctypes.c_float()
        self.x_ref, self.y_ref = ctypes.byref(self.x), ctypes.byref(self.y)


def _segments(item: Any, point: _Point) -> list[tuple[int, bool, float, float]]:
    """A path's segments: kind, whether it closes the subpath, end point.

    A long path with curves is a drawing (a chart, an illustration) unless it
    is as large as a table (a table's border with rounded corners): others are
    left at their first curve, which saves reading the thousands of segments
    drawings are made of.
    """
    points: list[tuple[int, bool, float, float]] = []
    count = pdfium_c.FPDFPath_CountSegments(item)
    if count > _MAX_SEGMENTS:
        return points
    curves_allowed = count <= _SHAPE_SEGMENTS or _large(item)
    get_segment, x, y, x_ref, y_ref = (
        pdfium_c.FPDFPath_GetPathSegment,
        point.x,
        point.y,
        point.x_ref,
        point.y_ref,
    )
    for index in range(count):
        segment = get_segment(item, index)
        kind = _bare_segment_type(segment)
        if kind == pdfium_c.FPDF_SEGMENT_BEZIERTO and not curves_allowed:
            return []
        _bare_segment_point(segment, x_ref, y_ref)
        points.append((kind, bool(_bare_segment_close(segment)), x.value, y.value))
    return points


def _large(item: Any) -> bool:
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    if not pdfium_c.FPDFPageObj_GetBounds(item, left, bottom, right, top):
        return False
    return min(right.value - left.value, top.value - bottom.value) >= _MIN_FIGURE


def _strokes(
    points: list[tuple[int, bool, float, float]], transform: Matrix, frame: PageFrame
) -> list[dict[str, Any]]:
    """The straight strokes across or down the page of one path's segments."""
    found = []
    start = current = (0.0, 0.0)
    # The transform applied here rather than by _apply: this runs for every segment.
    a, b, c, d, e, f = transform
    for kind, closes, x, y in points:
        here = (a * x + c * y + e, b * x + d * y + f)
        if kind == _MOVETO:
            start = here
        elif kind == _LINETO:
            found.append((current, here))
        if closes:
            found.append((here, start))
        current = here
    edges = []
    to_frame = frame.box
    for (ax, ay), (bx, by) in found:
        x0, y0, x1, y1 = to_frame(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))
        width, height = x1 - x0, y1 - y0
        if height <= _STRAIGHT < width or width <= _STRAIGHT < height:
            orientation = "h" if height <= _STRAIGHT else "v"
            edges.append(
                {"x0": x0, "x1": x1, "top": y0, "bottom": y1, "width": width, "height": height}
                | {"orientation": orientation, "object_type": "line"}
            )
    return edges


_MOVETO = pdfium_c.FPDF_SEGMENT_MOVETO
_LINETO = pdfium_c.FPDF_SEGMENT_LINETO


#: An affine transform ``(a, b, c, d, e, f)``: ``x' = a x + c y + e``, ``y' = b x + d y + f``.
Matrix = tuple[float, float, float, float, float, float]


def _objects(page: Any) -> Iterator[tuple[Any, int, Matrix | None]]:
    """The page's paths, images and embedded page descriptions, and what those draw.

    Each comes with the transform from its coordinates to the page's, None for
    the page's own objects, whose coordinates pdfium gives on the page already.
    Text objects are skipped: the text is read from the text page. This runs
    for every object of every page, so it keeps pdfium's functions local.
    """
    get_object, get_type = pdfium_c.FPDFPage_GetObject, _bare_object_type
    raw = page.raw
    for index in range(pdfium_c.FPDFPage_CountObjects(raw)):
        item = get_object(raw, index)
        kind = get_type(item)
        if kind in _DRAWN:
            yield item, kind, None
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
                yield from _inside(item, None, _FORM_DEPTH)


def _inside(form: Any, to_page: Matrix | None, depth: int) -> Iterator[tuple[Any, int, Matrix]]:
    """What an embedded page description draws, with the transform to the page."""
    matrix = pdfium_c.FS_MATRIX()
    if not pdfium_c.FPDFPageObj_GetMatrix(form, matrix):
        return
    own = (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)
    inner = _compose(own, to_page) if to_page else own
    for index in range(min(pdfium_c.FPDFFormObj_CountObjects(form), _MAX_FORM_CHILDREN)):
        item = pdfium_c.FPDFFormObj_GetObject(form, index)
        kind = pdfium_c.FPDFPageObj_GetType(item)
        if kind in _DRAWN:
            yield item, kind, inner
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth > 1:
                yield from _inside(item, inner, depth - 1)


_DRAWN = frozenset(
    {pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM}
)


def _compose(first: Matrix, then: Matrix) -> Matrix:
    """The transform applying ``first``, then ``then``."""
    a, b, c, d, e, f = first
    p, q, r, s, t, u = then
    return (
        a * p + b * r,
        a * q + b * s,
        c * p + d * r,
        c * q + d * s,
        e * p + f * r + t,
        e * q + f * s + u,
    )


def _apply(matrix: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = matrix
    return a * x + c * y + e, b * x + d * y + f


def _moved_box(bounds: Box, matrix: Matrix) -> Box:
    """The bounds of a box carried by ``matrix``: the box around its four moved corners."""
    left, bottom, right, top = bounds
    xs, ys = zip(*(_apply(matrix, x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    return min(xs), min(ys), max(xs), max(ys)
