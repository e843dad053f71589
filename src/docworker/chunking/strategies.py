"""The chunking strategies that need no model: fixed, recursive, structure and page.

Each turns the document's :class:`~docworker.chunking.stream.Stream` into spans no
larger than the bound; the assembly turns spans into chunks.

- ``fixed`` cuts the whole text into windows of ``max_tokens``, the next window
  starting ``overlap`` tokens before the end of the last. Token windows end where
  the encoding never merges (before a word, usually); character windows are exact.
- ``recursive`` splits the text at the first separator of the list found in it,
  splits again with the next separators any part still too large, then joins
  neighbouring parts up to the bound, repeating at most ``overlap`` tokens.
- ``structure`` starts a chunk at every heading (a run of headings stays with what
  follows) and never lets a chunk run into another top-level section; tables and
  lists stay whole when they fit; chunks under ``min_tokens`` join a neighbour of
  the same top-level section, or any neighbour that is small too.
- ``page`` makes one chunk a page, more when a page is over the bound.
"""

from __future__ import annotations

from collections import deque

from docworker.chunking.pieces import (
    Bound,
    Piece,
    Span,
    block_pieces,
    cut_anywhere,
    merge_small,
    pack,
    trimmed,
)
from docworker.chunking.stream import Stream
from docworker.chunking.tokens import TokenizerName

# -- fixed ---------------------------------------------------------------------------------


def fixed_spans(stream: Stream, bound: Bound, overlap: int) -> list[Span]:
    """Windows of ``bound.limit`` tokens over the stream, ``overlap`` tokens shared."""
    if bound.counter.name is TokenizerName.CHARS:
        return _trimmed_spans(stream, _char_windows(len(stream.text), bound.limit, overlap))
    atoms = _atoms(stream, bound)
    windows: list[tuple[int, int]] = []
    first = 0
    while first < len(atoms):
        last, used = first, 0
        while last < len(atoms) and used + atoms[last][2] <= bound.limit:
            used += atoms[last][2]
            last += 1
        # Counts add up over atoms, but not over the window's text once trimmed (a
        # word counts differently with and without the space before it): that decides.
        while last > first + 1 and not bound.fits(
            stream.text[slice(*trimmed(stream.text, atoms[first][0], atoms[last - 1][1]))]
        ):
            last -= 1
        windows.append((atoms[first][0], atoms[last - 1][1]))
        if last == len(atoms):
            break
        following, shared = last, 0
        while following - 1 > first and shared + atoms[following - 1][2] <= overlap:
            following -= 1
            shared += atoms[following][2]
        first = following
    return _trimmed_spans(stream, windows)


def _char_windows(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    windows = []
    start = 0
    while True:
        windows.append((start, start + size))
        if start + size >= length:
            return windows
        start += size - overlap


def _atoms(stream: Stream, bound: Bound) -> list[tuple[int, int, int]]:
    """The stream as (start, end, tokens) pieces the encoding never merges across,
    a piece over the bound (a very long word) cut into pieces under it."""
    counter = bound.counter
    atoms = []
    offset = 0
    sizes: dict[str, int] = {}  # words repeat: counting each once halves the time
    for piece in counter.pieces(stream.text):
        size = sizes.get(piece)
        if size is None:
            size = sizes[piece] = counter.count(piece)
        start, end = offset, offset + len(piece)
        offset = end
        while size > bound.limit:
            cut = start + counter.longest_prefix(stream.text[start:end], bound.limit)
            atoms.append((start, cut, counter.count(stream.text[start:cut])))
            start = cut
            size = counter.count(stream.text[start:end])
        atoms.append((start, end, size))
    return atoms


def _trimmed_spans(stream: Stream, windows: list[tuple[int, int]]) -> list[Span]:
    spans = []
    for window_start, window_end in windows:
        start, end = trimmed(stream.text, window_start, min(window_end, len(stream.text)))
        if start < end:
            spans.append(Span(start, end))
    return spans


# -- recursive -----------------------------------------------------------------------------


def recursive_spans(
    stream: Stream, bound: Bound, separators: list[str], overlap: int
) -> list[Span]:
    """The stream split at the separators, in order, and joined up to the bound."""
    parts = _split(stream, 0, len(stream.text), separators, bound)
    return _join(stream, parts, bound, overlap)


def _split(
    stream: Stream, start: int, end: int, separators: list[str], bound: Bound
) -> list[tuple[int, int]]:
    """``text[start:end]`` as trimmed parts under the bound, cut after the first
    separator found in it and, for a part still too large, after the next ones; ""
    cuts anywhere."""
    text = stream.text
    index = next(
        i for i, sep in enumerate(separators) if sep == "" or text.find(sep, start, end) >= 0
    )
    separator, rest = separators[index], separators[index + 1 :]
    if separator == "":
        return _cut_anywhere(stream, start, end, bound)
    parts: list[tuple[int, int]] = []
    position = start
    while position <= end:
        found = text.find(separator, position, end)
        stop = end if found < 0 else found
        # A separator stays with the part before it: one such as ". " holds text.
        part_start, part_end = trimmed(text, position, min(stop + len(separator), end))
        if part_start < part_end:
            if bound.fits(text[part_start:part_end]):
                parts.append((part_start, part_end))
            elif rest:
                parts.extend(_split(stream, part_start, part_end, rest, bound))
            else:
                parts.extend(_cut_anywhere(stream, part_start, part_end, bound))
        position = stop + len(separator)
    return parts


def _cut_anywhere(stream: Stream, start: int, end: int, bound: Bound) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in cut_anywhere(stream, start, end, bound, bound.limit)]


