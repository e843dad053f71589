"""The extractors the benchmarks compare, each a function from a file to its text.

Ours are called in-process exactly as the service calls them (detection, the
format's parser, a renderer); raw pypdfium2 is the ceiling a PDF text extractor
built on it can reach; MarkItDown is the peer re-measured in the same run when
it is installed (``scripts/bench`` installs it from ``requirements-bench.lock``).
Loading every module happens in :func:`warm_up`, so timings leave imports out.
"""

from __future__ import annotations

import atexit
import warnings
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium

from docworker.config import load_settings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.formats.base import ParseContext
from docworker.formats.registry import parse_path
from docworker.operations.base import InputFile, operation_context
from docworker.operations.extract import ExtractOperation, ExtractParams
from docworker.render.document import render_markdown, render_text

Extractor = Callable[[Path], str]


def docworker_text(path: Path) -> str:
    """Our plain-text extraction: no structure analysis, the text renderer."""
    return render_text(parse_path(path, ParseContext(structure=False)))


def docworker_markdown(path: Path) -> str:
    """Our default extraction: structure analysis on, the Markdown renderer."""
    return render_markdown(parse_path(path, ParseContext()))


@cache
def _libreoffice() -> LibreOfficeEngine:
    engine = LibreOfficeEngine(load_settings().libreoffice)
    atexit.register(engine.stop)
    return engine


def extract_payload(path: Path, params: ExtractParams | None = None) -> dict[str, Any]:
    """The ``extract`` operation's payload exactly as a job makes it: the service's settings,
    OCR where a page or image has no text layer, LibreOffice for legacy Office files."""
    ctx = operation_context(load_settings(), convert=_libreoffice().convert)
    source = InputFile(path=path, name=path.name)
    return ExtractOperation().run(ctx, source, params or ExtractParams()).payload


def docworker_service(path: Path) -> str:
    """The ``extract`` operation as a job runs it (:func:`extract_payload`), Markdown."""
    content: str = extract_payload(path)["content"]
    return content


def pypdfium2_text(path: Path) -> str:
    """Every page's text layer as pdfium gives it, with nothing done to it."""
    document = pdfium.PdfDocument(str(path))
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(texts)
    finally:
        document.close()


def pdf_page_count(path: Path) -> int:
    document = pdfium.PdfDocument(str(path))
    try:
        return len(document)
    finally:
        document.close()


def markitdown_extractor() -> Extractor | None:
    """MarkItDown's default conversion, or None when it is not installed."""
    # Its audio converter warns at import that ffmpeg is missing; nothing here uses it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from markitdown import MarkItDown
        except ImportError:
            return None
    converter = MarkItDown()

    def convert(path: Path) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(converter.convert(str(path)).text_content)

    return convert


def warm_up(extractor: Extractor, paths: Iterable[Path]) -> dict[Path, str]:
    """Run ``extractor`` once on each path so lazy imports happen before any timing.

    Returns the error message of each file that failed (such files are left
    out of the timed set, for every tool alike).
    """
    failures: dict[Path, str] = {}
    for path in paths:
        try:
            extractor(path)
        except Exception as exc:  # noqa: BLE001 - a failure is a figure here, not a crash
            failures[path] = f"{type(exc).__name__}: {exc}"
    return failures
