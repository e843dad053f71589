"""Layout of PDF text: lines into paragraphs, columns into reading order, styles into headings.

Running headers and footers are told by where they sit and how they repeat.
Everything here is plain geometry in display coordinates (points from the
page's top-left corner, y growing downwards); it knows nothing of pdfium.
:mod:`docworker.formats.pdf.parser` hands it the lines pdfium found on each page in
pdfium's order, which follows the content stream and is right far more often
than any geometric sort. So the order is only changed where the page clearly
has two columns of running text and the blocks are interleaved; everything
else keeps pdfium's order.

The functions run for every line use conditional expressions rather than
``min()`` and ``max()``: on a plain-text read the calls cost more than all
the comparisons they make.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

#: Four coordinates of a box: ``(x0, y0, x1, y1)`` in display coordinates, where not
#: said otherwise (PDF user space: ``(left, bottom, right, top)``).
Box = tuple[float, float, float, float]

T = TypeVar("T")
U = TypeVar("U")

#: Glyphs that open a bulleted list item; the ``\uf0xx`` ones are Symbol/Wingdings
#: bullets that fonts map into the private use area.
BULLETS = frozenset("•◦▪▫‣∙●○■□➢►▶✓✔❖\uf0b7\uf0a7\uf076\uf0d8\uf0fc")

#: An ordered list item's number or letter and its full stop or parenthesis: ``2.``, ``(b)``.
#: A number or a small letter may be set close to a word (``10.Then``, ``a.Step``, a tab
#: shown as nothing), never to a figure (``3.5``) or as an abbreviation's (``e.g.``).
_NUMBERED = re.compile(
    r"\(?(?:(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)]\s+\S|\d{1,3}[.)][^\W\d]|[a-z][.)][A-Z])"
)

#: What ends a paragraph's last line.
_SENTENCE_ENDS = frozenset('.!?:"”’)')

#: A vertical gap larger than this share of the line height starts a new paragraph.
_PARAGRAPH_GAP = 0.7
#: Pieces of one visual line closer than this share of the line height are one line.
_FRAGMENT_GAP = 0.6
#: A first line indented by more than this share of the line height starts a paragraph.
_INDENT = 0.8
#: Font sizes closer than this (points) count as the same size.
_SIZE_TOLERANCE = 0.5
#: A heading is at least this much larger than the body text, and at least 1 pt.
_HEADING_RATIO = 1.15
#: Sizes that carry more than this share of a document's characters are body sizes.
_HEADING_MAX_SHARE = 0.3
#: Longer blocks are never headings, whatever their size.
_HEADING_MAX_CHARS = 200
_HEADING_MAX_LINES = 3
_MAX_LEVEL = 6
#: Running headers and footers sit in this share of the page's height at its top or bottom.
_MARGIN = 0.13
_MAX_RUNNING_CHARS = 150
#: Numbers, roman numerals included, which change from page to page of a running header.
_PAGE_NUMBERS = re.compile(r"\d+|\b[ivxlc]+\b")
#: A caption names its figure or table, in English or a few other languages, and numbers it.
_CAPTION = re.compile(
    r"\[?\s*(?:figure|fig\.|table|tab\.|abbildung|abb\.|tabelle|tableau|figura|tabla|tabela"
    r"|rysunek|рис\.|рисунок|таблица|그림|표|図|表|图)"
    r"\s*(?:[a-z]?\d+(?:[.\-–]\d+)*|[ivxlc]+)(?!\w)",
    re.IGNORECASE,
)
#: A verb straight after the number: a sentence that refers to the figure ("Table 2 shows").
_REFERENCE = re.compile(
    r"\s*(?:shows?|lists?|summari[sz]es|describes?|presents?|illustrates?|gives?|compares?"
    r"|contains?|depicts?|reports?|provides?|displays?|is|are|was|were|has|have)\b",
    re.IGNORECASE,
)
_CAPTION_MAX_LINES = 8
_CAPTION_MAX_CHARS = 1000
#: A caption is at most this many of its line heights away from its figure ...
_CAPTION_GAP = 2.5
#: ... and overlaps it by at most this much (points), as a caption set inside a frame does.
_CAPTION_OVERLAP = 4.0


class Style(NamedTuple):
    """How a heading is set: font size in points, and whether bold; sorts largest last."""

    size: float
    bold: bool


@dataclass(slots=True)
class Line:
    """One piece of a line of text with its box; ``size`` is 0 when fonts are not read."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    #: The index of its first character in its page's text, -1 when not read from one: the
    #: way back to its characters' boxes for the few lines whose words are measured.
    start: int = -1
    size: float = 0.0
    #: Set in bold (its first and last characters are); only read with the font sizes.
    bold: bool = False
    #: Its first character is bold: a bold lead-in that runs on into regular text.
    starts_bold: bool = False
    #: The line ends inside a word broken by a hyphen; the word goes on on the next line.
    hyphenated: bool = False
    #: Read often enough while grouping to be worth keeping rather than computing.
    height: float = field(init=False)

    def __init__(
        self,
        text: str,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        start: int = -1,
        size: float = 0.0,
        bold: bool = False,
        starts_bold: bool = False,
        hyphenated: bool = False,
    ) -> None:
        # The dataclass's own ``__init__`` with its ``__post_init__`` in it, as one call
        # rather than two: a plain-text read builds a Line for every line of every page.
        self.text, self.x0, self.y0, self.x1, self.y1 = text, x0, y0, x1, y1
        self.size, self.bold, self.starts_bold = size, bold, starts_bold
        self.hyphenated, self.start = hyphenated, start
        height = y1 - y0
        # max(height, 1.0), NaN kept as max() keeps it.
        self.height = 1.0 if height < 1.0 else height

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass(slots=True)
class TextBlock:
    """A paragraph (or heading, or list item) made of consecutive lines."""

    lines: list[Line] = field(default_factory=list)
    x0: float = float("inf")
    y0: float = float("inf")
    x1: float = float("-inf")
    y1: float = float("-inf")
    #: How many characters the lines hold.
    chars: int = 0

    def add(self, line: Line) -> None:
        self.lines.append(line)
        self.chars += len(line.text)
        self.x0 = line.x0 if line.x0 < self.x0 else self.x0
        self.y0 = line.y0 if line.y0 < self.y0 else self.y0
        self.x1 = line.x1 if line.x1 > self.x1 else self.x1
        self.y1 = line.y1 if line.y1 > self.y1 else self.y1

    def extend_line(self, piece: Line, last: Line) -> None:
        """Add ``piece`` to the block's last line; ``last`` is the piece read before it."""
        line = self.lines.pop()
        self.chars -= line.chars
        gap = piece.x0 - last.x1
        # Only a piece that follows closely on the right goes on with the same word.
        joiner = "" if 0 <= gap < 0.1 * last.height else " "
        longer = line if line.chars >= piece.chars else piece
        self.add(
            Line(
                line.text + joiner + piece.text,
                min(line.x0, piece.x0),
                min(line.y0, piece.y0),
                max(line.x1, piece.x1),
                max(line.y1, piece.y1),
                size=longer.size,
                bold=line.bold and piece.bold,
                starts_bold=line.starts_bold,
                hyphenated=piece.hyphenated,
            )
        )

    @property
    def text(self) -> str:
        """The lines joined by spaces, words broken by a line-end hyphen made whole again."""
        parts: list[str] = []
        broken: str | None = None  # the first half of a word hyphenated at a line's end
        for line in self.lines:
            text = line.text.strip()
            if broken is not None:
                # A lower-case continuation means the hyphen only broke the word;
                # anything else (``Lucene-BM25``) keeps it.
                text = broken + ("" if text[:1].islower() else "-") + text
                broken = None
            if line.hyphenated:
                broken = text
            else:
                parts.append(text)
        if broken is not None:
            parts.append(broken + "-")
        return " ".join(filter(None, parts))

    @property
    def style(self) -> Style:
        """The size and boldness of the block's first line, which a heading's text sets."""
        return Style(self.lines[0].size, self.lines[0].bold)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def vertical(self) -> bool:
        """Text running up or down the page, such as an arXiv stamp in the margin."""
        return len(self.lines) == 1 and self.y1 - self.y0 > 3 * max(self.width, 1.0)

    @property
    def lone(self) -> bool:
        """A single line that does not end like a sentence or a lead-in."""
        return len(self.lines) == 1 and self.lines[0].text.rstrip()[-1:] not in ".,;:"

    @property
    def bulleted(self) -> bool:
        return bool(self.lines) and self.lines[0].text.lstrip()[:1] in BULLETS