def _join(stream: Stream, parts: list[tuple[int, int]], bound: Bound, overlap: int) -> list[Span]:
    """Neighbouring parts joined (with what lies between them) while the bound holds;
    a new chunk starts with the last parts of the one before, at most ``overlap`` tokens."""
    text = stream.text
    windows: list[tuple[int, int]] = []
    window: deque[tuple[int, int]] = deque()
    for start, end in parts:
        if window and not bound.fits(text[window[0][0] : end]):
            windows.append((window[0][0], window[-1][1]))
            while window and (
                not bound.fits(text[window[0][0] : window[-1][1]], overlap)
                or not bound.fits(text[window[0][0] : end])
            ):
                window.popleft()
        window.append((start, end))
    if window:
        windows.append((window[0][0], window[-1][1]))
    return _trimmed_spans(stream, windows)


# -- structure and page --------------------------------------------------------------------


def structure_spans(stream: Stream, bound: Bound, min_tokens: int) -> list[Span]:
    """Chunks by section; see the module docstring."""
    pieces = _whole_lists(stream, _pieces(stream, bound), bound)

    def breaks(index: int, has_content: bool) -> bool:
        before, piece = pieces[index - 1].segment, pieces[index].segment
        return piece.top != before.top or (piece.is_heading and has_content)

    def allowed(before: Span, after: Span, both_small: bool) -> bool:
        same_top = stream.segment_at(before.end - 1).top == stream.segment_at(after.start).top
        return same_top or both_small

    spans = pack(stream, pieces, bound, breaks)
    return merge_small(stream, spans, bound, min_tokens, allowed)


def page_spans(stream: Stream, bound: Bound) -> list[Span]:
    """One chunk a page (blocks without a page go with the page before them)."""
    pieces = _pieces(stream, bound)

    def breaks(index: int, _has_content: bool) -> bool:
        return pieces[index].segment.page != pieces[index - 1].segment.page

    return pack(stream, pieces, bound, breaks)


def _pieces(stream: Stream, bound: Bound) -> list[Piece]:
    return [piece for segment in stream.segments for piece in block_pieces(stream, segment, bound)]


def _whole_lists(stream: Stream, pieces: list[Piece], bound: Bound) -> list[Piece]:
    """Each list that fits under the bound as one piece, so that it is never cut."""
    grouped: list[Piece] = []
    index = 0
    while index < len(pieces):
        run = pieces[index].segment.list_run
        last = index
        if run is not None:
            while last + 1 < len(pieces) and pieces[last + 1].segment.list_run == run:
                last += 1
        first_piece, last_piece = pieces[index], pieces[last]
        if last > index and bound.fits(stream.text[first_piece.start : last_piece.end]):
            grouped.append(Piece(first_piece.start, last_piece.end, segment=first_piece.segment))
        else:
            grouped.extend(pieces[index : last + 1])
        index = last + 1
    return grouped
