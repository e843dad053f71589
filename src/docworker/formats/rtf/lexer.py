"""RTF's tokens: control words, control symbols, hex escapes, braces and text.

The lexer works on the file's bytes, since RTF text is bytes in the current
font's code page until the reader decodes it. One regular expression matches
each token where the last one ended, so lexing is linear in the file's size
whatever it holds: a run of ``\\'hh`` escapes is one token, and so is a run of
text (a picture's hex data included). ``\\binN`` is followed by N raw bytes,
which are skipped unread.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from enum import IntEnum


class Kind(IntEnum):
    WORD = 1  # \word or \wordN: value is the word, param the number (or None)
    SYMBOL = 2  # \x for one non-letter x: value is x
    BYTES = 3  # text, or a run of \'hh escapes: value is the bytes
    OPEN = 4  # {
    CLOSE = 5  # }


Token = tuple[Kind, bytes, int | None]

_TOKEN = re.compile(
    rb"""
    \\([a-zA-Z]{1,32})(-?[0-9]{1,10})?[0-9]*\x20?  # control word, its parameter, one space eaten
    | ((?:\\'[0-9a-fA-F]{2})+)                    # a run of hex escapes
    | \\([^a-zA-Z'])                              # control symbol (\\\n is a paragraph)
    | ([{}])
    | ([^\\{}]+)                                  # text; line breaks in it mean nothing
    | \\'                                         # a malformed hex escape: dropped
    """,
    re.VERBOSE | re.DOTALL,
)
_NEWLINES = re.compile(rb"[\r\n]+")


def tokens(data: bytes) -> Iterator[Token]:
    """The tokens of ``data`` in order; a trailing lone backslash ends the stream."""
    position = 0
    while position < len(data):
        position = yield from _tokens_from(data, position)


def _tokens_from(data: bytes, start: int) -> Generator[Token, None, int]:
    """Tokens from ``start`` up to a ``\\binN`` (then: where its data ends) or the end."""
    for match in _TOKEN.finditer(data, start):
        group = match.lastindex
        if group is None:
            continue  # a malformed hex escape
        if group <= 2:  # a control word, with or without its parameter
            word = match.group(1)
            number = int(match.group(2)) if group == 2 else None
            if word == b"bin" and number:
                return match.end() + max(number, 0)  # raw binary data: nothing to read
            yield Kind.WORD, word, number
        elif group == 3:
            yield Kind.BYTES, bytes.fromhex(match.group(3).replace(b"\\'", b"").decode()), None
        elif group == 4:
            yield Kind.SYMBOL, match.group(4), None
        elif group == 5:
            yield (Kind.OPEN if match.group(5) == b"{" else Kind.CLOSE), b"", None
        else:
            text = _NEWLINES.sub(b"", match.group(6))
            if text:
                yield Kind.BYTES, text, None
    return len(data)
