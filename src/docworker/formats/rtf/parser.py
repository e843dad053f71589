"""Rich Text Format: paragraphs, headings, lists, tables, notes and metadata.

:mod:`~docworker.formats.rtf.lexer` cuts the file into tokens; :class:`_Reader`
runs RTF's group machine over them. Each ``{`` copies the current state (font,
``\\ucN``, paragraph properties, where text goes) and ``}`` restores it.
Text is bytes until decoded in the code page of the current font (its
``\\fcharset`` or ``\\cpg``; the document's ``\\ansicpg`` by default), so a
run of ``\\'hh`` escapes is decoded as a whole and double-byte text (Shift-JIS,
GBK, Big5) comes out whole; ``\\uN`` gives a character directly and skips the
``\\ucN`` fallback bytes after it.

What a reader never sees is dropped: the font, colour and style tables,
pictures, object data (an object's ``\\result`` stays), field instructions
(a ``HYPERLINK`` becomes a link on its result), bookmarks, revision tables and
every unknown ``\\*`` destination. ``\\info`` gives the metadata; ``\\upr``'s
Unicode half (``\\ud``) is read instead of its ANSI half.

A paragraph (ended by ``\\par``) is a HEADING when its outline level or its
style ("heading N") says so, a LIST_ITEM when Word wrote its number in a
``\\listtext`` (or ``\\pntext``) group, else a PARAGRAPH. Paragraphs marked
``\\intbl`` fill table cells; ``\\cell`` and ``\\row`` close them, and
:mod:`~docworker.formats.rtf.tables` places the cells (spans included) on a grid.
Footnotes follow their paragraph; headers and footers are HEADER and FOOTER
blocks where they are defined. Groups nested deeper than :data:`MAX_DEPTH` are
refused as hostile. RTF has no fixed pages: a page selection is ignored.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from docworker.document import BlockKind, Document, DocumentBuilder, Link
from docworker.errors import CorruptDocument, HostileInput
from docworker.formats.base import ParseContext, Source
from docworker.formats.rtf.lexer import Kind, tokens
from docworker.formats.rtf.tables import MERGE_FLAGS, RowDef, TableBuilder

RTF_MIME = "application/rtf"
#: Word nests a few dozen groups at most; thousands only serve to exhaust a reader.
MAX_DEPTH = 1000

#: ``\fcharset`` → Python codec (Windows code pages, as Word maps them).
CHARSET_CODECS = {
    0: "cp1252",  # ANSI_CHARSET is Western; 1 (DEFAULT_CHARSET) is the document's own
    2: "cp1252",  # Symbol: no real code page; bullets come out right this way
    77: "mac_roman",
    128: "cp932",
    129: "cp949",
    130: "johab",
    134: "gbk",
    136: "cp950",
    161: "cp1253",
    162: "cp1254",
    163: "cp1258",
    177: "cp1255",
    178: "cp1256",
    186: "cp1257",
    204: "cp1251",
    222: "cp874",
    238: "cp1250",
    254: "cp437",
    255: "cp850",
}
#: Destinations whose text is not document text.
_DISCARDED = frozenset({
    "colortbl", "pict", "objdata", "objclass", "objname", "listtable", "listoverridetable",
    "revtbl", "rsidtbl", "filetbl", "generator", "xmlnstbl", "themedata", "colorschememapping",
    "datastore", "latentstyles", "pgdsctbl", "bkmkstart", "bkmkend", "pnseclvl", "pntxta",
    "pntxtb", "nonshppict", "shppict", "shprslt", "sp", "xe", "tc", "tcn", "template", "docvar",
    "userprops", "atnid", "atnauthor", "atndate", "atnref", "annotation", "mmathPr", "do",
    "fchars", "lchars", "protusertbl", "passwordhash",
})  # fmt: skip
_INFO_FIELDS = frozenset({
    "title", "subject", "author", "operator", "keywords", "comment", "doccomm", "company",
    "manager", "category",
})  # fmt: skip
_INFO_TIMES = frozenset({"creatim", "revtim"})
_TIME_PARTS = frozenset({"yr", "mo", "dy", "hr", "min", "sec"})
_COUNTS = frozenset({"nofpages", "nofwords", "nofchars"})
#: Destinations that hold tables (fonts, styles, metadata) rather than text.
_TABLES = frozenset({"fonttbl", "stylesheet", "info", "upr"})
#: Destinations that hold text even when marked \* (\ud: \upr's Unicode half).
_CONTAINERS = frozenset({"ud", "shpinst", "shptxt", "result", "object", "shp"})
#: Destinations whose text is kept apart: a list number, a footnote.
_BUFFERED = frozenset({"listtext", "pntext", "footnote"})
_FIELDS = frozenset({"field", "fldinst", "fldrslt"})
_HEADERS = frozenset({"header", "headerl", "headerr", "headerf"})
_FOOTERS = frozenset({"footer", "footerl", "footerr", "footerf"})
_CHARACTERS = {
    "emdash": "\u2014",
    "endash": "\u2013",
    "bullet": "\u2022",
    "lquote": "\u2018",
    "rquote": "\u2019",
    "ldblquote": "\u201c",
    "rdblquote": "\u201d",
    "emspace": " ",
    "enspace": " ",
    "qmspace": " ",
    "tab": "\t",
    "line": "\n",
    "nestcell": "\t",
    "nestrow": "\n",
}
_SYMBOLS = {b"~": " ", b"_": "-", b"{": "{", b"}": "}", b"\\": "\\", b"\t": "\t"}
_HYPERLINK = re.compile(r'HYPERLINK\s+(?:\\[a-z]\s+)*"([^"]+)"', re.IGNORECASE)
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_NUMBERED_MARKER = re.compile(r"\d|^\(?[a-zA-Z]{1,5}[.)]")
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Text:
    """Text gathered for one destination (a paragraph, a cell, a note, a header)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.links: list[Link] = []

    @property
    def text(self) -> str:
        return clean_text("".join(self.parts))


