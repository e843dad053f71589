"""Chunking for retrieval: a Document's blocks cut into linked, size-bounded chunks.

Chunkers work on the document's blocks, never on a flat string, so every chunk
knows its heading path, its pages and boxes, its source blocks and its
neighbours. :func:`chunk_document` is the entry point; :class:`ChunkOptions`
says how (strategy, tokenizer, bounds).
"""

from __future__ import annotations

from docworker.chunking.assembly import SEMANTIC_UNAVAILABLE, chunk_document
from docworker.chunking.model import Chunk, ChunkBox
from docworker.chunking.options import (
    DEFAULT_SEPARATORS,
    V1_METHODS,
    ChunkOptions,
    Strategy,
    V1Method,
)
from docworker.chunking.semantic import Embed
from docworker.chunking.tokens import TokenCounter, TokenizerName, token_counter

__all__ = [
    "DEFAULT_SEPARATORS",
    "SEMANTIC_UNAVAILABLE",
    "V1_METHODS",
    "Chunk",
    "ChunkBox",
    "ChunkOptions",
    "Embed",
    "Strategy",
    "TokenCounter",
    "TokenizerName",
    "V1Method",
    "chunk_document",
    "token_counter",
]
