"""Pieces of the stream no larger than the bound, and packing them into chunks.

A :class:`Span` is what a chunk will hold: ``stream.text[start:end]``, after an
optional prefix (the header rows of a table repeated over its continuation).
Blocks become :class:`Piece` s: whole when they fit under the bound; a table too
large is cut between rows, its header rows repeated; any other text too large is
cut by semchunk, which looks for the most meaningful place (paragraph, line,
sentence, clause, word) to cut. Packing then joins neighbouring pieces while the
bound holds and the strategy allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from semchunk.semchunk import chunk as semchunk_chunk

from docworker.chunking.stream import Segment, Stream, table_header_rows
from docworker.chunking.tokens import TokenCounter


@dataclass(frozen=True)
class Span:
    """``prefix + text[start:end]`` of a stream: the text of one chunk."""

    start: int
    end: int
    prefix: str = ""

    def text(self, stream: Stream) -> str:
        return self.prefix + stream.text[self.start : self.end]


@dataclass(frozen=True)
class Piece(Span):
    """A span inside one block (or over the items of one list), with the segment it
    starts in."""

    segment: Segment = field(kw_only=True)


@dataclass(frozen=True)
class Bound:
    """The counter and the limit every chunk is held to."""

    counter: TokenCounter
    limit: int

    def fits(self, text: str, limit: int | None = None) -> bool:
        return self.counter.fits(text, self.limit if limit is None else limit)


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` moved inwards past whitespace (equal when only whitespace)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_text(stream: Stream, start: int, end: int, bound: Bound, limit: int) -> list[Span]:
    """``text[start:end]`` cut into trimmed spans of at most ``limit`` tokens each."""
    start, end = trimmed(stream.text, start, end)
    text = stream.text[start:end]
    if bound.fits(text, limit):
        return [Span(start, end)] if text else []
    result = semchunk_chunk(
        text, chunk_size=limit, token_counter=bound.counter.count, memoize=False, offsets=True
    )
    assert isinstance(result, tuple)
    spans: list[Span] = []
    for part_start, part_end in result[1]:
        spans.extend(cut_anywhere(stream, start + part_start, start + part_end, bound, limit))
    return spans


def cut_anywhere(stream: Stream, start: int, end: int, bound: Bound, limit: int) -> Iterator[Span]:
    """Trimmed spans of ``text[start:end]`` under ``limit``, each as long as it can be,
    cut between any two characters (for text that has no better place to cut)."""
    start, end = trimmed(stream.text, start, end)
    while start < end:
        cut = start + bound.counter.longest_prefix(stream.text[start:end], limit)
        yield Span(*trimmed(stream.text, start, cut))
        start = trimmed(stream.text, cut, end)[0]


def block_pieces(stream: Stream, segment: Segment, bound: Bound) -> list[Piece]:
    """One block as pieces under the bound: whole, by table rows, or cut by semchunk."""
    if bound.fits(stream.text[segment.start : segment.end]):
        return [Piece(segment.start, segment.end, segment=segment)]
    if segment.block.table is not None:
        parts = _table_parts(stream, segment, bound)
        if parts:
            return parts
    spans = split_text(stream, segment.start, segment.end, bound, bound.limit)
    return [Piece(s.start, s.end, segment=segment) for s in spans]


def _table_parts(stream: Stream, segment: Segment, bound: Bound) -> list[Piece]:
    """A Markdown table cut between rows, each part after the first opening with the
    table's header rows (and the ``| --- |`` line); [] when that cannot hold the bound
    (a header of half the bound or more, or a row too large on its own)."""
    lines = _line_spans(stream.text, segment.start, segment.end)
    header = table_header_rows(segment.block) + 1  # the header rows and the | --- | line
    if len(lines) <= header:
        return []
    prefix = stream.text[lines[0][0] : lines[header - 1][1]] + "\n"
    counter = bound.counter
    if counter.count(prefix) * 2 > bound.limit:
        return []
    sizes = [counter.count(stream.text[s:e]) + 1 for s, e in lines]
    parts: list[Piece] = []
    first, index = 0, header  # the first line of the current part, the next line to place
    while index < len(lines):
        part_prefix = prefix if parts else ""
        used = sum(sizes[first:header]) if not parts else counter.count(prefix)
        last = index
        while last < len(lines) and used + sizes[last] <= bound.limit:
            used += sizes[last]
            last += 1
        # The sizes add up to an estimate: the exact count of the text decides.
        while last > index and not bound.fits(
            part_prefix + stream.text[lines[first][0] : lines[last - 1][1]]
        ):
            last -= 1
        if last == index:
            return []
        parts.append(Piece(lines[first][0], lines[last - 1][1], part_prefix, segment=segment))
        first = index = last
    return parts


def _line_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    while start <= end:
        newline = text.find("\n", start, end)
        stop = end if newline < 0 else newline
        spans.append((start, stop))
        start = stop + 1
    return spans


def pack(
    stream: Stream,
    pieces: list[Piece],
    bound: Bound,
    breaks: Callable[[int, bool], bool],
) -> list[Span]:
    """Join neighbouring pieces into spans while the bound holds.

    ``breaks(i, has_content)`` tells whether piece ``i`` must open a new chunk; it is
    asked with whether the chunk so far holds anything besides headings. A piece
    with a prefix (a continued table) always opens one.
    """
    spans: list[Span] = []
    current: Span | None = None
    has_content = False
    for index, piece in enumerate(pieces):
        if (
            current is not None
            and not piece.prefix
            and not breaks(index, has_content)
            and bound.fits(current.prefix + stream.text[current.start : piece.end])
        ):
            current = Span(current.start, piece.end, current.prefix)
        else:
            if current is not None:
                spans.append(current)
            current = Span(piece.start, piece.end, piece.prefix)
            has_content = False
        has_content = has_content or not piece.segment.is_heading
    if current is not None:
        spans.append(current)
    return spans


def merge_small(
    stream: Stream,
    spans: list[Span],
    bound: Bound,
    min_tokens: int,
    allowed: Callable[[Span, Span, bool], bool],
) -> list[Span]:
    """Merge each span under ``min_tokens`` with its neighbour when the two fit.

    ``allowed(a, b, both_small)`` tells whether ``a`` and the span ``b`` after it may
    become one. A span with a prefix (a continued table) is never merged into the one
    before it, so that its prefix stays at the chunk's start.
    """
    if min_tokens <= 0:
        return spans
    merged: list[Span] = []
    sizes: list[int] = []
    for span in spans:
        size = bound.counter.count(span.text(stream))
        if merged and not span.prefix:
            before = merged[-1]
            small_before, small = sizes[-1] < min_tokens, size < min_tokens
            joined = Span(before.start, span.end, before.prefix)
            text = joined.text(stream)
            if (
                (small_before or small)
                and allowed(before, span, small_before and small)
                and bound.fits(text)
            ):
                merged[-1] = joined
                sizes[-1] = bound.counter.count(text)
                continue
        merged.append(span)
        sizes.append(size)
    return merged