@dataclass
class _Field:
    """A ``\\field``: its instruction, and where its result starts in its text."""

    instruction: _Text = field(default_factory=_Text)
    result: _Text | None = None
    start: int = 0


@dataclass
class _StyleEntry:
    number: int | None = None
    outline: int | None = None
    name: _Text = field(default_factory=_Text)


@dataclass
class _State:
    """What a group sets; copied into each nested group, restored when it closes."""

    #: Where text goes: "body" (paragraphs and cells), a buffer, or None (nowhere).
    target: _Text | str | None = "body"
    #: Set in a group that is not document text at all: nothing under it is read.
    discarded: bool = False
    codec: str = "cp1252"
    uc: int = 1
    style: int = 0
    outline: int | None = None
    intbl: bool = False
    ilvl: int = 0
    destination: str = ""
    font_entry: int | None = None
    style_entry: _StyleEntry | None = None
    field: _Field | None = None
    upr_first_seen: bool = False
    #: Hidden text (``\v``) or a tracked deletion (``\deleted``): not shown, not read.
    hidden: bool = False
    deleted: bool = False

    def child(self) -> _State:
        """The state a nested group starts with (a plain copy: groups are many)."""
        copied = object.__new__(_State)
        copied.__dict__.update(self.__dict__)
        copied.upr_first_seen = False
        return copied


def clean_text(text: str) -> str:
    """Surrogate pairs joined, lone halves dropped, each line's spaces collapsed."""
    if _LONE_SURROGATE.search(text):
        text = _SURROGATE_PAIR.sub(_join_pair, text)
        text = _LONE_SURROGATE.sub("\ufffd", text)
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _join_pair(match: re.Match[str]) -> str:
    high, low = match.group(0)[0], match.group(0)[1]
    return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(low) - 0xDC00))


