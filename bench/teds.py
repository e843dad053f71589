"""Tree-edit-distance similarity (TEDS) of tables, the metric of PubTabNet.

A table is read as the tree its HTML would make: ``table`` → one ``tr`` per row
→ one ``td`` per cell anchored in that row, each ``td`` carrying its
``colspan``, its ``rowspan`` and its normalised text. As in PubTabNet's own
implementation (Zhong et al., "Image-based table recognition", ECCV 2020),
inserting or deleting a node costs 1; renaming one costs 1 when the tags or the
spans differ, otherwise, for two cells, the normalised Levenshtein distance of
their texts (nothing for structure-only TEDS-S), and nothing for two rows or two
tables. The similarity is ``1 - distance / max(nodes of either tree)``.

Two departures, both because the truths here are Markdown documents: there is no
``thead``/``tbody`` level (a Markdown table always makes its first row a header,
so that level would score the notation, not the reading), and every table of a
document is scored at once, as the children of one ``document`` root, in reading
order: a table that was missed costs all its nodes, one that was invented too.

The distance is Zhang and Shasha's algorithm (SIAM J. Comput. 18(6), 1989),
written out below. It costs ``O(n₁·n₂·d₁·d₂)`` for trees of ``n`` nodes and
depth ``d``; table trees are four deep, so a document of a few hundred cells is
scored in a second or two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.ocr import edit_distance
from bench.table_cells import TableGrid


@dataclass
class Node:
    """A node of a table's tree; ``content`` is a cell's normalised text."""

    tag: str
    colspan: int = 1
    rowspan: int = 1
    content: str = ""
    children: list[Node] = field(default_factory=list)

    def size(self) -> int:
        return 1 + sum(child.size() for child in self.children)


def table_tree(table: TableGrid) -> Node:
    """The ``table`` → ``tr`` → ``td`` tree of ``table``, cells in column order."""
    rows = [Node("tr") for _ in range(table.n_rows)]
    for cell in sorted(table.cells, key=lambda c: (c.row, c.col)):
        rows[cell.row].children.append(
            Node("td", colspan=cell.col_span, rowspan=cell.row_span, content=cell.text)
        )
    return Node("table", children=rows)


def document_tree(tables: Sequence[TableGrid]) -> Node:
    """One tree holding every table of a document, in order, under a ``document`` root."""
    return Node("document", children=[table_tree(table) for table in tables])


def teds(
    predicted: Sequence[TableGrid], truth: Sequence[TableGrid], *, structure_only: bool = False
) -> float:
    """TEDS (or, with ``structure_only``, TEDS-S) of a document's tables against the truth's.

    Two documents without tables agree perfectly; a truth without tables is
    better judged by counting the tables found (the caller's business). The
    document root is not counted among the nodes: a document whose tables were
    all missed scores 0.
    """
    one, two = document_tree(predicted), document_tree(truth)
    if structure_only:
        one, two = _without_content(one), _without_content(two)
    if one == two:
        return 1.0
    # The root is always there and always matched: it is not counted, so that a
    # document whose tables were all missed scores 0.
    nodes = max(one.size(), two.size()) - 1
    distance = tree_edit_distance(one, two, _rename_cost(structure_only))
    return max(0.0, 1.0 - distance / nodes)


def _without_content(node: Node) -> Node:
    children = [_without_content(child) for child in node.children]
    return Node(node.tag, node.colspan, node.rowspan, "", children)


def _rename_cost(structure_only: bool) -> Callable[[Node, Node], float]:
    def cost(a: Node, b: Node) -> float:
        if a.tag != b.tag or a.colspan != b.colspan or a.rowspan != b.rowspan:
            return 1.0
        if structure_only or a.tag != "td" or a.content == b.content:
            return 0.0
        return edit_distance(a.content, b.content) / max(len(a.content), len(b.content))

    return cost


@dataclass
class _Postorder:
    """A tree flattened for Zhang-Shasha: nodes in post-order, the index of each
    node's leftmost leaf, and the key roots (the highest node of each leftmost leaf)."""

    nodes: list[Node]
    leftmost: list[int]
    keyroots: list[int]

    @classmethod
    def of(cls, root: Node) -> _Postorder:
        nodes: list[Node] = []
        leftmost: list[int] = []

        def walk(node: Node) -> int:
            first: int | None = None
            for child in node.children:
                index = walk(child)
                if first is None:
                    first = leftmost[index]
            nodes.append(node)
            leftmost.append(len(nodes) - 1 if first is None else first)
            return len(nodes) - 1

        walk(root)
        # Later (higher) nodes overwrite earlier ones with the same leftmost leaf.
        highest = {leaf: index for index, leaf in enumerate(leftmost)}
        return cls(nodes, leftmost, sorted(highest.values()))


def tree_edit_distance(one: Node, two: Node, rename: Callable[[Node, Node], float]) -> float:
    """Zhang-Shasha edit distance of two ordered trees: insertions and deletions cost 1,
    a rename costs ``rename(a, b)``."""
    a, b = _Postorder.of(one), _Postorder.of(two)
    trees = [[0.0] * len(b.nodes) for _ in a.nodes]
    for i in a.keyroots:
        for j in b.keyroots:
            _forest_distance(a, b, i, j, trees, rename)
    return trees[-1][-1]


def _forest_distance(
    a: _Postorder,
    b: _Postorder,
    i: int,
    j: int,
    trees: list[list[float]],
    rename: Callable[[Node, Node], float],
) -> None:
    """Fill ``trees`` for the subtrees rooted at key roots ``i`` and ``j`` (and every
    pair of their nodes on the leftmost paths), by the forest distance table.

    Row ``x`` and column ``y`` of the table stand for the forests of the first ``x``
    nodes under ``i`` and the first ``y`` under ``j``, in post-order; the loop is
    written out (no index arithmetic in the inner loop) because it is all the time
    a document's TEDS takes.
    """
    left_a, left_b = a.leftmost[i], b.leftmost[j]
    nodes_b = range(left_b, j + 1)
    # Where each node's own leftmost leaf falls in the table: 0 for a whole tree.
    starts_b = [b.leftmost[node] - left_b for node in nodes_b]
    columns = list(zip(range(1, len(starts_b) + 1), nodes_b, starts_b, strict=True))
    forest = [[float(y) for y in range(len(starts_b) + 1)]]
    for x, node_a in enumerate(range(left_a, i + 1), start=1):
        start_a = a.leftmost[node_a] - left_a
        above, before = forest[x - 1], forest[start_a]
        trees_a = trees[node_a]
        here = [float(x)]
        value = float(x)
        for y, node_b, start_b in columns:
            insert_or_delete = above[y] if above[y] < value else value
            if start_a == 0 and start_b == 0:
                # Both forests are whole trees: a rename of their roots is possible.
                other = above[y - 1] + rename(a.nodes[node_a], b.nodes[node_b])
                value = insert_or_delete + 1.0 if insert_or_delete + 1.0 < other else other
                trees_a[node_b] = value
            else:
                other = before[start_b] + trees_a[node_b]
                value = insert_or_delete + 1.0 if insert_or_delete + 1.0 < other else other
            here.append(value)
        forest.append(here)
