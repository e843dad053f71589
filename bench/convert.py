"""Office → PDF throughput: the warm, supervised LibreOffice against one ``soffice
--convert-to`` process per file; and which DOCX writer is truer to its input.

``python -m bench.convert [--rounds 2] [--skip-speed] [--skip-html] [--skip-docx]``

* **speed**: every office file of the corpus that opens without a password
  (Word, Excel, PowerPoint, OpenDocument, RTF; legacy and OOXML) converted to PDF,
  one at a time, in the same run: by :class:`~docworker.engines.libreoffice.LibreOfficeEngine`
  (started before the clock, as a worker's engine is warm after its first job) and
  by ``soffice --headless --convert-to pdf`` started once per file (on a profile
  made before the clock, so the first-start set-up is not counted against it).
  Files per second of each, the median over ``--rounds``, and the ratio (goal ≥ 3).
* **html**: the HTML and Markdown files of the corpus's ``web/`` laid out as PDF by
  WeasyPrint, files per second (Chromium beside it once its engine is installed).
* **docx**: documents converted to DOCX both ways — the python-docx writer from the
  document model and a LibreOffice round trip (the input opened by LibreOffice and
  stored as DOCX) — and the text extracted back from each output scored against the
  input's own extraction (token-F1, :mod:`bench.scoring`). A path that cannot
  convert a file scores 0 for it.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.scoring import corpus_root, score, token_f1
from docworker.config import LibreOfficeSettings, Settings
from docworker.document import Document
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import DocworkerError
from docworker.formats.base import ParseContext
from docworker.formats.detect import detect
from docworker.formats.encoding import decode_text
from docworker.formats.registry import parse_path
from docworker.render.document import render_text
from docworker.render.docx import write_docx
from docworker.render.html_pdf import PageSetup, html_to_pdf, markdown_to_html
from docworker.url_policy import UrlPolicy

GOAL = 3.0
_OFFICE_FORMATS = frozenset(
    {"doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf"}
)
#: Inputs of the DOCX comparison: office text documents, and documents LibreOffice
#: can open that are not office files.
_DOCX_INPUTS = (
    "office/word-sample.docx",
    "office/word-tables.docx",
    "office/handbook-1p.docx",
    "office/legacy-word.doc",
    "office/text-document.odt",
    "office/tika-test.rtf",
    "web/wiki-duck.html",
    "web/table-rowspan.html",
    "web/wiki.md",
    "office/poetry.epub",
    "pdf/multi-page-article.pdf",
)
_COLD_TIMEOUT = 120.0


def office_files(root: Path) -> list[Path]:
    """The corpus's office files that open without a password, by content."""
    found = []
    for path in sorted((root / "office").iterdir()):
        if "encrypted" in path.name or not path.is_file():
            continue
        if detect(path).format in _OFFICE_FORMATS:
            found.append(path)
    return found


def _timed(run: Callable[[Path], None], files: list[Path]) -> float:
    started = time.perf_counter()
    for path in files:
        run(path)
    return time.perf_counter() - started


