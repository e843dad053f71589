"""DrawingML charts (``c:chartSpace`` parts of docx, pptx and xlsx) as blocks.

A chart part caches the numbers it plots, so its content can be read without
the workbook behind it: the title, the kind of plot, and the data as a table
whose first column holds the categories (or x values) and whose other columns
hold one series each. :func:`add_chart` writes that as an IMAGE block standing
for the graphic (its text says what kind of chart it is), a CAPTION with the
title and a TABLE with the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from docworker.document import BlockKind, DocumentBuilder, Table, TableCell
from docworker.formats.ooxml.package import local_name, parse_xml

_C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
_A_T = "{http://schemas.openxmlformats.org/drawingml/2006/main}t"

_KINDS = {
    "barChart": "Bar", "bar3DChart": "Bar", "lineChart": "Line", "line3DChart": "Line",
    "pieChart": "Pie", "pie3DChart": "Pie", "ofPieChart": "Pie", "doughnutChart": "Doughnut",
    "areaChart": "Area", "area3DChart": "Area", "scatterChart": "Scatter", "bubbleChart": "Bubble",
    "radarChart": "Radar", "stockChart": "Stock", "surfaceChart": "Surface",
    "surface3DChart": "Surface",
}  # fmt: skip
#: Charts bigger than this keep their title but not their data table.
MAX_CHART_CELLS = 10_000


@dataclass
class Series:
    name: str
    categories: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)


@dataclass
class Chart:
    title: str | None
    #: What the plot is, e.g. "Bar chart"; several plot kinds are joined with " and ".
    kind: str
    series: list[Series] = field(default_factory=list)

    def table(self) -> Table | None:
        """Categories down the first column, one column per series; None without data."""
        if not self.series:
            return None
        categories = max((s.categories for s in self.series), key=len)
        n_rows = 1 + max(len(categories), *(len(s.values) for s in self.series))
        n_cols = 1 + len(self.series)
        if n_rows * n_cols > MAX_CHART_CELLS or n_rows == 1:
            return None
        cells = [TableCell(row=0, col=0, text="", header=True)]
        cells += [
            TableCell(row=0, col=c, text=s.name, header=True) for c, s in enumerate(self.series, 1)
        ]
        for r in range(1, n_rows):
            cells.append(TableCell(row=r, col=0, text=_at(categories, r - 1)))
            cells += [
                TableCell(row=r, col=c, text=_at(s.values, r - 1))
                for c, s in enumerate(self.series, 1)
            ]
        return Table(n_rows=n_rows, n_cols=n_cols, cells=cells)


def _at(values: list[str], index: int) -> str:
    return values[index] if index < len(values) else ""


def read_chart(xml: bytes) -> Chart:
    """The title, kind and cached data of a chart part."""
    root = parse_xml(xml)
    chart = root.find(f"{_C}chart")
    if chart is None:
        return Chart(title=None, kind="Chart")
    title = chart.find(f"{_C}title")
    plot_area = chart.find(f"{_C}plotArea")
    plots = [] if plot_area is None else [p for p in plot_area if local_name(p) in _KINDS]
    kinds = list(dict.fromkeys(_KINDS[local_name(p)] for p in plots))
    return Chart(
        title=_rich_text(title) if title is not None else None,
        kind=(" and ".join(kinds) or "Other") + " chart",
        series=[_series(s) for plot in plots for s in plot.iter(f"{_C}ser")],
    )


def _rich_text(element: etree._Element) -> str | None:
    """Text of a title: its rich text paragraphs, else the cell it refers to."""
    rich = element.find(f"{_C}tx/{_C}rich")
    if rich is not None:
        paragraphs = ["".join(t.text or "" for t in p.iter(_A_T)) for p in rich]
        text = "\n".join(p for p in paragraphs if p.strip())
    else:
        text = " ".join(_points(element.find(f"{_C}tx")))
    return text.strip() or None


def _points(element: etree._Element | None) -> list[str]:
    """The cached values under a data reference (``c:strCache``/``c:numCache``/literals)."""
    if element is None:
        return []
    found: dict[int, str] = {}
    for point in element.iter(f"{_C}pt"):
        value = point.find(f"{_C}v")
        found[int(point.get("idx", len(found)))] = _number(value.text if value is not None else "")
    if not found:
        return [v.text or "" for v in element.iter(f"{_C}v")]
    return [found.get(i, "") for i in range(max(found) + 1)]


def _number(text: str | None) -> str:
    """Cached numbers as a person writes them: ``120`` rather than ``120.0``."""
    value = (text or "").strip()
    try:
        number = float(value)
    except ValueError:
        return value
    return (
        str(int(number)) if number.is_integer() and abs(number) < 1e15 else format(number, ".15g")
    )


def _series(ser: etree._Element) -> Series:
    name = " ".join(_points(ser.find(f"{_C}tx"))).strip()
    categories = _points(ser.find(f"{_C}cat")) or _points(ser.find(f"{_C}xVal"))
    values = _points(ser.find(f"{_C}val")) or _points(ser.find(f"{_C}yVal"))
    return Series(name=name, categories=categories, values=values)


def add_chart(builder: DocumentBuilder, chart: Chart, alt_text: str = "", **fields: Any) -> None:
    """Write ``chart`` as IMAGE (the graphic), CAPTION (its title) and TABLE (its data).

    ``fields`` (page, bbox) go on every block.
    """
    builder.add(BlockKind.IMAGE, alt_text.strip() or chart.kind, **fields)
    if chart.title:
        builder.add(BlockKind.CAPTION, chart.title, **fields)
    table = chart.table()
    if table is not None:
        builder.add(BlockKind.TABLE, table=table, **fields)