class RtfParser:
    """RTF documents from any writer (Word, WordPad, LibreOffice, TextEdit)."""

    name: ClassVar[str] = "rtf"
    media_types: ClassVar[frozenset[str]] = frozenset({RTF_MIME})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        data = source.path.read_bytes()
        if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf"):
            raise CorruptDocument(self.name, "the file does not start with {\\rtf")
        builder = DocumentBuilder(self.name, source.mime, limits=ctx.limits)
        if ctx.pages is not None:
            builder.warn(
                "pages-ignored",
                "an RTF document has no fixed pages: the page selection was ignored",
            )
        reader = _Reader(builder, ctx.limits.max_cells)
        reader.read(data)
        reader.read_metadata()
        if not builder.document.blocks:
            builder.warn("empty", "the document holds no text")
        ctx.progress(1.0, f"{len(builder.document.blocks)} blocks")
        return builder.finish()


def add_rtf(builder: DocumentBuilder, data: bytes, max_cells: int) -> None:
    """Add the blocks of the RTF ``data`` to a document being built (an e-mail's RTF body).

    The RTF's ``\\info`` group is not read: the document it is part of has its
    own metadata.
    """
    _Reader(builder, max_cells).read(data)


class _Reader:
    """RTF's group machine: tokens in, blocks and metadata out."""

    def __init__(self, builder: DocumentBuilder, max_cells: int) -> None:
        self.builder = builder
        self.state = _State()
        self.stack: list[_State] = []
        self.pending = bytearray()
        self.skip = 0  # \uN fallback bytes still to skip
        self.starred = False  # the last token was \*
        self.default_codec = "cp1252"
        self.default_font: int | None = None
        self.fonts: dict[int, str] = {}
        self.styles: dict[int, tuple[str, int | None]] = {}
        self.paragraph = _Text()
        self.marker: str | None = None  # the list number Word wrote for this paragraph
        self.footnotes: list[str] = []
        self.cell = _Text()
        self.row: list[str] = []
        self.row_definition = RowDef()
        self.table = TableBuilder(max_cells)
        self.table_links: list[Link] = []
        self.info: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.times: dict[str, dict[str, int]] = {}

    def read(self, data: bytes) -> None:
        for kind, value, param in tokens(data):
            if kind is Kind.BYTES:
                self._bytes(value)
                continue
            self._flush_bytes()
            if kind is Kind.OPEN:
                self._open()
            elif kind is Kind.CLOSE:
                self._close()
            elif self.state.discarded:
                continue
            elif self.skip:
                self.skip -= 1  # a control word or symbol in a \uN fallback
            elif kind is Kind.WORD:
                self._word(value.decode("ascii"), param)
            else:
                self._symbol(value)
        self._flush_bytes()
        self._end_paragraph()

    # -- text ------------------------------------------------------------------------------

    def _bytes(self, value: bytes) -> None:
        if self.skip:
            skipped = min(self.skip, len(value))
            value, self.skip = value[skipped:], self.skip - skipped
        if value and self.state.target is not None:
            self.pending += value

    def _flush_bytes(self) -> None:
        if self.pending:
            self._emit(self.pending.decode(self.state.codec, errors="replace"))
            self.pending.clear()

    def _emit(self, text: str) -> None:
        if self.state.hidden or self.state.deleted:
            return
        buffer = self._buffer()
        if buffer is not None:
            buffer.parts.append(text)

    def _buffer(self) -> _Text | None:
        """Where text goes now: a destination's buffer, a table cell or the paragraph."""
        target = self.state.target
        if target == "body":
            return self.cell if self.state.intbl else self.paragraph
        return target if isinstance(target, _Text) else None

    # -- groups ----------------------------------------------------------------------------

    def _open(self) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise HostileInput(f"the RTF document nests groups deeper than {MAX_DEPTH}")
        parent, self.skip, self.starred = self.state, 0, False
        child = parent.child()
        if parent.destination == "upr" and not parent.upr_first_seen:
            # \upr holds the same text twice, ANSI first; the \ud group after it is read.
            parent.upr_first_seen = True
            child.target, child.discarded = None, True
        if parent.destination == "stylesheet" and parent.style_entry is None:
            child.style_entry = _StyleEntry()
            child.target = child.style_entry.name
        self.stack.append(parent)
        self.state = child

    def _close(self) -> None:
        if not self.stack:
            return  # an unbalanced brace: Word ignores it too
        closing, self.state, self.skip = self.state, self.stack.pop(), 0
        entry = closing.style_entry
        if entry is not None and entry is not self.state.style_entry and entry.number is not None:
            self.styles[entry.number] = (entry.name.text.rstrip(";").strip(), entry.outline)
        if closing.destination == self.state.destination:
            return
        if closing.destination == "fonttbl" and self.default_font in self.fonts:
            # Text before any \f is in the default font.
            self.state.codec = self.fonts[self.default_font]
        if closing.destination == "fldrslt" and closing.field is not None:
            self._field_link(closing.field)
        target = closing.target
        if not isinstance(target, _Text) or target is self.state.target:
            return
        name = closing.destination
        if name == "listtext":
            self.marker = target.text
        elif name == "footnote":
            self.footnotes.append(target.text)
        elif name in _HEADERS or name in _FOOTERS:
            kind = BlockKind.HEADER if name in _HEADERS else BlockKind.FOOTER
            self.builder.add(kind, target.text)
        elif name.startswith("info:"):
            self.info.setdefault(name[5:], target.text)

    def _field_link(self, found: _Field) -> None:
        match = _HYPERLINK.search("".join(found.instruction.parts))
        if found.result is None or match is None:
            return
        text = clean_text("".join(found.result.parts[found.start :]))
        if text:
            found.result.links.append(Link(text=" ".join(text.split()), url=match.group(1)))

    # -- control words ---------------------------------------------------------------------

    def _symbol(self, symbol: bytes) -> None:
        if symbol == b"*":
            self.starred = True
        elif symbol in {b"\n", b"\r"}:
            self._end_paragraph()
        else:
            self._emit(_SYMBOLS.get(symbol, ""))

    def _word(self, word: str, param: int | None) -> None:
        starred, self.starred = self.starred, False
        if word not in _HANDLED:  # formatting, mostly: nothing to do with the text
            if starred:  # an unknown \* destination: readers that do not know it skip it
                self.state.target, self.state.discarded = None, True
        elif word in _CHARACTERS:
            self._emit(_CHARACTERS[word])
        elif word in _PARAGRAPH_WORDS:
            self._paragraph_word(word, param)
        elif word in _TABLE_WORDS:
            self._table_word(word, param)
        elif word in _FONT_WORDS:
            self._font_word(word, param)
        elif word == "u" and param is not None:
            self._emit(chr(param % 0x10000))
            self.skip = self.state.uc
        elif word == "uc":
            self.state.uc = max(param or 0, 0)
        else:
            self._destination(word, param)

    def _paragraph_word(self, word: str, param: int | None) -> None:
        state = self.state
        if word in {"par", "sect", "page"}:
            self._end_paragraph()
        elif word == "pard":
            state.style, state.outline, state.intbl, state.ilvl = 0, None, False, 0
        elif word == "s":
            if state.style_entry is not None and state.destination == "stylesheet":
                state.style_entry.number = param
            else:
                state.style = param or 0
        elif word == "outlinelevel":
            if state.style_entry is not None and state.destination == "stylesheet":
                state.style_entry.outline = param
            else:
                state.outline = param
        elif word == "ilvl":
            state.ilvl = max(param or 0, 0)

    def _table_word(self, word: str, param: int | None) -> None:
        if word == "intbl":
            self.state.intbl = True
        elif word == "itap":
            self.state.intbl = bool(param)
        elif word == "cell":
            self.row.append(self.cell.text)
            self.table_links += self.cell.links
            self.cell = _Text()
        elif word == "row":
            if self.row:
                self.table.add_row(self.row, self.row_definition)
            self.row = []
        elif word == "trowd":
            self.row_definition = RowDef()
        elif word == "cellx":
            self.row_definition.cell(param or 0)
        elif word == "trhdr":
            self.row_definition.header = True
        else:
            self.row_definition.flag(word)

    def _font_word(self, word: str, param: int | None) -> None:
        state = self.state
        if word == "f" and param is not None:
            if state.destination == "fonttbl":
                state.font_entry = param
                self.fonts.setdefault(param, self.default_codec)
            else:
                state.codec = self.fonts.get(param, self.default_codec)
        elif word == "fcharset" and state.font_entry is not None:
            charset = CHARSET_CODECS.get(param or 0)
            self.fonts[state.font_entry] = charset or self.default_codec
        elif word == "cpg" and state.font_entry is not None:
            known = self.fonts.get(state.font_entry, self.default_codec)
            self.fonts[state.font_entry] = codepage_codec(param) or known
        elif word == "plain":
            default = self.fonts.get(self.default_font) if self.default_font is not None else None
            state.codec = default or self.default_codec
            state.hidden = state.deleted = False
        elif word == "v":
            state.hidden = param != 0
        elif word == "deleted":
            state.deleted = param != 0
        elif word == "deff":
            self.default_font = param
        elif word in CODEPAGE_WORDS:
            self.default_codec = state.codec = CODEPAGE_WORDS[word]
        elif word == "ansicpg":
            self.default_codec = state.codec = codepage_codec(param) or self.default_codec

    def _destination(self, word: str, param: int | None) -> None:
        """Start the destination ``word`` names, or note the \\info value it gives."""
        state = self.state
        if word in _DISCARDED:
            state.target, state.discarded = None, True
        elif word in _TABLES:
            state.target, state.destination = None, word
        elif word in _CONTAINERS:
            state.destination = word  # containers of text, even behind \*
        elif word in _INFO_FIELDS or word in _BUFFERED:
            name = f"info:{word}" if word in _INFO_FIELDS else word
            state.target, state.destination = _Text(), "listtext" if word == "pntext" else name
        elif word in _HEADERS or word in _FOOTERS:
            state.target, state.destination = _Text(), word
        elif word in _INFO_TIMES:
            state.target, state.destination = None, word
            self.times[word] = {}
        elif word in _TIME_PARTS and state.destination in _INFO_TIMES:
            self.times[state.destination][word] = param or 0
        elif word in _COUNTS:
            self.counts[word] = param or 0
        else:
            self._field_destination(word)

    def _field_destination(self, word: str) -> None:
        state = self.state
        if word == "field":
            state.field, state.destination = _Field(), word
        elif word == "fldinst":
            state.target = state.field.instruction if state.field is not None else None
            state.destination = word
        elif word == "fldrslt":
            state.destination = word
            if state.field is not None:
                state.field.result = self._buffer()
                state.field.start = len(state.field.result.parts) if state.field.result else 0

    # -- blocks ----------------------------------------------------------------------------

    def _end_paragraph(self) -> None:
        """``\\par``: a paragraph ends (in a note, header or cell: a line ends)."""
        target = self.state.target
        if target is None:
            return
        if isinstance(target, _Text):
            target.parts.append("\n")
        elif self.state.intbl:
            self.cell.parts.append("\n")
        else:
            self._add_paragraph()

    def _add_paragraph(self) -> None:
        self._add_table()  # a paragraph outside the table ends it
        kind, level, ordered = self._role()
        paragraph = self.paragraph
        self.builder.add(kind, paragraph.text, level=level, ordered=ordered, links=paragraph.links)
        for note in self.footnotes:
            self.builder.add(BlockKind.FOOTNOTE, note)
        self.paragraph, self.marker, self.footnotes = _Text(), None, []

    def _role(self) -> tuple[BlockKind, int | None, bool | None]:
        """The paragraph's kind, level and numbering, from its list marker or its style."""
        # A heading stays one when its numbering (chapter numbers) is a list's.
        name, style_outline = self.styles.get(self.state.style, ("", None))
        outline = self.state.outline if self.state.outline is not None else style_outline
        if outline is not None and 0 <= outline < 9:
            return BlockKind.HEADING, outline + 1, None
        heading = _HEADING_STYLE.match(name)
        if heading:
            return BlockKind.HEADING, max(int(heading.group(1)), 1), None
        if self.marker is not None:
            numbered = bool(_NUMBERED_MARKER.search(self.marker))
            return BlockKind.LIST_ITEM, min(self.state.ilvl, 8) + 1, numbered
        if name.lower() == "title":
            return BlockKind.TITLE, None, None
        return BlockKind.PARAGRAPH, None, None

    def _add_table(self) -> None:
        if self.row:  # cells after the last \row: a row that was never closed
            self.table.add_row(self.row, self.row_definition)
            self.row = []
        if self.table.rows:
            self.builder.add(BlockKind.TABLE, table=self.table.build(), links=self.table_links)
            self.table = TableBuilder(self.table.max_cells - self.table.size)
            self.table_links = []

    # -- metadata --------------------------------------------------------------------------

    def read_metadata(self) -> None:
        """The ``\\info`` fields, counts and times read, into the builder's metadata."""
        metadata, info = self.builder.metadata, self.info
        metadata.title = info.get("title") or None
        metadata.subject = info.get("subject") or None
        metadata.authors = [info["author"]] if info.get("author") else []
        keywords = re.split(r"[,;]", info.get("keywords", ""))
        metadata.keywords = [k.strip() for k in keywords if k.strip()]
        metadata.created = _time(self.times.get("creatim"))
        metadata.modified = _time(self.times.get("revtim"))
        metadata.encoding = self.default_codec
        extra = {
            "last_modified_by": info.get("operator"),
            "comments": info.get("comment") or info.get("doccomm"),
            "company": info.get("company"),
            "manager": info.get("manager"),
            "category": info.get("category"),
        }
        metadata.extra.update({k: v for k, v in extra.items() if v})
        if self.counts.get("nofpages"):
            metadata.page_count = self.counts["nofpages"]
        if self.counts:
            metadata.extra["statistics"] = dict(self.counts)