def _cold(soffice: str, profile: Path, out: Path) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        subprocess.run(
            [
                soffice,
                "--headless",
                "--norestore",
                f"-env:UserInstallation={profile.as_uri()}",
                "--convert-to",
                "pdf",
                "--outdir",
                str(out),
                str(path),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_COLD_TIMEOUT,
            start_new_session=True,
        )
        (out / f"{path.stem}.pdf").unlink()

    return run


def speed(files: list[Path], rounds: int) -> None:
    settings = LibreOfficeSettings(idle_shutdown=0)
    soffice = shutil.which(settings.soffice_path) or settings.soffice_path
    with (
        LibreOfficeEngine(settings) as engine,
        tempfile.TemporaryDirectory(prefix="bench-convert-") as scratch,
    ):

        def warm(path: Path) -> None:
            engine.convert(path, "pdf").unlink()

        cold = _cold(soffice, Path(scratch) / "profile", Path(scratch))
        warm(files[0])  # starts the instance
        cold(files[0])  # makes the cold runs' profile
        warm_times, cold_times = [], []
        for _ in range(rounds):
            warm_times.append(_timed(warm, files))
            cold_times.append(_timed(cold, files))
    warm_rate = len(files) / statistics.median(warm_times)
    cold_rate = len(files) / statistics.median(cold_times)
    print(f"office → PDF, {len(files)} corpus files, median of {rounds} rounds")
    print(f"  warm LibreOffice (supervised engine) {warm_rate:7.2f} files/s")
    print(f"  soffice --convert-to, one per file   {cold_rate:7.2f} files/s")
    ratio = warm_rate / cold_rate
    print(f"  ratio {ratio:.2f}× (goal ≥ {GOAL:g}×: {'met' if ratio >= GOAL else 'NOT met'})")


@dataclass(frozen=True)
class Fidelity:
    """How true a DOCX output is to its input: text token-F1, structure F1 (the
    multiset of block kinds with their levels: headings, list items, tables, ...) and
    the pictures the DOCX holds."""

    text: float
    structure: float
    pictures: int

    @classmethod
    def failed(cls) -> Fidelity:
        return cls(0.0, 0.0, 0)

    def row(self) -> str:
        return f"{self.text:6.3f} {self.structure:6.3f} {self.pictures:4d}"


def _document(path: Path, engine: LibreOfficeEngine) -> Document:
    return parse_path(path, ParseContext(convert=engine.convert))


def _shape(doc: Document) -> Counter[str]:
    return Counter(f"{block.kind.value}:{block.level or 0}" for block in doc.blocks)


def _fidelity(output: Path, source: Document, engine: LibreOfficeEngine) -> Fidelity:
    made = _document(output, engine)
    with zipfile.ZipFile(output) as zf:
        pictures = sum(1 for name in zf.namelist() if name.startswith("word/media/"))
    return Fidelity(
        text=score(render_text(made), "txt", render_text(source), "txt"),
        structure=token_f1(_shape(made), _shape(source)),
        pictures=pictures,
    )


def _round_trip(source: Path, scratch: Path, engine: LibreOfficeEngine) -> Path | None:
    named = scratch / f"input{source.suffix}"
    shutil.copyfile(source, named)
    try:
        return engine.convert(named, "docx")
    except DocworkerError:
        return None


def docx_fidelity(root: Path) -> None:
    print("\nDOCX output against the input's extraction: text F1, structure F1, pictures")
    print(f"  {'file':30} {'model writer':>18}   {'LibreOffice round trip':>22}")
    rows: dict[str, list[Fidelity]] = {"writer": [], "libreoffice": []}
    with (
        LibreOfficeEngine(Settings().libreoffice) as engine,
        tempfile.TemporaryDirectory(prefix="bench-docx-") as scratch,
    ):
        for name in _DOCX_INPUTS:
            source = _document(root / name, engine)
            target = Path(scratch) / "model.docx"
            write_docx(source, target)
            writer = _fidelity(target, source, engine)
            converted = _round_trip(root / name, Path(scratch), engine)
            office = (
                Fidelity.failed() if converted is None else _fidelity(converted, source, engine)
            )
            if converted is not None:
                converted.unlink()
            rows["writer"].append(writer)
            rows["libreoffice"].append(office)
            print(f"  {name:30} {writer.row():>18}   {office.row():>22}")
    for key, label in (("writer", "model writer"), ("libreoffice", "LibreOffice")):
        found = rows[key]
        text = statistics.mean(f.text for f in found)
        structure = statistics.mean(f.structure for f in found)
        print(f"  mean, {label:14} text {text:.3f}  structure {structure:.3f}")


def html_speed(root: Path, rounds: int) -> None:
    """HTML and Markdown corpus files laid out by WeasyPrint, files per second."""
    files = sorted(
        path
        for path in (root / "web").iterdir()
        if path.suffix in {".html", ".md"} and ".expected" not in path.name
    )
    with tempfile.TemporaryDirectory(prefix="bench-html-") as scratch:
        target = Path(scratch) / "out.pdf"

        def lay_out(path: Path) -> None:
            text = decode_text(path.read_bytes()).text
            markup = markdown_to_html(text) if path.suffix == ".md" else text
            html_to_pdf(markup, Path(scratch), PageSetup(), UrlPolicy(), target)

        lay_out(files[0])  # imports and font set-up before the clock
        times = [_timed(lay_out, files) for _ in range(rounds)]
    rate = len(files) / statistics.median(times)
    print(f"\nHTML/Markdown → PDF, {len(files)} corpus files, median of {rounds} rounds")
    print(f"  WeasyPrint {rate:7.2f} files/s")
    chromium = importlib.util.find_spec("docworker.engines.chromium") is not None
    print(f"  Chromium   {'not measured here' if chromium else 'engine not available'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-docx", action="store_true")
    parser.add_argument("--skip-html", action="store_true")
    args = parser.parse_args()
    root = corpus_root()
    if not args.skip_speed:
        speed(office_files(root), args.rounds)
    if not args.skip_html:
        html_speed(root, args.rounds)
    if not args.skip_docx:
        docx_fidelity(root)


if __name__ == "__main__":
    main()
