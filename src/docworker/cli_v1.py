"""documents-worker v1's command line (§13), as ``docworker`` sub-commands.

v1's CLI binary had ``extract``, ``ocr``, ``convert image``, ``convert pdf``,
``convert chunk``, ``thumbnail``, ``health``, ``stats`` and ``version``; all are
here, each a sub-command of ``docworker`` itself and of ``docworker cli`` (v1's
spelling), with v1's positional arguments, flags and defaults, working on local
files without a server: the operations (``extract``, ``ocr``, ``chunk``,
``v1_media``, ``convert``, ``render``, ``video``) run in this process. Failures
print ``❌ Error: <message>`` and exit 1, as v1 did.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from docworker import cli_v1_media
from docworker.api.v1.encoding import v1_time
from docworker.api.v1.extraction import one_line
from docworker.api.v1.health import domain_health
from docworker.api.v1.jobs import v1_counts
from docworker.chunking import V1_METHODS, Strategy
from docworker.config import Settings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import DocworkerError
from docworker.formats.detect import detect
from docworker.jobs.store import JobStore
from docworker.operations.base import InputFile, operation_context
from docworker.operations.chunk import ChunkOperation, ChunkParams
from docworker.operations.extract import ExtractOperation, ExtractParams
from docworker.operations.ocr import OcrOperation, OcrParams

cli_app = typer.Typer(
    help="documents-worker v1's commands: extract, ocr, convert image|pdf|chunk, thumbnail, "
    "health, stats, version.",
    no_args_is_help=True,
)
V1_CLI_VERSION = "1.0.0"
#: The extensions v1's ``extract`` took, by kind.
_EXTRACT_EXTENSIONS = {
    ".pdf": "pdf",
    **dict.fromkeys((".docx", ".doc", ".xlsx", ".xls", ".pptx", ".ppt"), "office"),
    **dict.fromkeys((".txt", ".md"), "text"),
}


_error = cli_v1_media.v1_error
_quiet_settings = cli_v1_media.quiet_settings


def extract_v1(input_path: Path, output_path: Path) -> None:
    """v1's ``extract <input> <output>``: the text of a PDF, office or text file, on one
    line for PDF and office files (v1's normalisation), written to ``output``."""
    kind = _EXTRACT_EXTENSIONS.get(input_path.suffix.lower())
    if kind is None:
        raise _error(f"unsupported file type: {input_path.suffix.lower()}")
    if not input_path.is_file():
        raise _error(f"{input_path}: no such file")
    settings = _quiet_settings()
    if kind == "text":
        text = input_path.read_text(encoding="utf-8", errors="replace")
    else:
        params = ExtractParams.model_validate({"output": "text"})
        with LibreOfficeEngine(settings.libreoffice, settings.sandbox) as libreoffice:
            ctx = operation_context(settings, convert=libreoffice.convert)
            try:
                payload = ExtractOperation().run(
                    ctx, InputFile(input_path, input_path.name), params
                )
            except DocworkerError as exc:
                raise _error(exc.detail) from None
        text = one_line(payload.payload["content"])
    output_path.write_text(text, encoding="utf-8")
    typer.echo(f"✅ Text extracted to {output_path} ({len(text)} characters)")


@cli_app.command("extract")
def extract(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="PDF, office or text file.")],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="Text file to write.")],
) -> None:
    """Extract the text of a document into a file."""
    extract_v1(input_path, output_path)


@cli_app.command("ocr")
def ocr(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="An image.")],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="Text file to write.")],
    lang: Annotated[str, typer.Option("--lang", help="Tesseract languages, e.g. eng+tur.")] = "eng",
) -> None:
    """Read the text of an image (v1's OCR settings) into a file."""
    if not input_path.is_file():
        raise _error(f"{input_path}: no such file")
    settings = _quiet_settings()
    params = OcrParams.model_validate({"output": "v1", "languages": lang})
    source = InputFile(input_path, input_path.name, detect(input_path).mime)
    try:
        payload = OcrOperation().run(operation_context(settings), source, params).payload
    except DocworkerError as exc:
        raise _error(exc.detail) from None
    output_path.write_text(payload["text"], encoding="utf-8")
    typer.echo(f"✅ OCR completed: {len(payload['text'])} characters written to {output_path}")


convert_app = typer.Typer(
    help="v1's conversions: image (format, size), pdf (HTML, Markdown, office), chunk.",
    no_args_is_help=True,
)
#: v1 dropped chunks shorter than this many characters.
_MIN_CHUNK_CHARS = 10


