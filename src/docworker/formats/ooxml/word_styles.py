"""What a Word paragraph's style and numbering make it: heading, title, list item, ...

Word keeps a paragraph's role outside the paragraph: in its style (``Heading 2``,
``Title``, ``Caption``, a custom style based on one of them, an outline level)
and in the numbering definitions its ``w:numPr`` points to (whose level format
says bullet or number). :class:`ParagraphRoles` reads ``styles.xml`` and
``numbering.xml`` once and answers for each paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from docworker.document import BlockKind
from docworker.formats.ooxml.package import child

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_W = f"{{{W_NS}}}"
_VAL = f"{_W}val"
_HEADING_NAME = re.compile(r"^heading\s*(\d)$")
_CODE_STYLES = frozenset({"html preformatted", "code", "source code", "macro text", "verbatim"})
_QUOTE_STYLES = frozenset({"quote", "intense quote", "block text", "block quote"})
#: Outline level 9 means "body text"; 0-8 are heading levels 1-9.
_BODY_OUTLINE = 9


@dataclass(frozen=True)
class Role:
    """What a paragraph is: a block kind, a level (heading depth or list depth) and,
    for list items, whether they are numbered."""

    kind: BlockKind
    level: int | None = None
    ordered: bool | None = None


@dataclass
class _Style:
    name: str
    based_on: str | None
    outline: int | None
    numbering: tuple[str, int] | None


@dataclass
class ParagraphRoles:
    """Style and numbering definitions of one document."""

    styles: dict[str, _Style] = field(default_factory=dict)
    default_style: str | None = None
    #: (numId, level) → the level's number format (``bullet``, ``decimal``, ...).
    formats: dict[tuple[str, int], str] = field(default_factory=dict)

    @classmethod
    def read(
        cls, styles: etree._Element | None, numbering: etree._Element | None
    ) -> ParagraphRoles:
        roles = cls()
        if styles is not None:
            roles._read_styles(styles)
        if numbering is not None:
            roles._read_numbering(numbering)
        return roles

    def _read_styles(self, root: etree._Element) -> None:
        for style in root.iterfind(f"{_W}style"):
            if style.get(f"{_W}type") != "paragraph":
                continue
            style_id = style.get(f"{_W}styleId", "")
            name = _val(style.find(f"{_W}name")) or style_id
            self.styles[style_id] = _Style(
                name=name.strip().lower(),
                based_on=_val(style.find(f"{_W}basedOn")),
                outline=_int(_val(style.find(f"{_W}pPr/{_W}outlineLvl"))),
                numbering=_num_pr(style.find(f"{_W}pPr/{_W}numPr")),
            )
            if style.get(f"{_W}default") in {"1", "true", "on"}:
                self.default_style = style_id

    def _read_numbering(self, root: etree._Element) -> None:
        abstract: dict[str, dict[int, str]] = {}
        for definition in root.iterfind(f"{_W}abstractNum"):
            levels = abstract.setdefault(definition.get(f"{_W}abstractNumId", ""), {})
            for level in definition.iterfind(f"{_W}lvl"):
                levels[_int(level.get(f"{_W}ilvl")) or 0] = (
                    _val(level.find(f"{_W}numFmt")) or "decimal"
                )
        for num in root.iterfind(f"{_W}num"):
            num_id = num.get(f"{_W}numId", "")
            levels = dict(abstract.get(_val(num.find(f"{_W}abstractNumId")) or "", {}))
            for override in num.iterfind(f"{_W}lvlOverride/{_W}lvl"):
                fmt = _val(override.find(f"{_W}numFmt"))
                if fmt:
                    levels[_int(override.get(f"{_W}ilvl")) or 0] = fmt
            self.formats.update({(num_id, ilvl): fmt for ilvl, fmt in levels.items()})

    def _chain(self, style_id: str | None) -> list[_Style]:
        """The style and the styles it is based on, nearest first (cycles cut)."""
        chain: list[_Style] = []
        seen: set[str] = set()
        while style_id and style_id not in seen and style_id in self.styles:
            seen.add(style_id)
            chain.append(self.styles[style_id])
            style_id = chain[-1].based_on
        return chain

    def role(self, paragraph: etree._Element) -> Role:
        """The role of a ``w:p`` element."""
        props = child(paragraph, f"{_W}pPr")
        style_id = _val(child(props, f"{_W}pStyle"))
        chain = self._chain(style_id or self.default_style)
        heading = self._heading(props, chain)
        if heading is not None:
            return heading
        own_numbering = _num_pr(child(props, f"{_W}numPr"))
        numbering = own_numbering or next((s.numbering for s in chain if s.numbering), None)
        if numbering is not None:
            num_id, level = numbering
            fmt = self.formats.get((num_id, level))
            if num_id != "0" and fmt is not None and fmt != "none":
                return Role(BlockKind.LIST_ITEM, level + 1, fmt != "bullet")
        names = {s.name for s in chain}
        if "caption" in names:
            return Role(BlockKind.CAPTION)
        if names & _QUOTE_STYLES:
            return Role(BlockKind.QUOTE)
        if names & _CODE_STYLES:
            return Role(BlockKind.CODE)
        return Role(BlockKind.PARAGRAPH)

    def _heading(self, props: etree._Element | None, chain: list[_Style]) -> Role | None:
        for style in chain:
            if style.name == "title":
                return Role(BlockKind.TITLE)
            match = _HEADING_NAME.match(style.name)
            if match:
                return Role(BlockKind.HEADING, max(1, int(match.group(1))))
        own = _int(_val(child(props, f"{_W}outlineLvl")))
        outline = (
            own
            if own is not None
            else next((s.outline for s in chain if s.outline is not None), None)
        )
        if outline is not None and 0 <= outline < _BODY_OUTLINE:
            return Role(BlockKind.HEADING, outline + 1)
        return None


def _val(element: etree._Element | None) -> str | None:
    return None if element is None else element.get(_VAL)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _num_pr(element: etree._Element | None) -> tuple[str, int] | None:
    if element is None:
        return None
    num_id = _val(element.find(f"{_W}numId"))
    if num_id is None:
        return None
    return num_id, _int(_val(element.find(f"{_W}ilvl"))) or 0
