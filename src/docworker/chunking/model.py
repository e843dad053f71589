"""The shape of a chunk: its text, its size, where it came from and its neighbours."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ChunkBox(BaseModel):
    """The box of a source block on its page, in page points from the top-left corner."""

    model_config = ConfigDict(extra="forbid")

    page: int
    x0: float
    y0: float
    x1: float
    y1: float


class Chunk(BaseModel):
    """One piece of a document for retrieval.

    Chunks are numbered ``c1``, ``c2``, ... in reading order; ``prev``/``next`` link
    each to its neighbours. ``text[overlap_chars:]`` is what the chunk adds to the
    ones before it: over all chunks, these parts hold the document's text once.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    #: Size of ``text`` in the chosen tokenizer (characters for ``chars``).
    tokens: int
    chars: int
    #: The headings the chunk's content sits under, outermost first.
    heading_path: list[str] = Field(default_factory=list)
    #: The pages the chunk's source blocks are on (empty for formats without pages).
    pages: list[int] = Field(default_factory=list)
    #: The boxes of the source blocks that have one (a block's whole box, even when
    #: the chunk holds only part of the block).
    bboxes: list[ChunkBox] = Field(default_factory=list)
    #: The ids of the document blocks the chunk's text comes from, in order.
    block_ids: list[str] = Field(default_factory=list)
    prev: str | None = None
    next: str | None = None
    #: The id of the heading block that opens the chunk's section; None before any heading.
    parent: str | None = None
    #: The text of that heading.
    section: str | None = None
    #: How many leading characters of ``text`` repeat what the previous chunk holds:
    #: the requested overlap, or a table's header rows repeated over its continuation.
    overlap_chars: int = 0