_PARAGRAPH_WORDS = frozenset({"par", "sect", "page", "pard", "s", "outlinelevel", "ilvl"})
_TABLE_WORDS = frozenset({"intbl", "itap", "cell", "row", "trowd", "cellx", "trhdr"} | MERGE_FLAGS)
_FONT_WORDS = frozenset(
    {"f", "fcharset", "cpg", "plain", "deff", "ansicpg", "ansi", "mac", "pc", "pca", "v", "deleted"}
)
CODEPAGE_WORDS = {"ansi": "cp1252", "mac": "mac_roman", "pc": "cp437", "pca": "cp850"}
#: Every control word the reader acts on; the others (formatting) are passed over.
_HANDLED = frozenset().union(
    _CHARACTERS,
    _PARAGRAPH_WORDS,
    _TABLE_WORDS,
    _FONT_WORDS,
    {"u", "uc"},
    _DISCARDED,
    _TABLES,
    _CONTAINERS,
    _INFO_FIELDS,
    _BUFFERED,
    _HEADERS,
    _FOOTERS,
    _INFO_TIMES,
    _TIME_PARTS,
    _COUNTS,
    _FIELDS,
)
#: Code page numbers Python names differently.
_CODEC_NAMES = {10000: "mac_roman", 65001: "utf-8", 936: "gbk", 1361: "johab"}


def codepage_codec(number: int | None) -> str | None:
    """The Python codec of a Windows code page number; None when Python has none."""
    if number is None:
        return None
    name = _CODEC_NAMES.get(number, f"cp{number}")
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def _time(fields: dict[str, int] | None) -> datetime | None:
    """An ``\\info`` time (``\\yr \\mo \\dy \\hr \\min \\sec``); None when unset or invalid."""
    if not fields or not fields.get("yr"):
        return None
    try:
        return datetime(
            fields["yr"],
            fields.get("mo", 1) or 1,
            fields.get("dy", 1) or 1,
            fields.get("hr", 0),
            fields.get("min", 0),
            fields.get("sec", 0),
        )
    except (ValueError, OverflowError):  # OverflowError: a number past a C int
        return None
