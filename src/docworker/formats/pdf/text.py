"""What pdfium says about a page's text: characters, line boxes, fonts and links.

Each call into pdfium costs about a microsecond, so a page is read as one
string and a line is measured from a few of its characters only: its first
and last for the box, three samples for the font size, two for the weight.
Boxes come out in display coordinates (:class:`PageFrame`), the space
:mod:`docworker.formats.pdf.layout` works in.

pdfium's text output is nearly, but not always, one string index per
character: it drops control characters and writes characters beyond the BMP
as two UTF-16 units. :class:`PageText` keeps the string in UTF-16 units and
maps back to character indices only when the two differ.
"""

from __future__ import annotations

import codecs
import ctypes
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from docworker.document import Link
from docworker.formats.pdf.layout import BULLETS, Box, Line, size_key

#: Where pdfium puts a hyphen that ended a line inside a word: it joins the two
#: lines into one, so a line is also cut after it.
_HYPHEN = "\ufffe"
#: pdfium's line-end hyphen and the line break after it, inside a word.
_BROKEN_WORD = re.compile(f"{_HYPHEN}\\s*")
#: Control characters and what is left of broken surrogate pairs, which no output can carry.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\ufeff\ud800-\udfff]")
_RIGHT_TO_LEFT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")
_ARABIC = "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff"
#: A Latin word set in Arabic text loses the space on its far side in pdfium's output.
_SCRIPT_JOIN = re.compile(f"(?<=[A-Za-z0-9])(?=[{_ARABIC}])|(?<=[{_ARABIC}])(?=[A-Za-z0-9])")
#: pdfium splits the lam-alef ligature into its letters in visual order (alef first).
_LAM_ALEF = re.compile("[\u0622\u0623\u0625\u0627]\u0644")
#: A URL (with a scheme, or starting ``www.``) or an e-mail address written in the text.
_WRITTEN_LINK = re.compile(
    r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'\[\]{}]+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    re.IGNORECASE,
)
#: Characters whose angle is read to tell which way the text runs.
_ANGLE_SAMPLES = 3
_BOLD_WEIGHT = 600
#: pdfium's font flag for a font drawn bold whatever its weight says.
_FORCE_BOLD = 1 << 18
_BOLD_NAME = re.compile(rb"bold|black|heavy|demi", re.IGNORECASE)


def bare(function: Any, result: Any = ctypes.c_int) -> Any:
    """``function`` called without ctypes' conversion of each argument, twice as fast.

    Only for calls made per line of text or per object a page draws, and only
    with arguments passed as C takes them: pdfium handles and ``ctypes.byref``
    pointers as they are, and Python ints where the C function takes an ``int``.
    ``result`` is the C type the function returns.
    """
    address = ctypes.cast(function, ctypes.c_void_p).value
    assert address is not None
    return ctypes.CFUNCTYPE(result)(address)


#: ``FPDFText_GetLooseCharBox(textpage, index, byref(rect))``.
_bare_loose_box = bare(pdfium_c.FPDFText_GetLooseCharBox)
#: ``FPDFText_GetCharIndexFromTextIndex(textpage, index)``.
_bare_char_index = bare(pdfium_c.FPDFText_GetCharIndexFromTextIndex)
#: ``FPDFText_GetFontSize(textpage, index)``, a double.
_bare_font_size = bare(pdfium_c.FPDFText_GetFontSize, ctypes.c_double)
#: ``FPDFText_GetMatrix(textpage, index, byref(matrix))``.
_bare_matrix = bare(pdfium_c.FPDFText_GetMatrix)
#: ``FPDFText_GetFontWeight(textpage, index)``.
_bare_font_weight = bare(pdfium_c.FPDFText_GetFontWeight)
_TWO_RECTS = pdfium_c.FS_RECTF * 2
#: A line of single characters between single spaces: letter-spaced words, as
#: pdfium reads them, with a space put between every two letters.
_SPACED_OUT = re.compile(r"\S(?: {1,2}\S){5,}")


