"""What every chunking must hold, checked from the outside (the public chunks only).

- **bound**: no chunk is over ``max_tokens``, counted on exactly its text, and its
  ``tokens``/``chars`` say the truth;
- **cover**: the document's text is in the chunks once. Precisely: take the kept
  blocks (all but page headers, page footers and page breaks), each as its text,
  a table as its Markdown pipe table; drop all whitespace; that equals the
  concatenation, whitespace dropped, of every chunk's ``text[overlap_chars:]``.
  And what a chunk declares as repeated (``text[:overlap_chars]``: the overlap,
  or a continued table's header rows) is indeed in the chunk before it;
- **relations**: ids ``c1..cn`` in order, ``prev``/``next`` symmetric, source
  blocks in document order, pages and boxes those of the source blocks;
- **heading paths**: a chunk's path is that of its first non-heading block (of its
  last block when it holds only headings), computed here independently.
"""

from __future__ import annotations

import itertools

from docworker.chunking import Chunk, ChunkOptions, token_counter
from docworker.document import Block, BlockKind, Document
from docworker.render.document import render_markdown

_DROPPED = {BlockKind.HEADER, BlockKind.FOOTER, BlockKind.PAGE_BREAK}


def kept_text(doc: Document, block: Block) -> str:
    if block.kind in _DROPPED:
        return ""
    if block.table is not None:
        return render_markdown(doc, [block])
    return block.text


def _squeezed(text: str) -> str:
    return "".join(text.split())


def check_bound(chunks: list[Chunk], options: ChunkOptions) -> None:
    counter = token_counter(options.tokenizer)
    for chunk in chunks:
        assert chunk.text.strip() == chunk.text and chunk.text
        assert chunk.tokens == counter.count(chunk.text) <= options.max_tokens, chunk.id
        assert chunk.chars == len(chunk.text)


def check_cover(doc: Document, chunks: list[Chunk]) -> None:
    expected = "".join(_squeezed(kept_text(doc, b)) for b in doc.blocks)
    got = "".join(_squeezed(c.text[c.overlap_chars :]) for c in chunks)
    assert got == expected
    for before, chunk in itertools.pairwise(chunks):
        repeated = chunk.text[: chunk.overlap_chars].strip()
        assert repeated in before.text, chunk.id


def check_relations(doc: Document, chunks: list[Chunk]) -> None:
    order = {b.id: i for i, b in enumerate(doc.blocks)}
    by_id = {b.id: b for b in doc.blocks}
    ids = [c.id for c in chunks]
    assert ids == [f"c{i}" for i in range(1, len(chunks) + 1)]
    for i, chunk in enumerate(chunks):
        assert chunk.prev == (ids[i - 1] if i else None)
        assert chunk.next == (ids[i + 1] if i + 1 < len(ids) else None)
        positions = [order[b] for b in chunk.block_ids]
        assert positions == sorted(set(positions)) and positions
        blocks = [by_id[b] for b in chunk.block_ids]
        assert all(b.kind not in _DROPPED for b in blocks)
        assert set(chunk.pages) <= {b.page for b in blocks} | set(_inherited_pages(doc, blocks))
        assert len(chunk.bboxes) == sum(b.bbox is not None and b.page is not None for b in blocks)
    firsts = [order[c.block_ids[0]] for c in chunks]
    assert firsts == sorted(firsts)


def _inherited_pages(doc: Document, blocks: list[Block]) -> list[int]:
    """Pages that blocks without one take from the blocks before them."""
    pages, page = [], None
    wanted = {b.id for b in blocks}
    for block in doc.blocks:
        page = block.page if block.page is not None else page
        if block.id in wanted and page is not None:
            pages.append(page)
    return pages


def heading_paths(doc: Document) -> dict[str, tuple[list[str], Block | None]]:
    """Each block's heading path and the heading that opens its section."""
    paths: dict[str, tuple[list[str], Block | None]] = {}
    stack: list[tuple[int, Block]] = []
    for block in doc.blocks:
        if block.kind in (BlockKind.TITLE, BlockKind.HEADING) and block.text.strip():
            level = 0 if block.kind is BlockKind.TITLE else (block.level or 1)
            stack = [(lv, b) for lv, b in stack if lv < level] + [(level, block)]
        paths[block.id] = (
            [" ".join(b.text.split()) for _, b in stack],
            stack[-1][1] if stack else None,
        )
    return paths


def check_heading_paths(doc: Document, chunks: list[Chunk]) -> None:
    paths = heading_paths(doc)
    by_id = {b.id: b for b in doc.blocks}
    for chunk in chunks:
        content = [
            b for b in chunk.block_ids if by_id[b].kind not in (BlockKind.TITLE, BlockKind.HEADING)
        ]
        first = content[0] if content else chunk.block_ids[-1]
        path, section = paths[first]
        assert chunk.heading_path == path, chunk.id
        assert chunk.parent == (section.id if section else None)
        assert chunk.section == (path[-1] if path else None)


def check_all(doc: Document, chunks: list[Chunk], options: ChunkOptions) -> None:
    check_bound(chunks, options)
    check_cover(doc, chunks)
    check_relations(doc, chunks)
    check_heading_paths(doc, chunks)
