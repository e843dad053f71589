"""Chunking a document: the chosen strategy's spans made into linked chunks.

Whatever the strategy, the last word on size is here: every chunk's text is
counted once more, exactly as returned, and one over the bound (which the
strategies do not make, but counting is not additive at every boundary) is cut
again before it leaves.
"""

from __future__ import annotations

from docworker.chunking.model import Chunk, ChunkBox
from docworker.chunking.options import ChunkOptions, Strategy
from docworker.chunking.pieces import Bound, Span, split_text, trimmed
from docworker.chunking.semantic import Embed, semantic_spans
from docworker.chunking.strategies import (
    fixed_spans,
    page_spans,
    recursive_spans,
    structure_spans,
)
from docworker.chunking.stream import Segment, Stream, build_stream
from docworker.chunking.tokens import token_counter
from docworker.document import Document
from docworker.errors import InvalidParameter

SEMANTIC_UNAVAILABLE = "semantic chunking needs an embedding model; none is installed"


def chunk_document(doc: Document, options: ChunkOptions, embed: Embed | None = None) -> list[Chunk]:
    """``doc`` cut into chunks as ``options`` ask; ``embed`` is needed by ``semantic``
    only (without it that strategy is refused with :class:`InvalidParameter`)."""
    if options.strategy is Strategy.SEMANTIC and embed is None:
        raise InvalidParameter("strategy", SEMANTIC_UNAVAILABLE)
    stream = build_stream(doc)
    if not stream.segments:
        return []
    bound = Bound(token_counter(options.tokenizer), options.max_tokens)
    spans = _strategy_spans(stream, bound, options, embed)
    return _chunks(stream, _within_bound(stream, spans, bound), bound)


def _strategy_spans(
    stream: Stream, bound: Bound, options: ChunkOptions, embed: Embed | None
) -> list[Span]:
    match options.strategy:
        case Strategy.FIXED:
            return fixed_spans(stream, bound, options.overlap)
        case Strategy.RECURSIVE:
            return recursive_spans(stream, bound, options.separator_list(), options.overlap)
        case Strategy.STRUCTURE:
            return structure_spans(stream, bound, options.smallest())
        case Strategy.PAGE:
            return page_spans(stream, bound)
        case Strategy.SEMANTIC:
            assert embed is not None
            return semantic_spans(
                stream, bound, options.threshold_percentile, options.smallest(), embed
            )


def _within_bound(stream: Stream, spans: list[Span], bound: Bound) -> list[Span]:
    """The spans trimmed of edge whitespace, any one still over the bound cut again."""
    checked: list[Span] = []
    for given in spans:
        start, end = trimmed(stream.text, given.start, given.end)
        if start == end:
            continue
        span = Span(start, end, given.prefix)
        if bound.fits(span.text(stream)):
            checked.append(span)
            continue
        limit = bound.limit - bound.counter.count(span.prefix)
        while True:
            limit -= 2  # the prefix and the part may share a token where they meet
            parts = split_text(stream, start, end, bound, limit)
            parts[0] = Span(parts[0].start, parts[0].end, span.prefix)
            if all(bound.fits(part.text(stream)) for part in parts):
                break
        checked.extend(parts)
    return checked


def _chunks(stream: Stream, spans: list[Span], bound: Bound) -> list[Chunk]:
    chunks: list[Chunk] = []
    for number, span in enumerate(spans, start=1):
        text = span.text(stream)
        segments = stream.covering(span.start, span.end)
        content = next((s for s in segments if not s.is_heading), segments[-1])
        before = spans[number - 2] if number > 1 else None
        repeated = 0 if before is None else max(0, min(before.end, span.end) - span.start)
        chunks.append(
            Chunk(
                id=f"c{number}",
                text=text,
                tokens=bound.counter.count(text),
                chars=len(text),
                heading_path=list(content.path),
                pages=sorted({s.page for s in segments if s.page is not None}),
                bboxes=_boxes(segments),
                block_ids=[s.block.id for s in segments],
                prev=f"c{number - 1}" if number > 1 else None,
                next=f"c{number + 1}" if number < len(spans) else None,
                parent=content.section.id if content.section else None,
                section=content.path[-1] if content.path else None,
                overlap_chars=len(span.prefix) + repeated,
            )
        )
    return chunks


def _boxes(segments: list[Segment]) -> list[ChunkBox]:
    boxes = []
    for segment in segments:
        box, page = segment.block.bbox, segment.block.page or segment.page
        if box is not None and page is not None:
            boxes.append(ChunkBox(page=page, x0=box.x0, y0=box.y0, x1=box.x1, y1=box.y1))
    return boxes
