"""Tables of PDF pages told by alignment alone: no grid of rules, columns set by white space.

Borderless tables (financial statements, inventories, lists of values) and
tables ruled across only (the booktabs style of papers: a rule above, under
the header and below) draw no grid, so :mod:`docworker.formats.pdf.tables`
never sees them. Their columns show in the words: gaps that run down through
several consecutive lines of the page at the same place.

A page's lines (pdfium's, with their boxes) are first put into bands, the
pieces that sit side by side on one visual line. A band is spread out when a
piece is much wider than its characters need or a short piece stands far from
the next; a page with fewer than two such bands costs a sort of its lines and
no call into pdfium. A run of bands starts at a spread-out band and takes the
close bands under it while their words leave its gaps open; only those bands
are measured, a spread-out piece cut into words at two character boxes a word.
The gaps of a run are its columns. Rows are the bands, but for multi-line
cells: where rows are set further apart than the lines of a cell, the wider
spaces part them; elsewhere a band that leaves the first column empty and
fills only columns the row above fills goes on with that row. A header is
the rows above a rule across the table near its top, or a bold first row, or
a first row of words over columns of numbers; a band right above the run
whose words group over several columns (a heading over two years) becomes a
first header row of spanning cells.

Prose in columns leaves a common gap too (the gutter), so a run is no table
when a column holds running text (lines of several words that fill it), dot
leaders (a table of contents) or only list markers in the first column, when
it is set in a fixed-pitch font (code), or when less than half its places, or
fewer than two rows of a column, hold text.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from docworker.document import Table, TableCell
from docworker.formats.pdf.layout import BULLETS, Box, Line
from docworker.formats.pdf.tables import FoundTable, numeric
from docworker.formats.pdf.text import PageFrame, PageText, spans_across

#: A gap between columns is at least this share of the line height (about an em) wide.
_COLUMN_GAP = 0.75
#: A piece whose box is wider than its characters need by this many line heights
#: may hold a column gap, and is cut into words.
_SPREAD = 1.5
#: The width of a character per point of line height, twice that from the first wide
#: (East Asian) characters on.
_NARROW = 0.5
_WIDE = re.compile("[\u1100-\U0010ffff]")
#: A table's body has at least this many bands, and this many with two cells or more.
_MIN_BANDS = 3
_MIN_FULL_BANDS = 2
#: Bands further apart than this many line heights are not in one table.
_MAX_BAND_GAP = 2.2
#: A column whose bands hold this many words or more on the median, each band filling
#: this share of the column's width, is running text.
_WORDY = 3
_FULL = 0.7
#: Dots that lead from an entry to its page number.
_LEADER = "....."
#: Words of letters in a fixed-pitch font are as wide per character, to this ratio;
#: it takes this many words to tell.
_SAME_PITCH = 1.12
_MIN_SAMPLES = 5
#: At least this share of a table's places hold text.
_MIN_FILLED = 0.5
#: Rows set further apart than the lines of their cells by this many line heights are
#: told apart by those spaces.
_ROW_SPACE = 0.35
#: A spanning header is at most this many line heights above the columns it spans.
_HEADER_GAP = 1.0
#: At most this many bands above a table's body are looked at as its header.
_MAX_HEADER_BANDS = 3
#: A first column of these only (bullets, item numbers) makes a list, not a table.
_LIST_MARKER = re.compile(r"^(?:[\-–—*]|\(?[0-9]{1,3}[.)]|\(?[a-zA-Z][.)]|\(?[ivxIVX]{1,4}[.)])$")


@dataclass(slots=True)
class _Word:
    """A word (or an unbroken piece) of a band, with where it starts and ends across."""

    text: str
    x0: float
    x1: float
    #: The line it ends ends in a hyphen that broke a word: the next line goes on with it.
    hyphenated: bool = False
    #: It follows the word before it with no space (a superscript, a change of font).
    attached: bool = False


@dataclass(slots=True)
class _Band:
    """The pieces that share one visual line, and their words once measured."""

    lines: list[Line]
    y0: float
    y1: float
    #: The height of its lowest piece, the measure of its gaps.
    height: float
    words: list[_Word] = field(default_factory=list)

    @property
    def bold(self) -> bool:
        return all(line.bold for line in self.lines)


def find_aligned_tables(
    lines: list[Line],
    text: PageText,
    frame: PageFrame,
    rules: list[tuple[float, float, float]],
    taken: list[Box],
) -> list[FoundTable]:
    """The tables of a page that its words' alignment shows, outside the boxes ``taken``.

    ``lines`` are the page's lines as :func:`~docworker.formats.pdf.text.read_lines`
    read them from ``text`` in ``frame``; ``rules`` are its rules across
    (``(y, x0, x1)``), which tell a header from the body under it.
    """
    if len(lines) < _MIN_BANDS or text.right_to_left:
        return []
    free = [
        line
        for line in lines
        if not _vertical(line) and not (taken and any(_inside(line, box) for box in taken))
    ]
    bands = _bands(free)
    spread = [_spread(band) for band in bands]
    if sum(spread) < _MIN_FULL_BANDS:
        return []
    found = []
    for run in _runs(bands, spread, text, frame):
        start = bands.index(run[0])
        above = _measured(bands[start - 1], text, frame) if start else None
        table = _table(run, above, rules)
        if table is not None and not _monospaced(run) and _holds_all(table, run, above, lines):
            found.append(table)
    return found


def _holds_all(table: FoundTable, run: list[_Band], above: _Band | None, lines: list[Line]) -> bool:
    """Whether every line of the page inside the table's box is one of its own: the lines
    inside are taken out of the page's paragraphs, so a line the table did not read (set
    sideways, or a ruled table's) would be lost or read twice."""
    bands = [above, *run] if above is not None and table.box[1] < run[0].y0 else run
    own = {id(line) for band in bands for line in band.lines}
    return all(id(line) in own for line in lines if _inside(line, table.box))


