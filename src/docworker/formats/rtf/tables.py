"""RTF tables: rows of cells placed on one grid by their right edges, merges as spans.

An RTF row is defined by ``\\trowd`` and one ``\\cellxN`` per cell, N being the
cell's right edge in twips; the cells' text follows, each closed by ``\\cell``,
and ``\\row`` closes the row. Rows of one table may cut their cells at different
edges (a cell merged across two columns is often written as one wider cell),
so the grid's columns are all the right edges seen in the table, and a cell
spans the columns between its left and right edge. The older merge flags
(``\\clmgf``/``\\clmrg`` across, ``\\clvmgf``/``\\clvmrg`` down) become spans
too. ``\\trhdr`` marks header rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from docworker.document import Table, TableCell
from docworker.errors import LimitExceeded

#: Cell properties that merge a cell into the one before (across) or above (down).
MERGE_FLAGS = frozenset({"clmgf", "clmrg", "clvmgf", "clvmrg"})


@dataclass
class RowDef:
    """A row's definition: its cells' right edges and merge flags, and whether it heads."""

    rights: list[int] = field(default_factory=list)
    merges: list[frozenset[str]] = field(default_factory=list)
    header: bool = False
    pending: set[str] = field(default_factory=set)

    def flag(self, word: str) -> None:
        """A merge flag for the next cell defined."""
        self.pending.add(word)

    def cell(self, right: int) -> None:
        self.rights.append(right)
        self.merges.append(frozenset(self.pending))
        self.pending = set()


class TableBuilder:
    """Collects a table's rows and lays them out once the table ends."""

    def __init__(self, max_cells: int) -> None:
        self.max_cells = max_cells
        self.rows: list[tuple[list[str], RowDef]] = []
        self.size = 0

    def add_row(self, texts: list[str], definition: RowDef) -> None:
        self.size += max(len(texts), 1)
        if self.size > self.max_cells:
            raise LimitExceeded("cells", self.size, self.max_cells)
        self.rows.append((texts, definition))

    def build(self) -> Table:
        """The rows as a grid; raises LimitExceeded when the grid passes the cell limit."""
        edges = sorted({x for _, definition in self.rows for x in definition.rights})
        columns = {x: i for i, x in enumerate(edges)}
        cells: list[TableCell] = []
        above: dict[int, TableCell] = {}  # column → the cell a vertical merge extends
        for r, (texts, definition) in enumerate(self.rows):
            aligned = len(definition.rights) == len(texts)
            left = 0
            last: TableCell | None = None
            for i, text in enumerate(texts):
                col, span = i, 1
                if aligned:
                    right = columns[definition.rights[i]]
                    col, span = left, max(right - left + 1, 1)
                    left = max(right, left) + 1
                flags = definition.merges[i] if i < len(definition.merges) else frozenset()
                if "clmrg" in flags and last is not None:
                    last.col_span += span
                    continue
                if "clvmrg" in flags and col in above:
                    above[col].row_span += 1
                    continue
                last = TableCell(row=r, col=col, text=text, col_span=span, header=definition.header)
                cells.append(last)
                if "clvmgf" in flags:
                    above[col] = last
                else:
                    above.pop(col, None)
        n_rows = len(self.rows)
        n_cols = max((c.col + c.col_span for c in cells), default=0)
        if n_rows * n_cols > self.max_cells:
            raise LimitExceeded("cells", n_rows * n_cols, self.max_cells)
        return Table(n_rows=n_rows, n_cols=n_cols, cells=cells)