@convert_app.command("chunk")
def convert_chunk(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="The document.")],
    output_dir: Annotated[Path, typer.Argument(metavar="OUTPUT_DIR", help="Folder for chunks.")],
    method: Annotated[
        str, typer.Option(help="text, semantic (sized in tokens), recursive or smart.")
    ] = "smart",
    size: Annotated[
        int, typer.Option(help="Largest chunk (characters; tokens for semantic).")
    ] = 256,
    overlap: Annotated[
        int, typer.Option(help="Repeated from the chunk before (text, recursive, semantic).")
    ] = 20,
    pages_per_chunk: Annotated[int, typer.Option(help="Accepted, unused (as in v1).")] = 5,
    format: Annotated[str, typer.Option(help="Accepted, unused (as in v1).")] = "auto",
    preserve_formatting: Annotated[bool, typer.Option(help="Accepted, unused (as in v1).")] = True,
) -> None:
    """Split a document into chunk_001.txt, chunk_002.txt, … in OUTPUT_DIR (chunks under
    10 characters are left out, their numbers skipped, as v1 did)."""
    chosen = V1_METHODS.get(method)
    if chosen is None:
        raise _error(f"unknown chunking method: {method} (text, semantic, recursive, smart)")
    if not input_path.is_file():
        raise _error(f"{input_path}: no such file")
    raw: dict[str, Any] = {"strategy": chosen.strategy, "tokenizer": chosen.tokenizer}
    raw["max_tokens"] = size
    if chosen.strategy in {Strategy.FIXED, Strategy.RECURSIVE} and overlap:
        raw["overlap"] = overlap
    settings = _quiet_settings()
    try:
        params = ChunkParams.model_validate(raw)
        with LibreOfficeEngine(settings.libreoffice, settings.sandbox) as libreoffice:
            ctx = operation_context(settings, convert=libreoffice.convert)
            source = InputFile(input_path, input_path.name)
            chunks = ChunkOperation().run(ctx, source, params).payload["chunks"]
    except DocworkerError as exc:
        raise _error(exc.detail) from None
    except ValueError as exc:
        raise _error(str(exc).splitlines()[-1]) from None
    output_dir.mkdir(parents=True, exist_ok=True)
    kept = [(n, c["text"]) for n, c in enumerate(chunks, 1) if len(c["text"]) >= _MIN_CHUNK_CHARS]
    for number, text in kept:
        (output_dir / f"chunk_{number:03d}.txt").write_text(text, encoding="utf-8")
    total = sum(len(text) for _, text in kept)
    average = total / len(kept) if kept else 0.0
    typer.echo(f"✅ Created {len(kept)} chunks in {output_dir}")
    typer.echo(f"   Average chunk size: {average:.1f} characters")
    typer.echo(f"   Chunks kept: {len(kept)} of {len(chunks)}")


cli_app.add_typer(convert_app, name="convert")
convert_app.command("image")(cli_v1_media.convert_image)
convert_app.command("pdf")(cli_v1_media.convert_pdf)
cli_app.command("thumbnail")(cli_v1_media.thumbnail)


def _local_store(settings: Settings) -> JobStore | None:
    """The job store the settings name, or None when it is an SQLite file not made yet
    (a command line must not create one as a side effect)."""
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return JobStore(url)


@cli_app.command("health")
def health() -> None:
    """Print v1's health report of this machine (job store, cache folder, tools)."""
    settings = _quiet_settings()
    store = _local_store(settings)
    try:
        report = domain_health(store, settings)
    finally:
        if store is not None:
            store.close()
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if report["status"] == "healthy":
        typer.echo("✅ System is healthy")
    else:
        typer.echo(f"⚠️  System status: {report['status']}")


@cli_app.command("stats")
def stats() -> None:
    """Print the job counts of the job store (zeros, with a warning, when it is unreachable)."""
    settings = _quiet_settings()
    store = _local_store(settings)
    counts: dict[str, Any] = dict.fromkeys(
        ("pending_jobs", "processing_jobs", "completed_jobs", "failed_jobs", "total_jobs"), 0
    )
    if store is None:
        sys.stderr.write("⚠️  no job store here yet: the counts are zero\n")
    else:
        try:
            counts = v1_counts(store)
        except DocworkerError as exc:
            sys.stderr.write(f"⚠️  job store unavailable ({exc.detail}): the counts are zero\n")
        finally:
            store.close()
    typer.echo("📊 Queue Statistics:")
    typer.echo(f"  Pending:    {counts['pending_jobs']}")
    typer.echo(f"  Processing: {counts['processing_jobs']}")
    typer.echo(f"  Completed:  {counts['completed_jobs']}")
    typer.echo(f"  Failed:     {counts['failed_jobs']}")
    typer.echo(f"  Total:      {counts['total_jobs']}")
    typer.echo(f"  Timestamp:  {v1_time()}")


@cli_app.command("version")
def version() -> None:
    """Log the v1 CLI's version (to stderr, with a time stamp, as v1 did)."""
    stamp = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%S")
    sys.stderr.write(f"{stamp} Documents Worker CLI v{V1_CLI_VERSION}\n")


def install_v1_commands(app: typer.Typer) -> None:
    """Add v1's commands to ``app``: under ``cli``, and directly (``extract`` is the v2
    command, which takes v1's ``extract <input> <output>`` form too)."""
    app.add_typer(cli_app, name="cli")
    app.add_typer(convert_app, name="convert")
    for command in (ocr, cli_v1_media.thumbnail, health, stats, version):
        app.command(command.__name__)(command)
