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

#: A cell's or a row's start tag (any prefix), and the position it gives, if any.
_TAG = re.compile(rb"<(?:[\w.-]+:)?(c|row)(?=[\s/>])([^>]*)")
_REF = re.compile(rb'\br="([A-Za-z]{0,16})([0-9]{0,20})"')
#: The same, for the fast pass: every cell tag, every row tag, and those with a position.
_CELL = re.compile(rb"<(?:[\w.-]+:)?c(?=[\s/>])")
_ROW = re.compile(rb"<(?:[\w.-]+:)?row(?=[\s/>])")
_CELL_REF = re.compile(rb'<(?:[\w.-]+:)?c\s[^>]*?\br="([A-Za-z]{1,16})([0-9]{1,20})"')
_ROW_REF = re.compile(rb'<(?:[\w.-]+:)?row\s[^>]*?\br="([0-9]{1,20})"')
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
        refs = _CELL_REF.findall(data, 0, end)
        rows = _ROW_REF.findall(data, 0, end)
        if len(refs) != len(_CELL.findall(data, 0, end)) or len(rows) != len(
            _ROW.findall(data, 0, end)
        ):
            self._walk(data, 0, end)
            return
        if refs:
            numbers = {digits for _, digits in refs}
            letters = {letters for letters, _ in refs}
            self._widen(
                int(min(numbers, key=_number)),
                int(max(numbers, key=_number)),
                _column(min(letters, key=_letters)),
                _column(max(letters, key=_letters)),
            )
        # Where the chunk leaves off, for a next chunk read tag by tag.
        last_row = None
        for last_row in _ROW.finditer(data, 0, end):  # noqa: B007 - the last one is wanted
            pass
        self._walk(data, last_row.start() if last_row else 0, end)

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