def _vertical(line: Line) -> bool:
    """Text running up or down the page (an arXiv stamp in the margin): no table's row."""
    return len(line.text) > 1 and line.y1 - line.y0 > 2 * (line.x1 - line.x0)


def _inside(line: Line, box: Box) -> bool:
    x, y = (line.x0 + line.x1) / 2, (line.y0 + line.y1) / 2
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def _bands(lines: list[Line]) -> list[_Band]:
    """The lines grouped into visual lines, top to bottom, each band's pieces left to right."""
    bands: list[_Band] = []
    for line in sorted(lines, key=lambda line: line.y0 + line.y1):
        middle = (line.y0 + line.y1) / 2
        last = bands[-1] if bands else None
        if last is not None and last.y0 <= middle <= last.y1 and not line.height > 2 * last.height:
            last.lines.append(line)
            last.y0, last.y1 = min(last.y0, line.y0), max(last.y1, line.y1)
            last.height = min(last.height, line.height)
        else:
            bands.append(_Band([line], line.y0, line.y1, line.height))
    for band in bands:
        band.lines.sort(key=lambda line: line.x0)
    return bands


def _slack(line: Line) -> float:
    """How much wider (in line heights) the line's box is than its characters need.

    A character needs half a line height (pdfium's boxes reach from the font's
    descent to its ascent, some 1.2 em), a wide one (CJK) a whole one.
    """
    text = line.text
    need = len(text) if text.isascii() else len(text) + len(_WIDE.findall(text))
    return (line.x1 - line.x0) / line.height - need * _NARROW


def _spread(band: _Band) -> bool:
    """Whether a band may cross a column gap: a piece spread out, or a short piece far from
    the next (two long pieces far apart are the lines of two columns of prose)."""
    pieces = band.lines
    for before, after in pairwise(pieces):
        if after.x0 - before.x1 >= _COLUMN_GAP * band.height and (_short(before) or _short(after)):
            return True
    return any(_slack(line) >= _SPREAD for line in pieces)


def _short(line: Line) -> bool:
    return line.text.count(" ") < _WORDY


def _words(band: _Band, text: PageText, frame: PageFrame) -> list[_Word]:
    """The band's words: a spread-out piece cut at its spaces, any other piece whole."""
    words: list[_Word] = []
    for line in band.lines:
        # Pieces pdfium split off one word (a superscript) go on with it, as in TextBlock.
        attached = bool(words) and 0 <= line.x0 - words[-1].x1 < 0.1 * band.height
        count = len(words)
        if line.start < 0 or _slack(line) < _SPREAD or " " not in line.text:
            words.append(_Word(line.text, line.x0, line.x1, line.hyphenated))
        else:
            words.extend(_cut(line, text, frame))
        if attached and len(words) > count:
            words[count].attached = True
    return words