def group_blocks(lines: list[Line]) -> list[TextBlock]:
    """Group a page's lines, in pdfium's order, into paragraphs.

    Pieces pdfium split off one visual line (superscripts, font changes) are
    first joined back into that line. A piece is compared with the piece read
    before it, not with the line built so far, so that a line never grows tall
    enough to swallow the next one.
    """
    if not lines:
        return []
    current = TextBlock()
    blocks = [current]
    last = lines[0]
    current.add(last)
    for index in range(1, len(lines)):
        line = lines[index]
        band = _same_band(last, line)
        if band and _continues(last, line):
            current.extend_line(line, last)
        else:
            # The block's last line is ``last`` unless pieces were joined into it.
            prev = current.lines[-1]
            if _starts_block(current, line, band if prev is last else _same_band(prev, line)):
                current = TextBlock()
                blocks.append(current)
            current.add(line)
        last = line
    return blocks


def _continues(last: Line, line: Line) -> bool:
    """Whether ``line``, in the same band as ``last``, is more of the visual line it is on."""
    if last.hyphenated:
        return False
    # Overlapping pieces count too: a subscript under its superscript.
    return _gap(last, line) < _FRAGMENT_GAP * (
        last.height if last.height > line.height else line.height
    )


def _gap(a: Line, b: Line) -> float:
    """The horizontal space between two pieces, negative when they overlap."""
    after, before = b.x0 - a.x1, a.x0 - b.x1
    return after if after > before else before


