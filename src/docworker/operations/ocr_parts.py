"""Splitting OCR across workers: page ranges as child jobs, and their results merged.

OCR costs seconds a page, so a long scan is cut into page ranges that run as
``ocr`` jobs on every worker at once (see :class:`~docworker.operations.base.Splittable`).
The ``ocr`` operation merges its parts into the payload one job would have made;
``extract`` hands its parts' pages to the parser (:func:`prefetched_pages`), which
then lays them out as if it had read them itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pypdfium2
from PIL import Image

from docworker.errors import ProcessingFailed, error_from_dict
from docworker.formats.base import (
    OcrLine,
    OcrPage,
    OcrParagraph,
    OcrWord,
    PageSelection,
    PixelBox,
    PrefetchedOcr,
)
from docworker.formats.pdf.raster import POINTS_PER_INCH
from docworker.operations.base import PartResult

PDF = "application/pdf"


def page_count(path: Path, mime: str, password: str | None) -> int | None:
    """Pages of a PDF or frames of an image, cheaply; None when it cannot be told (the
    job then runs whole, and reports what is wrong with the file itself)."""
    try:
        if mime == PDF:
            pdf = pypdfium2.PdfDocument(str(path), password=password)
            try:
                return len(pdf)
            finally:
                pdf.close()
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except (pypdfium2.PdfiumError, OSError, ValueError, Image.DecompressionBombError):
        return None


def selected_pages(total: int, pages: str | None) -> list[int]:
    return PageSelection.parse(pages).pages(total) if pages else list(range(1, total + 1))


def failed_parts(parts: list[PartResult]) -> None:
    """Raise the first part's error when no part gave a result: the job failed as they did."""
    if parts and not any(part.ok for part in parts):
        first = next((p.error for p in parts if p.error), None)
        if first is not None:
            raise error_from_dict(first)
        raise ProcessingFailed(f"every part of the job ended {parts[0].status}")


# -- OCR results read back from a part's JSON payload ------------------------------------


def _box(raw: Sequence[float]) -> PixelBox:
    x0, y0, x1, y1 = (float(v) for v in raw)
    return (x0, y0, x1, y1)


def ocr_page_from_json(page: dict[str, Any]) -> OcrPage:
    """The :class:`OcrPage` an ``ocr`` payload page (``output="json"``) describes."""
    paragraphs = tuple(
        OcrParagraph(
            text=paragraph["text"],
            bbox=_box(paragraph["bbox"]),
            confidence=float(paragraph["confidence"]),
            lines=tuple(
                OcrLine(
                    text=line["text"],
                    bbox=_box(line["bbox"]),
                    confidence=float(line["confidence"]),
                    words=tuple(
                        OcrWord(word["text"], _box(word["bbox"]), float(word["confidence"]))
                        for word in line["words"]
                    ),
                )
                for line in paragraph["lines"]
            ),
        )
        for paragraph in page.get("paragraphs") or []
    )
    return OcrPage(
        width=int(page["width"]),
        height=int(page["height"]),
        confidence=float(page["confidence"]),
        paragraphs=paragraphs,
        rotation_applied=int(page.get("rotation_applied") or 0),
        skew_degrees=float(page.get("skew_degrees") or 0.0),
        scale=float(page.get("scale") or 1.0),
    )


def prefetched_pages(parts: list[PartResult]) -> dict[int, PrefetchedOcr | None]:
    """Page number → what the parts read there; None for the pages of a part that failed,
    which are not read again."""
    pages: dict[int, PrefetchedOcr | None] = {}
    for part in parts:
        if part.payload is None:
            selection = part.params.get("pages")
            if selection:
                # The part's selection is explicit ("3-5,7"), never open-ended.
                for start, end in PageSelection.parse(selection).ranges:
                    for number in range(start, (end or start) + 1):
                        pages[number] = None
            continue
        for page in part.payload.get("pages") or []:
            dpi = float(page.get("dpi") or 0) or None
            points = POINTS_PER_INCH / dpi if dpi else 1.0
            pages[int(page["page"])] = PrefetchedOcr(ocr_page_from_json(page), points)
    return pages


def join_pdfs(paths: Sequence[Path], target: Path) -> None:
    """Write the pages of the PDFs at ``paths``, in order, as one PDF at ``target``."""
    joined = pypdfium2.PdfDocument.new()
    try:
        for path in paths:
            part = pypdfium2.PdfDocument(str(path))
            try:
                joined.import_pages(part)
            finally:
                part.close()
        joined.save(str(target))
    finally:
        joined.close()