def _cut(line: Line, text: PageText, frame: PageFrame) -> list[_Word]:
    """A line's words, each measured from its first and last characters' boxes."""
    parts: list[tuple[str, int]] = []
    offset = 0
    for part in line.text.split(" "):
        if part:
            parts.append((part, line.start + offset))
        offset += len(part) + 1
    spans = spans_across(text, frame, [(at, at + len(part) - 1) for part, at in parts])
    words = []
    for index, ((part, _), span) in enumerate(zip(parts, spans, strict=True)):
        if span is not None:
            hyphenated = line.hyphenated and index == len(parts) - 1
            words.append(_Word(part, span[0], span[1], hyphenated))
    return words


def _monospaced(run: list[_Band]) -> bool:
    """Whether the run is set in a fixed-pitch font: a listing of code, whose columns are
    made by spaces (a table set in such a font is lost with it).

    Told from the words' widths, as fonts' flags are often not set: in a fixed-pitch
    font every word of letters is as wide per character (digits are in most fonts).
    """
    widths = sorted(
        (word.x1 - word.x0) / len(word.text)
        for band in run
        for word in band.words
        if len(word.text) >= 3 and any(char.isalpha() for char in word.text)
    )
    return len(widths) >= _MIN_SAMPLES and widths[-1] <= _SAME_PITCH * widths[0]


# -- runs of bands into tables --------------------------------------------------------------


def _runs(
    bands: list[_Band], spread: list[bool], text: PageText, frame: PageFrame
) -> list[list[_Band]]:
    """Runs of consecutive bands that leave common gaps, as long as each can be made.

    A run starts at a spread-out band and grows while the next band is close
    under it and its words leave open as many gaps as the run had; a band that
    closes one (a paragraph line, a title) ends the run. Only the bands a run
    starts at or reaches are measured, and what the run's words cover is kept
    merged as it grows, a few stretches across, so that a long run costs a pass
    over each band's words once.
    """
    runs: list[list[_Band]] = []
    run: list[_Band] = []
    cover: list[tuple[float, float]] = []
    for band, spreads in zip(bands, spread, strict=True):
        if run and _close(run[-1], band):
            least = _COLUMN_GAP * min(band.height, run[-1].height)
            grown = _covered(cover + _spans(_measured(band, text, frame)), least)
            if len(cover) <= len(grown) > 1:
                run.append(band)
                cover = grown
                continue
        if len(run) >= _MIN_BANDS:
            runs.append(run)
        run, cover = [], []
        if spreads:
            cover = _covered(_spans(_measured(band, text, frame)), _COLUMN_GAP * band.height)
            run = [band] if len(cover) > 1 else []
    if len(run) >= _MIN_BANDS:
        runs.append(run)
    return runs


def _measured(band: _Band, text: PageText, frame: PageFrame) -> _Band:
    """The band with its words (see :func:`_words`), measured the first time it is asked."""
    if not band.words:
        band.words = _words(band, text, frame)
    return band


def _close(above: _Band, band: _Band) -> bool:
    return band.y0 - above.y1 <= _MAX_BAND_GAP * max(above.height, band.height)


def _spans(band: _Band) -> list[tuple[float, float]]:
    return [(word.x0, word.x1) for word in band.words]


def _covered(spans: list[tuple[float, float]], least: float) -> list[tuple[float, float]]:
    """What ``spans`` cover across, stretches less than ``least`` apart taken as one."""
    merged: list[tuple[float, float]] = []
    for x0, x1 in sorted(spans):
        if merged and x0 - merged[-1][1] < least:
            if x1 > merged[-1][1]:
                merged[-1] = (merged[-1][0], x1)
        else:
            merged.append((x0, x1))
    return merged


def _gaps(bands: list[_Band]) -> list[tuple[float, float]]:
    """The spaces across that no word of the bands covers, between their leftmost and
    rightmost words, at least a column gap wide."""
    least = _COLUMN_GAP * min(band.height for band in bands)
    cover = _covered([span for band in bands for span in _spans(band)], least)
    return [(left[1], right[0]) for left, right in pairwise(cover)]


