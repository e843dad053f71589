"""Subtitles and captions: SubRip (``.srt``), WebVTT (``.vtt``) and TTML/DFXP, cue by cue.

Every cue becomes one paragraph holding its text as shown on screen (styling
tags and positioning overrides dropped, line breaks kept); when it was said,
and by whom, is listed in ``metadata.extra["cues"]`` with the id of the cue's
block, since the document model has no timing of its own. The speaker is kept
out of the text: transcripts and their reference texts give the words alone.

SubRip and WebVTT share one line reader: a cue is a timing line
(``start --> end``) and the text lines after it, up to a blank line or the next
cue's timing; anything else (WebVTT's header, ``NOTE``, ``STYLE`` and
``REGION`` blocks, cue numbers) is never text. WebVTT voice spans
(``<v Name>``) give the speaker. TTML is XML: each ``p`` in the body is a cue,
``br`` a line break, ``span`` inline text; times are clock times
(``hh:mm:ss.fff``, ``hh:mm:ss:ff`` frames) or offsets (``2.5s``, ``300ms``,
``40f``, ``1000t``), relative to the enclosing element's begin.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from lxml import etree

from docworker.document import BlockKind, Document, DocumentBuilder, Metadata
from docworker.errors import CorruptDocument
from docworker.formats.base import ParseContext, Source
from docworker.formats.encoding import decode_text
from docworker.formats.text.xml import local, parse_xml

_TIMESTAMP = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIMESTAMP}\s*-->\s*{_TIMESTAMP}")
#: WebVTT's voice span, ``<v Name>`` or ``<v.class Name>``.
_VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]+)>")
#: Markup in cue text: tags opening with a letter or ``/`` and WebVTT's ``<00:01.000>``.
_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<\d[\d:.]*>")
#: SubRip files written by ASS tools carry override blocks such as ``{\an8}``.
_OVERRIDE = re.compile(r"\{\\[^{}]*\}")
_VTT_LANGUAGE = re.compile(r"^Language\s*:\s*(\S.*)$", re.MULTILINE)

TTML_NAMESPACES = frozenset(
    {
        "http://www.w3.org/ns/ttml",
        "http://www.w3.org/2006/10/ttaf1",
        "http://www.w3.org/2006/04/ttaf1",
    }
)
_TTML_PARAMETER = "http://www.w3.org/ns/ttml#parameter"
_TTML_METADATA = "http://www.w3.org/ns/ttml#metadata"
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_CLOCK = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)(?::(\d+(?:\.\d+)?))?$")
_OFFSET = re.compile(r"^(\d+(?:\.\d+)?)(h|ms|m|s|f|t)$")
_SPACES = re.compile(r"\s+")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass(frozen=True)
class Cue:
    """One caption: its text, when it shows (seconds), and who says it."""

    text: str
    start: float
    end: float
    speaker: str | None = None


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str | None) -> float:
    millis = int((fraction or "0").ljust(3, "0")[:3])
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + millis / 1000


def _clean_cue(lines: list[str], vtt: bool) -> tuple[str, str | None]:
    """The cue's text as shown, and its speaker (the voices of a WebVTT cue)."""
    raw = "\n".join(lines)
    voices = list(dict.fromkeys(v.strip() for v in _VOICE.findall(raw))) if vtt else []
    text = _TAG.sub("", _OVERRIDE.sub("", raw))
    if vtt:
        text = html.unescape(text)
    cleaned = [" ".join(line.split()) for line in text.split("\n")]
    return "\n".join(line for line in cleaned if line), ", ".join(voices) or None


def read_timed_text(text: str, vtt: bool) -> list[Cue]:
    """The cues of a SubRip or WebVTT text (see the module docstring)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cues: list[Cue] = []
    i = 0
    while i < len(lines):
        timing = _TIMING.match(lines[i])
        i += 1
        if timing is None:
            continue
        body: list[str] = []
        while i < len(lines) and lines[i].strip() and not _cue_starts(lines, i):
            body.append(lines[i])
            i += 1
        start = _seconds(*timing.group(1, 2, 3, 4))
        end = _seconds(*timing.group(5, 6, 7, 8))
        cue_text, speaker = _clean_cue(body, vtt)
        if cue_text:
            cues.append(Cue(cue_text, start, end, speaker))
    return cues


def _cue_starts(lines: list[str], i: int) -> bool:
    """Whether line ``i`` begins the next cue: its timing, or the identifier right before it."""
    if _TIMING.match(lines[i]):
        return True
    return i + 1 < len(lines) and _TIMING.match(lines[i + 1]) is not None


# -- TTML ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clock:
    """The frame and tick rates a TTML document's times are counted in."""

    frame_rate: float = 30.0
    tick_rate: float = 1.0

    def seconds(self, value: str | None) -> float | None:
        """A TTML time expression in seconds; None when absent or not understood."""
        if not value:
            return None
        value = value.strip()
        clock = _CLOCK.match(value)
        if clock:
            hours, minutes, seconds, frames = clock.groups()
            total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            return total + (float(frames) / self.frame_rate if frames else 0.0)
        offset = _OFFSET.match(value)
        if offset is None:
            return None
        number, unit = float(offset.group(1)), offset.group(2)
        if unit == "f":
            return number / self.frame_rate
        if unit == "t":
            return number / self.tick_rate
        return number * _UNIT_SECONDS[unit]