@dataclass(frozen=True, slots=True)
class PageFrame:
    """A page's visible box and rotation, to turn PDF user space into display coordinates."""

    left: float
    bottom: float
    right: float
    top: float
    rotation: int

    def box(self, left: float, bottom: float, right: float, top: float) -> Box:
        """``(x0, y0, x1, y1)`` from the top-left of the page as displayed (rotation applied)."""
        if self.rotation == 90:
            return bottom - self.bottom, left - self.left, top - self.bottom, right - self.left
        if self.rotation == 180:
            return self.right - right, bottom - self.bottom, self.right - left, top - self.bottom
        if self.rotation == 270:
            return self.top - top, self.right - right, self.top - bottom, self.right - left
        return left - self.left, self.top - top, right - self.left, self.top - bottom

    def user_box(self, x0: float, y0: float, x1: float, y1: float) -> Box:
        """``(left, bottom, right, top)`` in PDF user space of a display box: :meth:`box` undone."""
        if self.rotation == 90:
            return y0 + self.left, x0 + self.bottom, y1 + self.left, x1 + self.bottom
        if self.rotation == 180:
            return self.right - x1, y0 + self.bottom, self.right - x0, y1 + self.bottom
        if self.rotation == 270:
            return self.right - y1, self.top - x1, self.right - y0, self.top - x0
        return x0 + self.left, self.top - y1, x1 + self.left, self.top - y0

    @property
    def height(self) -> float:
        """The page's height as displayed in this frame."""
        sideways = self.rotation in (90, 270)
        return self.right - self.left if sideways else self.top - self.bottom

    @property
    def width(self) -> float:
        sideways = self.rotation in (90, 270)
        return self.top - self.bottom if sideways else self.right - self.left

    def turned(self, rotation: int) -> PageFrame:
        """The same page seen turned by ``rotation`` degrees clockwise from user space."""
        return PageFrame(self.left, self.bottom, self.right, self.top, rotation)

    def moved_to(self, other: PageFrame, box: Box) -> Box:
        """A box of this frame as seen in ``other``, the same page turned otherwise."""
        if other.rotation == self.rotation:
            return box
        return other.box(*self.user_box(*box))


def load_text(page: Any) -> Any:
    """pdfium's text page of a loaded page, to be closed by :func:`close_text` before it.

    The raw handle, not pypdfium2's object: the bookkeeping that object carries
    (a finalizer, its place among the page's children) costs more per page than
    reading the page's whole text.
    """
    textpage = pdfium_c.FPDFText_LoadPage(page.raw)
    if not textpage:
        raise pdfium.PdfiumError("Failed to load text page.")
    return textpage


def close_text(textpage: Any) -> None:
    """Close a text page :func:`load_text` gave."""
    pdfium_c.FPDFText_ClosePage(textpage)


