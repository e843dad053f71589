"""The semantic strategy: chunks end where the topic changes.

The kept blocks are cut into sentences (a table, or a part of one, counts as one
sentence) and every sentence is embedded once. At each place between two
sentences, the mean embedding of the :data:`WINDOW` sentences before it is
compared with that of the ``WINDOW`` sentences after it; the distance is one
minus their cosine similarity. A chunk ends where that distance is above the
``threshold_percentile``-th percentile of all the distances: at 90, the 10% of
places where the neighbouring sentences are least alike. Headings and top-level
sections break chunks as in the structure strategy. The bound is then enforced
(a group too large is packed into several chunks) and groups under ``min_tokens``
join a neighbour of the same top-level section.

The embedding model is given by the caller (an operation, from ``engines``), as a
function from texts to L2-normalised vectors; without one the strategy is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from docworker.chunking.pieces import Bound, Piece, Span, block_pieces, merge_small, pack, trimmed
from docworker.chunking.stream import Stream

#: Texts → one L2-normalised vector a text, as rows of a float32 matrix.
Embed = Callable[[Sequence[str]], NDArray[np.float32]]

#: Sentences on each side of a place that are compared.
WINDOW = 2

_SPACE_RUN = re.compile(r"\s+")
_CJK_STOP = re.compile(r"[\u3002\uff01\uff1f]")
_STOPS = ".!?\u2026"
_CLOSERS = "\"'\u201d\u2019)]"


def semantic_spans(
    stream: Stream, bound: Bound, threshold_percentile: float, min_tokens: int, embed: Embed
) -> list[Span]:
    """Chunks that end at the largest changes of topic; see the module docstring."""
    sentences = [
        sentence
        for segment in stream.segments
        for piece in block_pieces(stream, segment, bound)
        for sentence in _sentences(stream, piece)
    ]
    if not sentences:
        return []
    vectors = embed([s.text(stream) for s in sentences])
    starts = topic_starts(vectors, threshold_percentile)

    def breaks(index: int, has_content: bool) -> bool:
        before, sentence = sentences[index - 1].segment, sentences[index].segment
        if sentence.top != before.top or (sentence.is_heading and has_content):
            return True
        return index in starts and not before.is_heading

    def allowed(before: Span, after: Span, both_small: bool) -> bool:
        same_top = stream.segment_at(before.end - 1).top == stream.segment_at(after.start).top
        return same_top or both_small

    spans = pack(stream, sentences, bound, breaks)
    return merge_small(stream, spans, bound, min_tokens, allowed)


def _sentences(stream: Stream, piece: Piece) -> list[Piece]:
    """A piece of text cut into sentences; a table or table part stays whole."""
    if piece.prefix or piece.segment.block.table is not None:
        return [piece]
    found: list[Piece] = []
    start = piece.start
    for gap_start, gap_end in _sentence_gaps(stream.text, piece.start, piece.end):
        _add_sentence(found, stream, piece, start, gap_start)
        start = gap_end
    _add_sentence(found, stream, piece, start, piece.end)
    return found


def _sentence_gaps(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Where sentences of ``text[start:end]`` end and the next begin: whitespace after
    ., !, ? or … (a closing quote or bracket may come between) before anything but a
    lower-case letter; blank lines; line breaks before anything but a lower-case
    letter (a hard-wrapped line going on with its sentence); and the point after a
    CJK full stop. Gaps hold whitespace only, so sentences and the gaps between them
    give the text back unchanged. (Whitespace runs are looked at one by one: a single
    pattern with nested whitespace repeats takes quadratic time on long runs.)"""
    gaps = []
    for run in _SPACE_RUN.finditer(text, start, end):
        run_start, run_end = run.span()
        if run_end >= end:
            continue
        newlines = run.group().count("\n")
        before = text[run_start - 1] if run_start > start else ""
        if before in _CLOSERS and run_start - 2 >= start:
            before = text[run_start - 2]
        if newlines >= 2 or (
            not text[run_end].islower() and (newlines == 1 or (before and before in _STOPS))
        ):
            gaps.append((run_start, run_end))
    gaps.extend((m.end(), m.end()) for m in _CJK_STOP.finditer(text, start, end))
    return sorted(gaps)


def _add_sentence(found: list[Piece], stream: Stream, piece: Piece, start: int, end: int) -> None:
    start, end = trimmed(stream.text, start, end)
    if start < end:
        found.append(Piece(start, end, segment=piece.segment))


def topic_starts(vectors: NDArray[np.float32], percentile: float) -> set[int]:
    """The indices of the sentences that open a new topic: those after the places where
    the distance between the neighbouring windows is above ``percentile``."""
    count = len(vectors)
    if count < 2:
        return set()
    sums = np.vstack([np.zeros((1, vectors.shape[1]), dtype=np.float64), np.cumsum(vectors, 0)])
    places = np.arange(count - 1)  # place i lies between sentence i and sentence i + 1
    left_from = np.maximum(places + 1 - WINDOW, 0)
    right_to = np.minimum(places + 1 + WINDOW, count)
    left = sums[places + 1] - sums[left_from]
    right = sums[right_to] - sums[places + 1]
    norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    similarity = np.einsum("ij,ij->i", left, right) / np.maximum(norms, 1e-12)
    distance = 1.0 - similarity
    threshold = float(np.percentile(distance, percentile))
    return {int(i) + 1 for i in np.nonzero(distance > threshold)[0]}