def _rate(root: etree._Element, name: str) -> float | None:
    try:
        value = float(root.get(f"{{{_TTML_PARAMETER}}}{name}") or "")
    except ValueError:
        return None
    return value if value > 0 else None


def _clock_of(root: etree._Element) -> _Clock:
    frame_rate = _rate(root, "frameRate")
    # Without a tick rate, TTML counts ticks in frames when a frame rate is given, else seconds.
    tick_rate = _rate(root, "tickRate") or frame_rate or 1.0
    return _Clock(frame_rate or 30.0, tick_rate)


def _agents(root: etree._Element) -> dict[str, str]:
    """TTML agents (speakers) by id: their ``ttm:name``, else the id itself."""
    agents: dict[str, str] = {}
    for agent in root.iter(f"{{{_TTML_METADATA}}}agent"):
        ident = agent.get(f"{{{_XML_NS}}}id")
        if ident:
            names = [" ".join((n.text or "").split()) for n in agent if local(n) == "name"]
            agents[ident] = next((n for n in names if n), ident)
    return agents


def _inline_text(element: etree._Element) -> str:
    """A ``p``'s text: spans inline, ``br`` a line break, other whitespace one space."""

    def gather(node: etree._Element) -> str:
        parts = [_SPACES.sub(" ", node.text or "")]
        for child in node:
            name = local(child)
            if name == "br":
                parts.append("\n")
            elif name == "span":
                parts.append(gather(child))
            parts.append(_SPACES.sub(" ", child.tail or ""))
        return "".join(parts)

    lines = [line.strip() for line in gather(element).split("\n")]
    return "\n".join(line for line in lines if line)


def _ttml_cues(
    element: etree._Element, clock: _Clock, agents: dict[str, str], begin: float, end: float | None
) -> Iterator[Cue]:
    """The cues under ``element``, whose own interval is [begin, end]."""
    for child in element:
        name = local(child)
        if name not in {"div", "p"}:
            continue
        start = begin + (clock.seconds(child.get("begin")) or 0.0)
        stop = clock.seconds(child.get("end"))
        duration = clock.seconds(child.get("dur"))
        child_end = begin + stop if stop is not None else None
        if child_end is None and duration is not None:
            child_end = start + duration
        child_end = child_end if child_end is not None else end
        if name == "div":
            yield from _ttml_cues(child, clock, agents, start, child_end)
            continue
        text = _inline_text(child)
        if text:
            agent = (child.get(f"{{{_TTML_METADATA}}}agent") or "").split()
            speaker = ", ".join(agents.get(a, a) for a in agent) or None
            yield Cue(text, start, child_end if child_end is not None else start, speaker)


def read_ttml(data: bytes) -> tuple[list[Cue], str | None]:
    """The cues of a TTML document and its language."""
    root = parse_xml(data)
    if local(root) != "tt" or etree.QName(root).namespace not in TTML_NAMESPACES:
        raise CorruptDocument("ttml", "the root element is not a TTML <tt>")
    body = next((e for e in root if local(e) == "body"), None)
    if body is None:
        return [], root.get(f"{{{_XML_NS}}}lang")
    clock = _clock_of(root)
    begin = clock.seconds(body.get("begin")) or 0.0
    end = clock.seconds(body.get("end"))
    cues = list(_ttml_cues(body, clock, _agents(root), begin, end))
    return cues, root.get(f"{{{_XML_NS}}}lang") or None


class SubtitleParser:
    """SubRip, WebVTT and TTML: one paragraph per cue, timings in ``extra["cues"]``."""

    name: ClassVar[str] = "subtitles"
    media_types: ClassVar[frozenset[str]] = frozenset(
        {"text/vtt", "application/x-subrip", "application/ttml+xml"}
    )

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        data = source.path.read_bytes()
        metadata = Metadata()
        if source.mime == "application/ttml+xml":
            cues, metadata.language = read_ttml(data)
        else:
            decoded = decode_text(data)
            metadata.encoding = decoded.encoding
            vtt = source.mime == "text/vtt"
            cues = read_timed_text(decoded.text, vtt)
            if vtt:
                metadata.language = _vtt_language(decoded.text)
        builder = DocumentBuilder(self.name, source.mime, metadata, limits=ctx.limits)
        listed: list[dict[str, object]] = []
        for index, cue in enumerate(cues, start=1):
            block = builder.add(BlockKind.PARAGRAPH, cue.text)
            if block is not None:
                listed.append(
                    {
                        "index": index,
                        "start": cue.start,
                        "end": cue.end,
                        "speaker": cue.speaker,
                        "block_id": block.id,
                    }
                )
        metadata.extra["cues"] = listed
        if cues:
            metadata.extra["duration"] = max(cue.end for cue in cues)
        else:
            builder.warn("empty", "the file holds no cue with text")
        ctx.progress(1.0, f"{len(cues)} cues")
        return builder.finish()


def _vtt_language(text: str) -> str | None:
    """The ``Language:`` field some WebVTT headers carry (before the first blank line)."""
    header = text.lstrip("\ufeff").split("\n\n", 1)[0]
    found = _VTT_LANGUAGE.search(header)
    return found.group(1).strip() if found else None