def _same_band(a: Line, b: Line) -> bool:
    """Whether two pieces sit side by side on one visual line.

    A superscript shares only a third or so of its height with its line, and
    lines of running text do not overlap at all.
    """
    top = a.y0 if a.y0 > b.y0 else b.y0
    bottom = a.y1 if a.y1 < b.y1 else b.y1
    return bottom - top >= 0.3 * (a.height if a.height < b.height else b.height)


def _starts_block(block: TextBlock, line: Line, band: bool) -> bool:
    """Whether ``line`` opens a new block rather than going on with ``block``; ``band``
    says whether it is in the same band as the block's last line."""
    prev = block.lines[-1]
    height, tallest = (
        (prev.height, line.height) if prev.height < line.height else (line.height, prev.height)
    )
    if band:
        # More of the line just read (part of a formula) belongs to the block,
        # unless it stands apart, as across a column gap.
        near = _gap(prev, line) < 1.2 * tallest
        return not near and not block.x0 <= (line.x0 + line.x1) / 2 <= block.x1
    if line.y0 - prev.y1 > _PARAGRAPH_GAP * height or line.y1 < prev.y0:
        return True  # a gap below, or a jump back up the page (next column, a float)
    if line.x1 < block.x0 or line.x0 > block.x1:
        return True  # beside the block, not under it
    # A bold line ends where regular text starts, and starts after regular text;
    # but a bold lead-in may run on into regular text on its last line.
    if abs(prev.size - line.size) > _SIZE_TOLERANCE or line.starts_bold != prev.bold:
        return True
    return (
        line.text[0] in BULLETS
        or _next_item(block, line, height)
        or _indented_start(block, line, height)
        or _ended_short(block, prev, line)
    )


def _ended_short(block: TextBlock, prev: Line, line: Line) -> bool:
    """A sentence that ends its line well short of the right edge, before a line whose
    first word would have fitted in the space left: the end of a paragraph set with
    neither a gap nor an indent before the next."""
    if prev.text.rstrip()[-1:] not in _SENTENCE_ENDS:
        return False
    right = block.x1 if block.x1 > line.x1 else line.x1
    first_word = line.text.lstrip().split(" ", 1)[0]
    per_char = (line.x1 - line.x0) / len(line.text)
    return right - prev.x1 > (len(first_word) + 2) * per_char


def _next_item(block: TextBlock, line: Line, height: float) -> bool:
    """A numbered line that goes on a list: after another item (``1.`` then ``2.``, or a
    nested ``a.``) unless it lines up with that item's wrapped lines, or after a line
    that ends a sentence or leads in with a colon."""
    if _NUMBERED.match(line.text) is None:
        return False
    first, last = block.lines[0], block.lines[-1]
    if first.text[:1] in BULLETS or _NUMBERED.match(first.text):
        return last is first or abs(line.x0 - last.x0) > 0.5 * height
    # Not a capital (``A. Name``): after a sentence that is more often a name's initial.
    return last.text.rstrip()[-1:] in {".", ":", "!", "?"} and not line.text[:1].isupper()


