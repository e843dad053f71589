"""The parser contract: what a parser is given and what it must return.

A parser turns one file of its format into a :class:`~docworker.document.Document`.
It reads the file from ``source.path``, honours what ``ctx`` asks (password, page
selection, limits, cancellation) and raises only :mod:`docworker.errors` input
errors for bad documents. Parsers never import web, database or queue code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from docworker.document import Document
from docworker.errors import InvalidParameter, LimitExceeded

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class Source:
    """A file to parse, already on local disk, with its detected type."""

    path: Path
    mime: str
    #: The name the client gave the file, used only as a hint (titles, extensions).
    name: str | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size


_RANGE = re.compile(r"^\s*(\d*)\s*(?:(-)\s*(\d*))?\s*$")


@dataclass(frozen=True)
class PageSelection:
    """Pages asked for, 1-based, as closed ranges; ``end=None`` means to the last page.

    Parsed from strings such as ``"1-3,5,9-"``.
    """

    ranges: tuple[tuple[int, int | None], ...]

    @classmethod
    def parse(cls, spec: str) -> PageSelection:
        ranges: list[tuple[int, int | None]] = []
        for part in spec.split(","):
            match = _RANGE.match(part)
            if not match or not (match.group(1) or match.group(3)):
                raise InvalidParameter("pages", f"'{part.strip()}' is not a page or page range")
            start = int(match.group(1) or 1)
            end: int | None = int(match.group(3)) if match.group(3) else None
            if not match.group(2):
                end = start
            if start < 1 or (end is not None and end < start):
                raise InvalidParameter("pages", f"'{part.strip()}' is not a valid range")
            ranges.append((start, end))
        return cls(tuple(ranges))

    def __contains__(self, page: object) -> bool:
        if not isinstance(page, int):
            return False
        return any(start <= page and (end is None or page <= end) for start, end in self.ranges)

    def pages(self, page_count: int) -> list[int]:
        """The selected pages of a document of ``page_count`` pages, in order, once each."""
        return [p for p in range(1, page_count + 1) if p in self]

    def __str__(self) -> str:
        return ",".join(
            f"{s}" if e == s else f"{s}-{'' if e is None else e}" for s, e in self.ranges
        )

    @classmethod
    def of(cls, pages: Sequence[int]) -> PageSelection:
        """The selection of exactly ``pages`` (ascending), runs written as ranges."""
        ranges: list[tuple[int, int | None]] = []
        for page in pages:
            if ranges and ranges[-1][1] == page - 1:
                ranges[-1] = (ranges[-1][0], page)
            else:
                ranges.append((page, page))
        return cls(tuple(ranges))


@dataclass(frozen=True)
class ParseLimits:
    max_pages: int = 5000
    max_cells: int = 5_000_000
    #: Pixels of one image (or one frame); more is refused as a decompression bomb.
    max_pixels: int = 100_000_000
    #: How deep embedded documents (attachments, embedded objects) are read.
    max_depth: int = 5
    #: How many embedded documents, at every depth together, are listed and read.
    max_embedded: int = 100
    #: How many bytes of embedded documents, at every depth together, are listed and read.
    max_embedded_bytes: int = 200 * 1024 * 1024
    #: Characters of text a document yields; the rest is cut (``registry.cap_text``).
    max_text_chars: int = 50_000_000
    #: Characters of text a parse may read at all, before the cut: past it the document
    #: is refused while it is read (``DocumentBuilder``), so its text never piles up.
    max_output_chars: int = 100_000_000
    #: Blocks a document may hold, embedded documents included.
    max_blocks: int = 500_000
    #: Bytes a job may store as its output (result and artifacts), counted as written.
    max_output_bytes: int = 2 * 1024 * 1024 * 1024
    #: MIME parts of one e-mail message, at every depth (attached messages' included).
    max_mime_parts: int = 3000
    #: RFC 2047 encoded words (``=?charset?q?...?=``) in one header of an e-mail message.
    max_header_encoded_words: int = 2000
    #: Columns of one Markdown table.
    max_markdown_columns: int = 1000


#: A box in the pixels of the image that was read: (x0, y0, x1, y1), top-left origin.
PixelBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrWord:
    text: str
    bbox: PixelBox
    #: Recognition confidence, 0..1.
    confidence: float


@dataclass(frozen=True)
class OcrLine:
    text: str
    bbox: PixelBox
    confidence: float
    words: tuple[OcrWord, ...]


@dataclass(frozen=True)
class OcrParagraph:
    text: str
    bbox: PixelBox
    confidence: float
    lines: tuple[OcrLine, ...]

    @property
    def words(self) -> tuple[OcrWord, ...]:
        return tuple(word for line in self.lines for word in line.words)


@dataclass(frozen=True)
class OcrPage:
    """The text an OCR engine read in one image, in reading order, with boxes.

    Boxes are in the pixels of the image given to the reader, whatever the engine
    did to it on the way (scaling, turning, deskewing), so a parser can place
    them on its page without knowing how the engine works.
    """

    width: int
    height: int
    #: Mean word confidence, 0..1 (0 when no word was found).
    confidence: float
    paragraphs: tuple[OcrParagraph, ...]
    #: The clockwise turn, in degrees (0, 90, 180, 270), that put the text upright.
    rotation_applied: int = 0
    #: The small skew the engine measured and straightened, in degrees.
    skew_degrees: float = 0.0
    #: Factor the image was scaled by before recognition.
    scale: float = 1.0

    @property
    def text(self) -> str:
        return "\n\n".join(paragraph.text for paragraph in self.paragraphs)


class OcrReader(Protocol):
    """Reads the text of an image; the operations provide one, parsers only call it."""

    def read(self, image: Image, *, languages: str | None = None, picture: bool = False) -> OcrPage:
        """The text of ``image`` (a Pillow image), in ``languages`` (``"eng+kor"``) or the
        reader's own default when None. ``picture``: the image is a picture cut out of a
        page rendered upright at the OCR resolution, to read as it is (no rescaling, no
        turning: photos are common there, and scaling one up costs seconds for nothing)."""
        ...


@dataclass(frozen=True)
class PrefetchedOcr:
    """A page read by OCR ahead of the parse (by another worker, as part of a split job)."""

    page: OcrPage
    #: The size of one pixel of the image that was read, in PDF points.
    points_per_pixel: float


#: When to run OCR: on what has no usable text ("auto"), on everything ("force"), never.
OcrPolicy = Literal["auto", "force", "off"]

#: What of a web page is read: all its visible text ("full"), or only its article ("main").
HtmlContent = Literal["full", "main"]


@dataclass(frozen=True)
class MixedPageOcr:
    """Which pictures on a page with a usable text layer are read by OCR as well (``auto``).

    A picture qualifies when it is large enough and the text layer leaves it
    mostly bare: a pasted scan, a screenshot of text. Pictures that touch make
    one (a figure drawn in strips).
    """

    #: Smallest share of the page's area a picture must cover.
    min_share: float = 0.02
    #: Shortest side, in points, a picture must have.
    min_side: float = 20.0
    #: Largest share of a picture's area the text layer's lines may cover: more, and
    #: the text layer already holds its text (a scan with its OCR layer, a background).
    max_text_cover: float = 0.15
    #: OCR paragraphs read with a lower mean word confidence are dropped (a photo's noise).
    min_confidence: float = 0.6
    #: Most pictures read on one page, the largest first.
    max_images: int = 8


@dataclass
class ParseContext:
    """What a parse may be asked for, and how it reports back."""

    password: str | None = None
    pages: PageSelection | None = None
    limits: ParseLimits = field(default_factory=ParseLimits)
    #: False when only the text is wanted: a parser may then skip costly structure
    #: analysis (headings from font sizes, table finding) and emit plain paragraphs.
    structure: bool = True
    #: Whether each sheet of a spreadsheet opens with a heading of its name. Without
    #: them the name is still the page's label and listed in the metadata.
    sheet_names: bool = True
    #: Converts a file to another format through an external engine (LibreOffice):
    #: ``convert(path, "docx")`` returns the converted file's path; the file is the
    #: caller's, to delete once read. None where no such engine runs; parsers that
    #: need it then refuse the document clearly.
    convert: Callable[[Path, str], Path] | None = None
    #: Reads text from images (scans, photos, image-only pages). None where no OCR
    #: engine runs: image text is then skipped with a warning.
    ocr: OcrReader | None = None
    ocr_policy: OcrPolicy = "auto"
    #: Tesseract languages, e.g. ``"eng+kor"``; None for the reader's default.
    ocr_languages: str | None = None
    #: The resolution, in dots per inch, pages are rendered at to be read by OCR.
    ocr_dpi: int = 300
    #: Pages already read by OCR, by number, used instead of reading them again; a page
    #: mapped to None could not be read and is left without its OCR text.
    ocr_pages: Mapping[int, PrefetchedOcr | None] | None = None
    #: What of an HTML page (a web page, an e-mail's HTML body, an EPUB chapter) is read:
    #: all its visible text, or only its main content, without the site around it.
    html_content: HtmlContent = "full"
    #: Pictures with text on pages that have a text layer, read by OCR under ``auto``.
    mixed_pages: MixedPageOcr = field(default_factory=MixedPageOcr)
    #: Called with (fraction done 0..1, message); never raises.
    progress: Callable[[float, str], None] = lambda _fraction, _message: None
    #: Returns True once the work should stop.
    cancelled: Callable[[], bool] = lambda: False
    #: How deep in embedded documents this parse is: 0 for the file itself.
    depth: int = 0

    def wants(self, page: int) -> bool:
        return self.pages is None or page in self.pages

    def select_pages(self, page_count: int) -> list[int]:
        """The pages to parse out of ``page_count``, checked against the page limit; a
        selection that names none of them is refused (an empty answer would look like a
        document without text)."""
        chosen = (
            list(range(1, page_count + 1)) if self.pages is None else self.pages.pages(page_count)
        )
        if self.pages is not None and not chosen:
            raise InvalidParameter(
                "pages", f"'{self.pages}' selects none of its {page_count} pages"
            )
        if len(chosen) > self.limits.max_pages:
            raise LimitExceeded("pages", len(chosen), self.limits.max_pages)
        return chosen

    def each_page(self, numbers: Iterable[int], total: int) -> Iterator[int]:
        """Yield page numbers, reporting progress and stopping once cancelled."""
        chosen = list(numbers)
        for done, number in enumerate(chosen):
            if self.cancelled():
                return
            yield number
            self.progress((done + 1) / max(len(chosen), 1), f"page {number} of {total}")


class Parser(Protocol):
    """One format family: the media types it reads and how to read them."""

    #: A short name for the family, e.g. ``"pdf"``.
    name: ClassVar[str]
    media_types: ClassVar[frozenset[str]]

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        """Read ``source`` into a Document, or raise a :class:`~docworker.errors.InputError`."""
        ...