class PageText:
    """A page's text in pdfium's order, and the way from text to character indices."""

    def __init__(self, textpage: Any) -> None:
        #: pdfium's text page (from :func:`load_text`), which stays open while this is used.
        self.raw = textpage
        self._bounded: tuple[bytearray, Any] | None = None
        count = pdfium_c.FPDFText_CountChars(self.raw)
        #: How many characters pdfium counts on the page.
        self.count = count
        # Plain bytes, not a ctypes array: a ctypes array type of each page's size
        # would be made anew for most pages, at a cost beyond that of the text.
        buffer = bytearray(2 * (max(count, 0) + 1))
        start = ctypes.c_ushort.from_buffer(buffer)
        written = pdfium_c.FPDFText_GetText(self.raw, 0, count, start) if count > 0 else 0
        units = max(written - 1, 0)
        view = memoryview(buffer)
        text = codecs.decode(view[: 2 * units], "utf-16-le", "replace")
        #: Whether the text holds surrogate pairs, kept as two characters so that
        #: string indices stay pdfium's text indices.
        self.surrogates = len(text) != units
        if self.surrogates:
            text = "".join(map(chr, view.cast("H")[:units]))
        self.text = text
        self.exact = len(text) == count
        # isascii() answers at once from the string's header, and rules out most
        # pages before the expression runs (max() would look at every character).
        self.right_to_left = not text.isascii() and _RIGHT_TO_LEFT.search(text) is not None
        if self.right_to_left:
            self.text = self._lam_alef_in_order()

    def bounded_buffer(self) -> tuple[bytearray, Any]:
        """A buffer for the text in a box of this page (:func:`bounded_text`), and its start.

        It holds four UTF-16 units for each of the page's characters: a character
        beyond the BMP takes two, and pdfium may put a line break (two more) before
        it. Made on the first use, kept while the page is read.
        """
        if self._bounded is None:
            buffer = bytearray(2 * (4 * max(self.count, len(self.text)) + 16))
            self._bounded = (buffer, ctypes.c_ushort.from_buffer(buffer))
        return self._bounded

    def upright_turn(self) -> int:
        """The clockwise turn (0, 90, 180, 270) of user space that sets the text upright.

        Most text is upright in user space, and the page's own rotation turns
        it on display; but a landscape table may be drawn turned on a portrait
        page, or a page turned while its text was not. A few characters spread
        over the text vote; pdfium gives their angle clockwise.
        """
        # A plain dict and max(): a Counter costs more than the few votes it would count.
        votes: dict[int, int] = {}
        text = self.text
        for start in range(0, len(text), max(len(text) // _ANGLE_SAMPLES, 1)):
            if text[start].isspace():
                continue
            angle = pdfium_c.FPDFText_GetCharAngle(self.raw, self.char_index(start))
            if angle >= 0:
                turn = (360 - round(math.degrees(angle) / 90) * 90) % 360
                votes[turn] = votes.get(turn, 0) + 1
        # The first of the turns with most votes, as Counter.most_common(1) gives it.
        return max(votes, key=votes.__getitem__) if votes else 0

    def char_index(self, text_index: int) -> int:
        if self.exact:
            return text_index
        index: int = pdfium_c.FPDFText_GetCharIndexFromTextIndex(self.raw, text_index)
        return index

    def clean(self, text: str) -> str:
        """Text of this page fit for output: whole characters, no control codes, spaced scripts."""
        if self.surrogates:
            text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        text = printable(text)
        return _SCRIPT_JOIN.sub(" ", text) if self.right_to_left else text

    def _lam_alef_in_order(self) -> str:
        """The text with each lam-alef ligature's letters in logical order (lam first)."""
        chars = list(self.text)
        first, second = pdfium_c.FS_RECTF(), pdfium_c.FS_RECTF()
        for match in _LAM_ALEF.finditer(self.text):
            index = self.char_index(match.start())
            if not (
                pdfium_c.FPDFText_GetLooseCharBox(self.raw, index, first)
                and pdfium_c.FPDFText_GetLooseCharBox(self.raw, index + 1, second)
            ):
                continue
            # The two letters of one glyph share its box; two glyphs never do.
            if (first.left, first.right) == (second.left, second.right):
                at = match.start()
                chars[at], chars[at + 1] = chars[at + 1], chars[at]
        return "".join(chars)


def printable(text: str) -> str:
    """``text`` without control characters and broken surrogates."""
    # The check is a fast loop in C; most text passes it and skips the expression.
    return text if text.isprintable() else _UNPRINTABLE.sub("", text)


def read_lines(text: PageText, frame: PageFrame, *, measure_fonts: bool) -> list[Line]:
    """pdfium's lines with their boxes, and their fonts' sizes and weights if asked.

    Each line of the text, cut after a line-end hyphen, is taken from its first
    visible character to its last. A line's box joins those two characters'
    boxes (in right-to-left text the first is on the right). This loop runs for
    every line of every page, so it keeps its names local, reads the four floats
    of a box at once, and splits lines with string methods, several times faster
    here than a regular expression.
    """
    raw, exact, to_display = text.raw, text.exact, frame.box
    # Most pages are not turned: their boxes are worked out here, as PageFrame.box would.
    upright, frame_left, frame_top = frame.rotation == 0, frame.left, frame.top
    # The first and the last character's boxes, side by side: one read gives both.
    rects = _TWO_RECTS()
    first_box, last_box = ctypes.byref(rects[0]), ctypes.byref(rects[1])
    corners = memoryview(rects).cast("B").cast("f").tolist
    fonts = _FontReader(text) if measure_fonts else None
    lines: list[Line] = []
    start = 0
    for row in text.text.splitlines(keepends=True):
        for part in _cut_after_hyphens(row) if _HYPHEN in row else (row,):
            piece = part.strip()
            if not piece or piece == _HYPHEN:
                start += len(part)
                continue
            first = start + part.index(piece[0])
            end = first + len(piece) - 1
            start += len(part)
            last = end
            if not exact:
                first, last = _bare_char_index(raw, first), _bare_char_index(raw, end)
            if not _bare_loose_box(raw, first, first_box):
                continue
            if first != last and _bare_loose_box(raw, last, last_box):
                left, top, right, bottom, other_left, other_top, other_right, other_bottom = (
                    corners()
                )
                # Conditional expressions: min() and max() calls would cost more than the rest.
                left = other_left if other_left < left else left
                right = other_right if other_right > right else right
                top = other_top if other_top > top else top
                bottom = other_bottom if other_bottom < bottom else bottom
            else:
                left, top, right, bottom = corners()[:4]
            if upright:
                x0, y0, x1, y1 = (
                    left - frame_left,
                    frame_top - top,
                    right - frame_left,
                    frame_top - bottom,
                )
            else:
                x0, y0, x1, y1 = to_display(left, bottom, right, top)
            begin = end + 1 - len(piece)
            hyphenated = piece[-1] == _HYPHEN
            line = Line(
                piece[:-1] if hyphenated else piece, x0, y0, x1, y1, begin, hyphenated=hyphenated
            )
            if fonts is not None:
                fonts.measure(line, piece, begin, end)
            if piece[1:2] == " " and not hyphenated and _SPACED_OUT.fullmatch(piece):
                _close_up(text, line, piece)
            lines.append(line)
    return lines


def _close_up(text: PageText, line: Line, piece: str) -> None:
    """Give a letter-spaced line its words (``S P A C E D  O U T`` → ``SPACED OUT``)."""
    closed = _closed_up(text, line.start, piece, line.y1 - line.y0)
    if closed is not None:
        # Its characters no longer match the page's text one for one.
        line.text, line.start = closed, -1


def _closed_up(text: PageText, begin: int, piece: str, height: float) -> str | None:
    """A letter-spaced line's words, or None when the gaps do not tell them apart.

    The gaps between the letters of a word are alike and small beside the letters'
    height; the gaps between words are clearly wider. A line of gaps all alike is
    left as it is: single letters (``A B C``) look the same.
    """
    box = pdfium_c.FS_RECTF()
    pointer = ctypes.byref(box)
    edges: list[tuple[float, float]] = []
    offsets = [offset for offset, char in enumerate(piece) if char != " "]
    for offset in offsets:
        if not _bare_loose_box(text.raw, text.char_index(begin + offset), pointer):
            return None
        edges.append((box.left, box.right))
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(edges)]
    tight = sorted(gaps)[len(gaps) // 2]
    # Two spaces in a row: pdfium saw a space character there as well as the gap.
    wide = [
        (gap > tight + 0.25 * height and gap > 1.5 * tight) or piece[offset + 2] == " "
        for gap, offset in zip(gaps, offsets, strict=False)
    ]
    if not any(wide) or tight > 0.5 * height or max(gaps) > 3 * height:
        return None
    words = [piece[0]]
    for offset, breaks in zip(offsets[1:], wide, strict=True):
        words.append(" " + piece[offset] if breaks else piece[offset])
    closed = "".join(words)
    if max(len(word) for word in closed.split()) < 3:
        return None
    return closed


def spans_across(
    text: PageText, frame: PageFrame, ranges: list[tuple[int, int]]
) -> list[tuple[float, float] | None]:
    """How far across ``frame`` each range of the text (first and last text index) reaches,
    from its first and last characters' boxes; None where pdfium gives neither box.

    For the few lines whose words are measured one by one (a table's rows): two
    calls into pdfium a word, made as :func:`read_lines` makes them.
    """
    raw, exact = text.raw, text.exact
    rect = pdfium_c.FS_RECTF()
    box = ctypes.byref(rect)
    found: list[tuple[float, float] | None] = []
    for first, last in ranges:
        edges: list[float] = []
        for at in (first, last) if first != last else (first,):
            index = at if exact else _bare_char_index(raw, at)
            if _bare_loose_box(raw, index, box):
                x0, _, x1, _ = frame.box(rect.left, rect.bottom, rect.right, rect.top)
                edges += (x0, x1)
        found.append((min(edges), max(edges)) if edges else None)
    return found


def _cut_after_hyphens(row: str) -> list[str]:
    *broken, rest = row.split(_HYPHEN)
    return [part + _HYPHEN for part in broken] + [rest]


class _FontReader:
    """Reads a line's font size and weight from a few of its characters."""

    def __init__(self, text: PageText) -> None:
        self.text = text
        self.raw = text.raw
        self.matrix = pdfium_c.FS_MATRIX()
        self.matrix_ref = ctypes.byref(self.matrix)
        self.font_name = ctypes.create_string_buffer(256)
        self.font_flags = ctypes.c_int()

    def measure(self, line: Line, piece: str, first: int, last: int) -> None:
        """Set the line's size (the median of three characters') and boldness.

        A list item is measured after its bullet, which often comes from a symbol font.
        When the first and last characters have one size, that is the median, and
        the middle one is not read (most lines are set in one size).
        """
        if piece[0] in BULLETS and piece[1:].strip():
            first = last + 1 - len(piece[1:].lstrip())
        middle = (first + last) // 2
        char_index = self.text.char_index
        first, last = char_index(first), char_index(last)
        first_size, last_size = self._size(first), self._size(last)
        if first_size == last_size:
            median = first_size
        else:
            sizes = sorted((first_size, self._size(char_index(middle)), last_size))
            median = sizes[1]
        line.size = size_key(median)
        line.starts_bold = self._bold(first)
        line.bold = line.starts_bold and self._bold(last)

    def _size(self, index: int) -> float:
        # pdfium reports the size set in the content, often 1 with the real scale
        # in the text matrix, so the size is multiplied by the vertical scale.
        size: float = _bare_font_size(self.raw, index)
        if _bare_matrix(self.raw, index, self.matrix_ref):
            matrix = self.matrix
            size *= math.hypot(matrix.c, matrix.d)
        return size

    def _bold(self, index: int) -> bool:
        if _bare_font_weight(self.raw, index) >= _BOLD_WEIGHT:
            return True
        self.font_name.value = b""
        pdfium_c.FPDFText_GetFontInfo(
            self.raw, index, self.font_name, len(self.font_name), self.font_flags
        )
        return bool(self.font_flags.value & _FORCE_BOLD) or bool(
            _BOLD_NAME.search(self.font_name.value)
        )


def annotation_links(
    pdf: Any, page: Any, text: PageText, frame: PageFrame
) -> list[tuple[Box, Link]]:
    """The page's URI link annotations, with the text under each as the link's text."""
    found = []
    position = ctypes.c_int(0)
    link = pdfium_c.FPDF_LINK()
    rect = pdfium_c.FS_RECTF()
    while pdfium_c.FPDFLink_Enumerate(page.raw, position, link):
        action = pdfium_c.FPDFLink_GetAction(link)
        if not action or pdfium_c.FPDFAction_GetType(action) != pdfium_c.PDFACTION_URI:
            continue
        if not pdfium_c.FPDFLink_GetAnnotRect(link, rect):
            continue
        size = pdfium_c.FPDFAction_GetURIPath(pdf.raw, action, None, 0)
        buffer = ctypes.create_string_buffer(max(size, 1))
        pdfium_c.FPDFAction_GetURIPath(pdf.raw, action, buffer, size)
        url = buffer.value.decode("latin-1").strip()
        if url:
            # The box often reaches into the lines above and below; its middle does not.
            margin = (rect.top - rect.bottom) / 4
            box = (rect.left, rect.bottom + margin, rect.right, rect.top - margin)
            label = bounded_text(text, box)
            found.append((frame.box(*box), Link(text=label or url, url=url)))
    return found


def bounded_text(text: PageText, box: Box) -> str:
    """The page's text inside ``box`` (``left, bottom, right, top`` in user space), on one
    line: words a line-end hyphen broke are joined, whitespace is single spaces."""
    left, bottom, right, top = box
    args = (text.raw, left, top, right, bottom)
    # pdfium works the text out anew on every call, so it is asked once, into a buffer
    # that holds any text of the page; one it fills up is asked again at the size it says.
    buffer, start = text.bounded_buffer()
    units = pdfium_c.FPDFText_GetBoundedText(*args, start, len(buffer) // 2)
    if 2 * units < len(buffer):
        # What fits comes with its terminating NUL, which the count includes.
        found = codecs.decode(memoryview(buffer)[: 2 * units], "utf-16-le", "replace")
        found = found.removesuffix("\x00")
    else:
        found = _bounded_text_sized(args)
    if not found:
        return ""
    return " ".join(text.clean(_BROKEN_WORD.sub("", found)).split())


def _bounded_text_sized(args: tuple[Any, float, float, float, float]) -> str:
    """The text in a box, read into a buffer of the size pdfium gives first."""
    size = pdfium_c.FPDFText_GetBoundedText(*args, None, 0)
    if size <= 0:
        return ""
    buffer = (ctypes.c_ushort * size)()
    written = pdfium_c.FPDFText_GetBoundedText(*args, buffer, size)
    return codecs.decode(memoryview(buffer)[: 2 * written], "utf-16-le", "replace")


def written_links(text: str) -> list[Link]:
    """The URLs and e-mail addresses written out in ``text``, in order, each once."""
    if "://" not in text and "www." not in text and "@" not in text:
        return []
    links: dict[str, Link] = {}
    for match in _WRITTEN_LINK.finditer(text):
        label = match.group().rstrip(".,;:!?'\"")
        if label.endswith(")") and "(" not in label:
            label = label[:-1]
        if "@" in label and "/" not in label:
            url = f"mailto:{label}"
        elif label.lower().startswith("www."):
            url = f"http://{label}"
        else:
            url = label
        links.setdefault(url, Link(text=label, url=url))
    return list(links.values())