def _table(
    run: list[_Band], above: _Band | None, rules: list[tuple[float, float, float]]
) -> FoundTable | None:
    """The table a run of bands makes, with its header, or None if it is text or a list.

    ``above`` is the band over the run, which joins the table as a header row of
    cells spanning columns when it is one (see :func:`_spanning`).
    """
    gaps = _gaps(run)
    bounds = [(a + b) / 2 for a, b in gaps]
    placed = [_place(band, bounds) for band in run]
    n_cols = len(bounds) + 1
    if sum(1 for cells in placed if len(cells) >= 2) < _MIN_FULL_BANDS:
        return None
    if _is_text(placed, n_cols) or _is_list(placed):
        return None
    grouped = _rows(run, placed)
    filled = sum(len(row) for _, row in grouped)
    per_column = Counter(col for _, row in grouped for col in row)
    if (
        sum(1 for _, row in grouped if len(row) >= 2) < _MIN_FULL_BANDS
        or filled < _MIN_FILLED * len(grouped) * n_cols
        or min(per_column.values()) < 2
    ):
        return None
    tops = [top for top, _ in grouped]
    rows = [{col: _cell_text(words) for col, words in row.items()} for _, row in grouped]
    left = min(word.x0 for band in run for word in band.words)
    right = max(word.x1 for band in run for word in band.words)
    header = _header_rows(rows, [run[top] for top in tops], run, rules, (left, right))
    cells = [
        TableCell(row=r, col=col, text=text, header=r < header)
        for r, row in enumerate(rows)
        for col, text in sorted(row.items())
    ]
    top = run[0].y0
    spans = _spanning(above, run[0], bounds, (left, right)) if above is not None else []
    if spans:
        assert above is not None
        cells = _with_spanning_row(cells, spans, header > 0)
        top = above.y0
    n_rows = len(rows) + bool(spans)
    table = Table(n_rows=n_rows, n_cols=n_cols, cells=cells)
    return FoundTable((left, top, right, run[-1].y1), table)


def _spanning(
    band: _Band, below: _Band, bounds: list[float], across: tuple[float, float]
) -> list[tuple[int, int, str]]:
    """The cells ``(column, span, text)`` of a header band over a table's columns.

    A band right above the table (a line apart at most), within its width, whose
    words group into cells over columns, at least one of them over several (a
    heading over the columns of two years). Nothing if the band is not one."""
    height = max(band.height, below.height)
    left, right = across
    if below.y0 - band.y1 > _HEADER_GAP * height or not band.words:
        return []
    if band.words[0].x0 < left - height or band.words[-1].x1 > right + height:
        return []
    groups: list[list[_Word]] = []
    for word in band.words:
        if groups and word.x0 - groups[-1][-1].x1 < _COLUMN_GAP * height:
            groups[-1].append(word)
        else:
            groups.append([word])
    spans = []
    for group in groups:
        first = bisect.bisect(bounds, group[0].x0)
        last = bisect.bisect(bounds, group[-1].x1)
        spans.append((first, last - first + 1, _cell_text(group)))
    ends = [first + span for first, span, _ in spans]
    overlapping = any(end > first for end, (first, _, _) in zip(ends, spans[1:], strict=False))
    # A heading spans the columns of values; a line over the first column too is a
    # caption or the end of a paragraph.
    if overlapping or all(span == 1 for _, span, _ in spans) or spans[0][0] == 0 < spans[0][1] - 1:
        return []
    return spans


def _with_spanning_row(
    cells: list[TableCell], spans: list[tuple[int, int, str]], header_below: bool
) -> list[TableCell]:
    """The table's cells under a first row of spanning header cells.

    Where that row leaves a column empty and the row under it is a header too,
    that header's cell reaches up into the empty place (a name set beside a
    spanning heading, over the column's own line).
    """
    covered = {col for first, span, _ in spans for col in range(first, first + span)}
    moved = []
    for cell in cells:
        if header_below and cell.row == 0 and cell.col not in covered:
            moved.append(cell.model_copy(update={"row_span": 2}))
        else:
            moved.append(cell.model_copy(update={"row": cell.row + 1}))
    heads = [
        TableCell(row=0, col=first, col_span=span, text=text, header=True)
        for first, span, text in spans
    ]
    return sorted(heads + moved, key=lambda cell: (cell.row, cell.col))


def _place(band: _Band, bounds: list[float]) -> dict[int, list[_Word]]:
    """The band's words by column, the columns cut at ``bounds``."""
    cells: dict[int, list[_Word]] = {}
    for word in band.words:
        cells.setdefault(bisect.bisect(bounds, (word.x0 + word.x1) / 2), []).append(word)
    return cells


def _is_text(placed: list[dict[int, list[_Word]]], n_cols: int) -> bool:
    """Whether a column holds running text: lines of several words that fill the column's
    width, as the lines of a paragraph do (a column of amounts fills its width too, with
    one word a line; a column of names neither), or dot leaders (a table of contents).

    One such column is enough: a column of prose beside a list is a page in two
    columns. A table whose cells wrap long sentences is lost with it.
    """
    for col in range(n_cols):
        cells = [cells[col] for cells in placed if col in cells]
        if any(_LEADER in word.text for cell in cells for word in cell):
            return True
        left = min(cell[0].x0 for cell in cells)
        width = max(cell[-1].x1 for cell in cells) - left
        fills = sorted((cell[-1].x1 - cell[0].x0) / width if width > 0 else 1.0 for cell in cells)
        words = sorted(len(_joined(cell).split()) for cell in cells)
        middle = len(cells) // 2
        if words[middle] >= _WORDY and fills[middle] >= _FULL:
            return True
    return False


