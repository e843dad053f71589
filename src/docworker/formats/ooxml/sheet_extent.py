"""How many cells a worksheet's XML spans, read before calamine loads the sheet.

calamine holds a sheet's used range whole, however few of its cells are filled: two
cells at A1 and XFD1048576 make a range of 17 billion, which it allocates (and aborts
on) before the cell limit can be checked. The range is read here from the sheet's XML
in chunks, without parsing it: rows and cells where their ``r`` puts them, and those
without one after the one before, as Excel and calamine read them. A chunk whose every
row and cell has its ``r`` (what Excel writes) is read with a few regular-expression
passes; others tag by tag.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass

import numpy

#: A cell's or a row's start tag (any prefix), and the position it gives, if any.
_TAG = re.compile(rb"<(?:[\w.-]+:)?(c|row)(?=[\s/>])([^>]*)")
_REF = re.compile(rb'\br="([A-Za-z]{0,16})([0-9]{0,20})"')
#: The same, for the passes over a whole chunk: every cell tag, every row tag, and the
#: cells with a position.
_CELL = re.compile(rb"<(?:[\w.-]+:)?c(?=[\s/>])")
_ROW = re.compile(rb"<(?:[\w.-]+:)?row(?=[\s/>])")
_CELL_REF = re.compile(rb'<(?:[\w.-]+:)?c\s[^>]*?\br="([A-Za-z]{1,16})([0-9]{1,20})"')
#: The columns and the rows of cells written ``<c r="B12"``, each on its own.
_LETTERS = re.compile(rb'<c r="([A-Za-z]{1,16})[0-9]{1,20}"')
_DIGITS = re.compile(rb'<c r="[A-Za-z]{1,16}([0-9]{1,20})"')
#: A cell tag not followed by a space.
_ODD_CELL = re.compile(rb"<c[>/\t\r\n]")
#: A tag with a namespace prefix (``<x:c``), which the plain counts below do not see.
_PREFIXED = re.compile(rb"<[\w.-]+:(?:c|row)(?=[\s/>])")
#: Bytes read at a time; a tag cut by the end of a read is scanned again with the next
#: (up to this long).
CHUNK = 1 << 20


def declared_cells(zf: zipfile.ZipFile, part: str) -> int:
    """The cells of the range the rows and cells of the sheet ``part`` reach."""
    bounds = _Bounds()
    tail = b""
    with zf.open(part) as stream:
        while chunk := stream.read(CHUNK):
            data = tail + chunk
            cut = data.rfind(b"<")
            keep = cut if cut >= 0 and b">" not in data[cut:] else len(data)
            keep = max(keep, len(data) - CHUNK)
            bounds.scan(data, keep)
            tail = data[keep:]
    return bounds.cells()


def _cells(data: bytes, end: int, prefixed: bool) -> int:
    """The cell tags in ``data[:end]``: ``<c `` counted as bytes (tens of times faster
    than a regular expression) where no tag has a prefix and none is written otherwise
    (``<c>``, ``<c/>``, a line break after the name), by the expression if not."""
    if prefixed or _ODD_CELL.search(data, 0, end) is not None:
        return len(_CELL.findall(data, 0, end))
    return data.count(b"<c ", 0, end)


def _last_row(data: bytes, end: int) -> int:
    """Where the last ``<row`` tag (not ``<rowBreaks``) of ``data[:end]`` starts; -1: none."""
    at = data.rfind(b"<row", 0, end)
    while at >= 0 and data[at + 4 : at + 5] not in (b" ", b">", b"/", b"\t", b"\r", b"\n"):
        at = data.rfind(b"<row", 0, at)
    return at


def _column(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


def _number(digits: bytes) -> tuple[int, bytes]:
    """A sort key of a decimal number's digits (no leading zeros assumed away)."""
    stripped = digits.lstrip(b"0") or b"0"
    return len(stripped), stripped


def _letters(letters: bytes) -> tuple[int, bytes]:
    return len(letters), letters.upper()


@dataclass
class _Bounds:
    """The rows and columns (1-based) the cells reach, and where the last one was."""

    row: int = 0
    col: int = 0
    top: int | None = None
    bottom: int = 0
    left: int | None = None
    right: int = 0

    def scan(self, data: bytes, end: int) -> None:
        prefixed = _PREFIXED.search(data, 0, end) is not None
        cells = _cells(data, end, prefixed)
        if prefixed or not self._scan_plain(data, end, cells):
            refs = _CELL_REF.findall(data, 0, end)
            if len(refs) != cells:
                self._walk(data, 0, end)
                return
            # Every cell gives its position: rows only place cells that do not.
            if refs:
                letters, numbers = zip(*refs, strict=True)
                distinct = set(numbers)
                self._widen(
                    int(min(distinct, key=_number)),
                    int(max(distinct, key=_number)),
                    _column(min(set(letters), key=_letters)),
                    _column(max(set(letters), key=_letters)),
                )
        # Where the chunk leaves off, for a next chunk read tag by tag.
        last_row = -1 if prefixed else _last_row(data, end)
        if last_row < 0:
            match = None
            for match in _ROW.finditer(data, 0, end):  # noqa: B007 - the last one is wanted
                pass
            last_row = match.start() if match else 0
        self._walk(data, last_row, end)

    def _scan_plain(self, data: bytes, end: int, cells: int) -> bool:
        """The chunk's extent when every cell tag is ``<c r="..."`` (what Excel and most
        writers write), read with two passes that keep only the columns' letters and the
        rows' numbers; False (nothing read) when not every cell is so written."""
        letters = _LETTERS.findall(data, 0, end)
        if len(letters) != cells:
            return False
        if not letters:
            return True
        try:
            rows = numpy.array(_DIGITS.findall(data, 0, end), dtype="S20").astype(numpy.int64)
        except (ValueError, OverflowError):  # a row past what 64 bits hold: read otherwise
            return False
        columns = set(letters)
        self._widen(
            int(rows.min()),
            int(rows.max()),
            _column(min(columns, key=_letters)),
            _column(max(columns, key=_letters)),
        )
        return True

    def _walk(self, data: bytes, start: int, end: int) -> None:
        for match in _TAG.finditer(data, start, end):
            ref = _REF.search(match.group(2))
            letters, digits = (ref.group(1), ref.group(2)) if ref else (b"", b"")
            if match.group(1) == b"row":
                self.row = int(digits) if digits else self.row + 1
                self.col = 0
                continue
            self.col = _column(letters) if letters else self.col + 1
            if digits:
                self.row = int(digits)
            self._widen(self.row, self.row, self.col, self.col)

    def _widen(self, top: int, bottom: int, left: int, right: int) -> None:
        self.top = top if self.top is None else min(self.top, top)
        self.bottom = max(self.bottom, bottom)
        self.left = left if self.left is None else min(self.left, left)
        self.right = max(self.right, right)

    def cells(self) -> int:
        if self.top is None or self.left is None:
            return 0
        return (self.bottom - self.top + 1) * (self.right - self.left + 1)