def _indented_start(block: TextBlock, line: Line, height: float) -> bool:
    """A first line indented against a flush-left paragraph of two or more lines."""
    if line.x0 - block.x0 <= _INDENT * height or len(block.lines) < 2:
        return False
    # The median, since a hanging quote mark or a list number moves single lines.
    left = sorted(b.x0 for b in block.lines[1:])[(len(block.lines) - 1) // 2]
    indent = line.x0 - left
    return _INDENT * height < indent < 8 * height and abs(block.lines[-1].x0 - left) < 0.3 * height


def reading_order(blocks: list[TextBlock]) -> list[TextBlock]:
    """The blocks in reading order: columns left to right when the page has two of them.

    Full-width blocks (titles, wide figures, footers) cut the page into bands;
    within a band the left column is read before the right one. Margin text
    running up the page goes last.
    """
    body = [b for b in blocks if not b.vertical]
    if len(body) < 4:
        return blocks
    # Lists rather than generators here and below: this runs for nearly every page.
    left = min([b.x0 for b in body])
    right = max([b.x1 for b in body])
    middle = (left + right) / 2
    tolerance = 0.02 * (right - left)
    sides = {id(b): _side(b, middle, tolerance) for b in body}
    if not _has_two_columns(body, sides, right - left):
        return blocks
    _mark_after_columns(body, sides)
    if _in_column_order(body, sides):
        return blocks
    full = sorted((b for b in body if sides[id(b)] == "F"), key=lambda b: b.y0)
    bands: list[list[TextBlock]] = [[] for _ in range(len(full) + 1)]
    for block in body:
        if sides[id(block)] != "F":
            bands[sum(1 for f in full if f.y0 <= block.y0)].append(block)
    ordered: list[TextBlock] = []
    for index, band in enumerate(bands):
        if index:
            ordered.append(full[index - 1])
        band.sort(key=lambda b: (sides[id(b)], b.y0))
        ordered.extend(band)
    return ordered + [b for b in blocks if b.vertical]


def _side(block: TextBlock, middle: float, tolerance: float) -> str:
    """``L`` or ``R`` for a block within one half, ``F`` for one across or centred on the middle."""
    centre = (block.x0 + block.x1) / 2
    if abs(centre - middle) < tolerance:
        return "F"  # a page number, a centred caption
    if block.x1 <= middle + tolerance:
        return "L"
    if block.x0 >= middle - tolerance:
        return "R"
    return "F"


def _has_two_columns(body: list[TextBlock], sides: dict[int, str], span: float) -> bool:
    """Whether both halves hold running text: paragraphs of several lines, half as wide."""
    total = sum([b.chars for b in body])
    column_chars = {"L": 0, "R": 0, "F": 0}
    for block in body:
        if len(block.lines) >= 2 and block.x1 - block.x0 > 0.3 * span:
            column_chars[sides[id(block)]] += block.chars
    return min(column_chars["L"], column_chars["R"]) > 0.2 * total


def _mark_after_columns(body: list[TextBlock], sides: dict[int, str]) -> None:
    """Count as full width the short left-hand blocks that follow the columns.

    A heading, a list or a note set flush left under two columns sits in the left
    half as a left column's block does, but pdfium reads it after the right column,
    and no right-hand block is beside it. A block that goes on with the left column
    is not: pdfium reads a right-hand block above or beside it later.
    """
    # The top of the highest right-hand block read after each block.
    next_right_top = [float("inf")] * len(body)
    top = float("inf")
    for index in range(len(body) - 1, -1, -1):
        next_right_top[index] = top
        block = body[index]
        if sides[id(block)] == "R" and block.y0 < top:
            top = block.y0
    right_bottom = float("inf")  # the bottom of the highest right-hand block read so far
    for index, block in enumerate(body):
        side = sides[id(block)]
        if side == "R" and block.y1 < right_bottom:
            right_bottom = block.y1
        elif (
            side == "L"
            and right_bottom <= block.y0
            and next_right_top[index] >= block.y1
            and not any(sides[id(r)] == "R" and r.y0 < block.y1 and r.y1 > block.y0 for r in body)
        ):
            sides[id(block)] = "F"


def _in_column_order(body: list[TextBlock], sides: dict[int, str]) -> bool:
    """Whether pdfium already reads each column through before the next one.

    True when, between full-width blocks, left blocks never follow right ones
    and each column runs down the page.
    """
    last_side = "F"
    last_y = {"L": float("-inf"), "R": float("-inf")}
    for block in body:
        side = sides[id(block)]
        if side == "F":
            last_side = "F"
            last_y = {"L": float("-inf"), "R": float("-inf")}
            continue
        if (last_side == "R" and side == "L") or block.y0 < last_y[side]:
            return False
        last_side, last_y[side] = side, block.y0
    return True


@dataclass(frozen=True, slots=True)
class HeadingScale:
    """Which styles make headings in one document, and their levels.

    The body size is the size most characters have. A style is a heading style
    if its size is clearly larger, or it is bold and not smaller, and its size
    is rare enough not to be a second body size.
    """

    body: float
    levels: dict[Style, int]

    @classmethod
    def measure(cls, sizes: Counter[float], styles: Counter[Style]) -> HeadingScale:
        """The scale from the characters per font size and the candidate blocks' styles."""
        if not sizes:
            return cls(0.0, {})
        body = sizes.most_common(1)[0][0]
        total = sum(sizes.values())

        def is_heading(style: Style) -> bool:
            size, bold = style
            if sizes[size] > _HEADING_MAX_SHARE * total and size != body:
                return False
            clearly_larger = size >= body * _HEADING_RATIO and size - body >= 1.0
            return clearly_larger or (bold and size >= body - _SIZE_TOLERANCE)

        chosen = sorted(filter(is_heading, styles), reverse=True)
        return cls(body, _levels(chosen, styles))

    def level(self, block: TextBlock) -> int | None:
        """The block's heading level, or None if it is not a heading.

        A bold line at body size only counts when it stands alone, since bold
        also marks words inside paragraphs and table headers.
        """
        style = block.style
        level = self.levels.get(style)
        if level is None or not could_be_heading(block):
            return None
        if style.size <= self.body + _SIZE_TOLERANCE and not block.lone:
            return None
        return level


def _levels(styles: list[Style], uses: Counter[Style]) -> dict[Style, int]:
    """Levels for heading styles, largest first, by rank among the recurring ones.

    The styles that several headings share make the hierarchy. One used once
    (a title, a cover page's) sits just below the next larger recurring style,
    or at level 1 above them all, which then starts the hierarchy at 2.
    """
    recurring = [style for style in styles if uses[style] > 1] or styles
    first = 2 if styles and styles[0] not in recurring else 1
    levels: dict[Style, int] = {}
    for style in styles:
        larger = [r for r in recurring if r >= style]
        # The smallest recurring style at least as large; one step below it if not the same.
        level = first + recurring.index(larger[-1]) + (larger[-1] != style) if larger else 1
        levels[style] = min(level, _MAX_LEVEL)
    return levels


def could_be_heading(block: TextBlock) -> bool:
    """Short enough, and wordy enough, to be a heading if its size says so."""
    text = block.text
    return (
        len(block.lines) <= _HEADING_MAX_LINES
        and len(text) <= _HEADING_MAX_CHARS
        and any(c.isalpha() for c in text)
        and not block.bulleted
        and not block.vertical
    )


def size_key(size: float) -> float:
    """Font sizes rounded to half points, so 11.96 and 12.0 count as one size."""
    return round(size * 2) / 2


def running_key(block: TextBlock, page_height: float) -> tuple[str, str] | None:
    """``("header" | "footer", text with page numbers masked)`` for a block that may be one.

    Running headers and footers are short blocks in the top or bottom margin
    that come back page after page with only the page number changed, so the
    blocks sharing a key on several pages are headers or footers.
    """
    if len(block.lines) > 2 or block.chars > _MAX_RUNNING_CHARS:
        return None
    if block.y1 <= _MARGIN * page_height:
        place = "header"
    elif block.y0 >= (1 - _MARGIN) * page_height:
        place = "footer"
    else:
        return None
    return place, _PAGE_NUMBERS.sub("#", " ".join(block.text.lower().split()))


@dataclass
class RunningEdge:
    """A running header's line set with no gap above the body, and so read as the first
    line of the body's first block (or a running footer's as the last line of a block)."""

    #: What :func:`running_key` gives for the line alone.
    key: tuple[str, str]
    line: TextBlock
    #: The block without the line.
    rest: TextBlock


def running_edge(block: TextBlock, page_height: float) -> RunningEdge | None:
    """The first line of ``block`` when it lies in the top margin, or its last when it lies
    in the bottom margin, as a header or footer of its own, with the rest of the block.

    Whether it is one shows only when it comes back page after page, as for
    :func:`running_key`.
    """
    lines = block.lines
    if len(lines) < 2:
        return None
    if lines[0].y1 <= _MARGIN * page_height:
        edge, rest = lines[:1], lines[1:]
    elif lines[-1].y0 >= (1 - _MARGIN) * page_height:
        edge, rest = lines[-1:], lines[:-1]
    else:
        return None
    line, remainder = TextBlock(), TextBlock()
    line.add(edge[0])
    for each in rest:
        remainder.add(each)
    key = running_key(line, page_height)
    return RunningEdge(key, line, remainder) if key is not None else None


def cut_out(blocks: list[TextBlock], boxes: list[Box]) -> list[TextBlock | int]:
    """The blocks without their lines inside ``boxes`` (tables), each box's index in their place.

    A line is inside a box when its middle is. A block loses those lines and
    keeps the others, split where the box was; a box takes the place of the
    first line it took, or, if it took none, the place before the first block
    below its top.
    """
    items: list[TextBlock | int] = []
    placed: set[int] = set()
    for block in blocks:
        inside = [_box_holding(line, boxes) for line in block.lines]
        if all(index is None for index in inside):
            items.append(block)
            continue
        kept = TextBlock()
        for line, index in zip(block.lines, inside, strict=True):
            if index is None:
                kept.add(line)
                continue
            if kept.lines:
                items.append(kept)
                kept = TextBlock()
            if index not in placed:
                placed.add(index)
                items.append(index)
        if kept.lines:
            items.append(kept)
    for index in sorted(set(range(len(boxes))) - placed, key=lambda i: boxes[i][1]):
        below = (n for n, item in enumerate(items) if _top(item, boxes) > boxes[index][1])
        items.insert(next(below, len(items)), index)
    return items


def interleave(items: Sequence[T], boxes: list[Box], extra: list[tuple[Box, U]]) -> list[T | U]:
    """``items`` in reading order, with each of ``extra`` put in its place by its box.

    ``boxes`` are the items' boxes. An extra box (a picture read apart) goes
    before the first item under its top that shares some of its width: the
    text after it in its column. With none under it, it goes after the last
    item that shares its width; beside everything, before the first item
    below its top. Extras meant for one place keep their order.
    """
    places = [(_place(boxes, box), value) for box, value in extra]
    ordered: list[T | U] = []
    for index in range(len(items) + 1):
        ordered += [value for place, value in places if place == index]
        if index < len(items):
            ordered.append(items[index])
    return ordered


def _place(boxes: list[Box], box: Box) -> int:
    """The index of the item before which a box read apart goes (see :func:`interleave`)."""
    x0, top, x1, _ = box
    beside = [index for index, (a, _, b, _) in enumerate(boxes) if a < x1 and b > x0]
    under = next((index for index in beside if boxes[index][1] >= top), None)
    if under is not None:
        return under
    if beside:
        return beside[-1] + 1
    return next((index for index, item in enumerate(boxes) if item[1] > top), len(boxes))


def _box_holding(line: Line, boxes: list[Box]) -> int | None:
    x, y = (line.x0 + line.x1) / 2, (line.y0 + line.y1) / 2
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        if x0 <= x <= x1 and y0 <= y <= y1:
            return index
    return None


def _top(item: TextBlock | int, boxes: list[Box]) -> float:
    return boxes[item][1] if isinstance(item, int) else item.y0


def is_caption(block: TextBlock, figures: list[Box]) -> bool:
    """A short block naming a figure or table ("Figure 3", "Table 2-1:") right above or below one.

    A sentence that only refers to one ("Table 2 shows ...") is not a caption.
    """
    if len(block.lines) > _CAPTION_MAX_LINES or block.chars > _CAPTION_MAX_CHARS:
        return False
    match = _CAPTION.match(block.text)
    if match is None or _REFERENCE.match(block.text, match.end()):
        return False
    reach = _CAPTION_GAP * block.lines[0].height
    for x0, y0, x1, y1 in figures:
        if block.x1 <= x0 or block.x0 >= x1:
            continue  # not over or under it
        if (
            -_CAPTION_OVERLAP <= y0 - block.y1 <= reach
            or -_CAPTION_OVERLAP <= block.y0 - y1 <= reach
        ):
            return True
    return False