def _is_list(placed: list[dict[int, list[_Word]]]) -> bool:
    """Whether the first column holds only bullets or item numbers."""
    first = [_joined(cells[0]) for cells in placed if 0 in cells]
    return bool(first) and all(
        _LIST_MARKER.match(text) or (len(text) == 1 and text in BULLETS) for text in first
    )


def _joined(words: list[_Word]) -> str:
    return " ".join(word.text for word in words)


def _rows(
    run: list[_Band], placed: list[dict[int, list[_Word]]]
) -> list[tuple[int, dict[int, list[_Word]]]]:
    """The table's rows, each with the index of its first band: the bands grouped where
    multi-line cells put several in one row.

    Where rows are set further apart than the lines inside a cell, the wider spaces
    part the rows (and a cell set in the middle of its row's height, its first
    column one of them, stays in its row), and so does a band that has a first
    cell of its own under another. Where all lines are as far apart, a
    band continues the row above when it leaves the first column empty, fills
    only columns the row above fills, and is not all numbers (amounts do not
    wrap, so a band of amounts under amounts is a row of its own).
    """
    spaces = [band.y0 - above.y1 for above, band in pairwise(run)]
    least = min(spaces, default=0.0)
    parted = [
        space > least + _ROW_SPACE * band.height
        for space, band in zip(spaces, run[1:], strict=True)
    ]
    spaced = any(parted) and not all(parted)
    rows: list[tuple[int, dict[int, list[_Word]]]] = []
    for index, cells in enumerate(placed):
        above = rows[-1][1] if rows else None
        if above is None:
            joins = False
        elif spaced:
            joins = not parted[index - 1] and not (0 in cells and 0 in above)
        else:
            joins = _continues(cells, above)
        if above is not None and joins:
            for col, words in cells.items():
                above[col] = above.get(col, []) + words
        else:
            rows.append((index, {col: list(words) for col, words in cells.items()}))
    return rows


def _continues(cells: dict[int, list[_Word]], above: dict[int, list[_Word]]) -> bool:
    if 0 in cells or not cells.keys() <= above.keys():
        return False
    return not all(numeric(_joined(words)) for words in cells.values())


def _cell_text(words: list[_Word]) -> str:
    """The words of a cell on one line; a word a hyphen broke at a line's end made whole."""
    parts: list[str] = []
    for word in words:
        if parts and parts[-1].endswith("\ufffe"):
            rest = word.text if word.text[:1].islower() else "-" + word.text
            parts[-1] = parts[-1][:-1] + rest
        elif parts and word.attached:
            parts[-1] += word.text
        else:
            parts.append(word.text)
        if word.hyphenated:
            parts[-1] += "\ufffe"
    return " ".join(parts).replace("\ufffe", "-")


def _header_rows(
    rows: list[dict[int, str]],
    firsts: list[_Band],
    run: list[_Band],
    rules: list[tuple[float, float, float]],
    across: tuple[float, float],
) -> int:
    """How many of the first rows are a header: those above a rule across the table near its
    top, else a first row in bold over a body that is not, else a first row of words over
    a column of numbers. ``firsts`` are the rows' first bands."""
    if len(rows) < 2:
        return 0
    left, right = across
    for r in range(1, min(len(rows), _MAX_HEADER_BANDS + 1)):
        upper, lower = run[run.index(firsts[r]) - 1].y1, firsts[r].y0
        for y, x0, x1 in rules:
            if upper - 1 <= y <= lower + 1 and x0 <= left + 2 and x1 >= right - 2:
                return r
    body = run[run.index(firsts[1]) :]
    if firsts[0].bold and not all(band.bold for band in body):
        return 1
    first = rows[0]
    wordy = all(text and not numeric(text) for text in first.values())
    columns = {col for row in rows for col in row}
    numbers = any(
        sum(1 for row in rows[1:] if numeric(row.get(col, ""))) > len(rows[1:]) / 2
        for col in columns
    )
    return 1 if wordy and numbers and len(first) >= 2 else 0
