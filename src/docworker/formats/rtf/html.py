"""HTML and plain text carried inside RTF ([MS-OXRTFEX]): telling so, and taking HTML out.

Outlook keeps an HTML message's body as RTF that renders like the HTML and
also carries it: ``\\fromhtml1`` in the header says so (``\\fromtext`` says the
RTF carries plain text). The markup with no RTF equivalent (tags, character
references, comments) sits in ``{\\*\\htmltag ...}`` groups, and the RTF that
only renders (fonts, bold, paragraph marks standing for tags) is fenced by
``\\htmlrtf`` ... ``\\htmlrtf0``, a toggle that a group's end restores.
De-encapsulation keeps every ``\\htmltag`` group's content and the text that
no ``\\htmlrtf`` fences; ``\\par`` and ``\\line`` become line breaks and the
escapes their characters. Text inside tags is in the document's code page,
other text in its font's. ``\\*\\mhtmltag`` (a tag with its URL rewritten for
MHTML) and every other ``\\*`` destination are skipped: the ``\\htmltag``
beside it holds the original.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from docworker.errors import HostileInput
from docworker.formats.rtf.lexer import Kind, tokens
from docworker.formats.rtf.parser import CHARSET_CODECS, CODEPAGE_WORDS, MAX_DEPTH, codepage_codec

Encapsulated = Literal["html", "text"]

#: How many control words of the header are looked at for ``\fromhtml1`` / ``\fromtext``.
_HEADER_WORDS = 10
#: Destinations holding no HTML (their text is names, numbers or pictures).
_SKIPPED = frozenset({
    "fonttbl", "colortbl", "stylesheet", "info", "pict", "listtable", "listoverridetable",
    "revtbl", "rsidtbl", "filetbl", "generator", "themedata", "colorschememapping",
    "datastore", "latentstyles", "object", "objdata", "header", "footer", "footnote",
})  # fmt: skip
_CHARACTERS = {
    "par": "\r\n",
    "line": "\r\n",
    "tab": "\t",
    "lquote": "\u2018",
    "rquote": "\u2019",
    "ldblquote": "\u201c",
    "rdblquote": "\u201d",
    "bullet": "\u2022",
    "endash": "\u2013",
    "emdash": "\u2014",
}
_SYMBOLS = {
    b"{": "{",
    b"}": "}",
    b"\\": "\\",
    b"~": "\xa0",
    b"_": "\xad",
    b"\n": "\r\n",  # a backslash before a line break is a \par
    b"\r": "\r\n",
}


def encapsulation(rtf: bytes) -> Encapsulated | None:
    """``"html"`` for ``\\fromhtml1`` RTF, ``"text"`` for ``\\fromtext``, else None.

    As [MS-OXRTFEX] asks, only the header is looked at: the first control
    words after ``{\\rtf1``, up to the first group or text.
    """
    seen = 0
    for index, (kind, value, param) in enumerate(tokens(rtf)):
        if index == 0:
            if kind is not Kind.OPEN:
                return None
            continue
        if kind is not Kind.WORD or seen >= _HEADER_WORDS:
            return None
        seen += 1
        if value == b"fromhtml" and param == 1:
            return "html"
        if value == b"fromtext" and param is None:
            return "text"
    return None


def encapsulated_html(rtf: bytes) -> str:
    """The HTML that ``\\fromhtml1`` RTF carries.

    Raises :class:`HostileInput` when groups nest deeper than any writer nests them.
    """
    return _Extractor().extract(rtf)


@dataclass
class _Group:
    """What a group sets; a nested group starts with a copy, and its end restores it."""

    #: ``\htmlrtf`` is on: what follows only renders, it is not the HTML.
    fenced: bool = False
    #: In a destination with no HTML in it (the font table, a picture, a ``\*`` group).
    skipped: bool = False
    #: In an ``\htmltag`` group: markup, in the document's code page.
    tag: bool = False
    #: In the font table: the font number being described.
    font_table: bool = False
    font: int | None = None
    codec: str = "cp1252"
    uc: int = 1


class _Extractor:
    def __init__(self) -> None:
        self.group = _Group()
        self.stack: list[_Group] = []
        self.out: list[str] = []
        self.pending = bytearray()
        self.starred = False
        self.skip = 0  # \uN fallback bytes still to skip
        self.default_codec = "cp1252"
        self.default_font: int | None = None
        self.fonts: dict[int, str] = {}

    def extract(self, rtf: bytes) -> str:
        for kind, value, param in tokens(rtf):
            if kind is Kind.BYTES:
                self._bytes(value)
                continue
            self._flush()
            if kind is Kind.OPEN:
                self._open()
            elif kind is Kind.CLOSE:
                self._close()
            elif self.skip:
                self.skip -= 1  # a control word or symbol standing in for a \uN character
            elif kind is Kind.WORD:
                self._word(value.decode("ascii"), param)
            else:
                self._symbol(value)
        self._flush()
        # \uN gives UTF-16 code units: pairs become characters, a lone half a mark.
        text = "".join(self.out)
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")

    @property
    def _copying(self) -> bool:
        return not (self.group.fenced or self.group.skipped)

    def _open(self) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise HostileInput(f"the RTF body nests groups deeper than {MAX_DEPTH}")
        self.stack.append(self.group)
        self.group = replace(self.group)
        self.starred, self.skip = False, 0

    def _close(self) -> None:
        if not self.stack:
            return  # an unbalanced brace
        closing, self.group, self.skip = self.group, self.stack.pop(), 0
        if closing.font_table and not self.group.font_table:
            # Text before any \f is in the default font.
            self.group.codec = self._default_font_codec()

    def _default_font_codec(self) -> str:
        if self.default_font is None:
            return self.default_codec
        return self.fonts.get(self.default_font, self.default_codec)

    def _bytes(self, value: bytes) -> None:
        if self.skip:
            skipped = min(self.skip, len(value))
            value, self.skip = value[skipped:], self.skip - skipped
        if value and self._copying:
            self.pending += value

    def _flush(self) -> None:
        if self.pending:
            codec = self.default_codec if self.group.tag else self.group.codec
            self.out.append(self.pending.decode(codec, errors="replace"))
            self.pending.clear()

    def _emit(self, text: str) -> None:
        if self._copying:
            self.out.append(text)

    def _symbol(self, symbol: bytes) -> None:
        if symbol == b"*":
            self.starred = True
        elif symbol in _SYMBOLS:
            self._emit(_SYMBOLS[symbol])

    def _word(self, word: str, param: int | None) -> None:
        starred, self.starred = self.starred, False
        group = self.group
        if word == "htmlrtf":
            group.fenced = param != 0
        elif self._font_word(word, param):
            pass  # fonts decide code pages even where their text is not copied
        elif group.skipped:
            return
        elif word == "htmltag":
            group.tag = True  # its number (where the tag was) does not matter here
        elif starred or word in _SKIPPED:
            group.skipped = True
        elif word == "u" and param is not None:
            self._emit(chr(param % 0x10000))
            self.skip = group.uc
        elif word == "uc":
            group.uc = max(param or 0, 0)
        elif word in _CHARACTERS:
            self._emit(_CHARACTERS[word])

    def _font_word(self, word: str, param: int | None) -> bool:
        """Act on a word about fonts and code pages; False when ``word`` is not one."""
        group = self.group
        if word == "fonttbl":
            group.font_table = group.skipped = True
        elif word == "f" and param is not None:
            if group.font_table:
                group.font = param
                self.fonts.setdefault(param, self.default_codec)
            else:
                group.codec = self.fonts.get(param, self.default_codec)
        elif word in {"fcharset", "cpg"}:
            if group.font_table and group.font is not None:
                codec = CHARSET_CODECS.get(param or 0) if word == "fcharset" else None
                codec = codec or (codepage_codec(param) if word == "cpg" else None)
                self.fonts[group.font] = codec or self.default_codec
        elif word == "ansicpg":
            self.default_codec = group.codec = codepage_codec(param) or self.default_codec
        elif word in CODEPAGE_WORDS:
            self.default_codec = group.codec = CODEPAGE_WORDS[word]
        elif word == "deff":
            self.default_font = param
        elif word == "plain":
            group.codec = self._default_font_codec()
        else:
            return False
        return True
