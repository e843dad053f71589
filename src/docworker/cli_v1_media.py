"""v1's media commands (§13.2): ``convert image``, ``convert pdf`` and ``thumbnail``.

Each runs an operation in this process, on local files, and copies the file it
made to the output path:

* ``convert image INPUT OUTPUT FORMAT [--width 0] [--height 0] [--quality 85]``:
  the ``v1_media`` operation's image pipeline (v1's vips engine): the bytes are in
  ``FORMAT`` whatever OUTPUT's extension; a width and/or height above 0 fits the
  image inside the box (a height alone fits the height: v1 made a 1-pixel-wide
  image there).
* ``convert pdf INPUT OUTPUT [--page-size A4] [--orientation portrait] [--url]``:
  the ``convert`` operation: HTML and Markdown laid out with 1 cm margins (by
  WeasyPrint, where v1 drove Chromium), office documents through LibreOffice
  (page size and orientation do not apply). The kind comes from the extension,
  else from the content. ``--url`` is refused, as in v1.
* ``thumbnail INPUT OUTPUT [--size 200] [--time 0]``: a WebP (quality 85) fitting
  ``size`` × ``size``: an image through the ``v1_media`` pipeline, a video's frame
  at ``--time`` seconds through the ``video`` operation (v1 took no videos and
  ignored ``--time``), a document's first page through ``render``.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from docworker.config import Settings, load_settings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import DocworkerError
from docworker.formats.detect import detect, format_of
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context
from docworker.operations.v1_media import OFFICE_FAMILIES

#: v1's ``convert pdf`` inputs, by extension.
PDF_INPUTS = {
    **dict.fromkeys((".html", ".htm"), "html"),
    **dict.fromkeys((".md", ".markdown"), "markdown"),
    **dict.fromkeys(
        (".docx", ".doc", ".xlsx", ".xls", ".pptx", ".ppt", ".odt", ".ods", ".odp"), "office"
    ),
}
#: v1's margins of HTML and Markdown pages.
_MARGINS = dict.fromkeys(("margin_top", "margin_right", "margin_bottom", "margin_left"), "1cm")
THUMBNAIL_QUALITY = 85


def v1_error(message: str) -> typer.Exit:
    """v1's failure: ``❌ Error: <message>`` on stderr, exit status 1."""
    sys.stderr.write(f"❌ Error: {message}\n")
    return typer.Exit(1)


def quiet_settings() -> Settings:
    from docworker.telemetry import configure_logging

    settings = load_settings()
    configure_logging(level="WARNING", json_logs=settings.json_logs)
    return settings


def run_to_file(
    operation: str, raw: dict[str, Any], source: InputFile, output: Path, *, office: bool = False
) -> dict[str, Any]:
    """Run ``operation`` on ``source`` here and copy the file it made to ``output``;
    LibreOffice is started (on first use) when ``office``. Failures end the command."""
    settings = quiet_settings()
    op = get_operation(operation)
    try:
        params = validate_params(op, raw)
        with tempfile.TemporaryDirectory(prefix="docworker-cli-") as workdir:
            with contextlib.ExitStack() as stack:
                convert = None
                if office:
                    engine = stack.enter_context(
                        LibreOfficeEngine(settings.libreoffice, settings.sandbox)
                    )
                    convert = engine.convert
                ctx = operation_context(settings, convert=convert, workdir=Path(workdir))
                result = op.run(ctx, source, params)
            if not result.artifacts:
                raise v1_error(f"the {operation} operation made no file")
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result.artifacts[0].path, output)
    except DocworkerError as exc:
        raise v1_error(exc.detail) from None
    except OSError as exc:
        raise v1_error(str(exc)) from None
    return result.payload


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise v1_error(f"{path}: no such file")
    return path


def convert_image(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="The image.")],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="File to write.")],
    format: Annotated[
        str, typer.Argument(metavar="FORMAT", help="webp, jpg, jpeg, png, avif, tiff, gif.")
    ],
    width: Annotated[int, typer.Option(help="Fit inside this width (0: no limit).")] = 0,
    height: Annotated[int, typer.Option(help="Fit inside this height (0: no limit).")] = 0,
    quality: Annotated[int, typer.Option(help="Encoder quality 1-100.")] = 85,
) -> None:
    """Convert an image to FORMAT, fitted inside --width × --height when given."""
    source = _existing(input_path)
    raw: dict[str, Any] = {"kind": "image", "format": format, "quality": quality}
    raw |= {k: v for k, v in (("width", width), ("height", height)) if v > 0}
    mime = detect(source, source.name).mime
    payload = run_to_file("v1_media", raw, InputFile(source, source.name, mime), output_path)
    typer.echo(
        f"✅ Image converted: {output_path} ({payload['width']}x{payload['height']}, "
        f"{payload['size']} bytes)"
    )


def _pdf_kind(path: Path) -> str:
    """html, markdown or office, from the extension, else (none) from the content."""
    suffix = path.suffix.lower()
    if suffix:
        kind = PDF_INPUTS.get(suffix)
        if kind is None:
            supported = ", ".join(PDF_INPUTS)
            raise v1_error(f"unsupported file format: {suffix} (supported: {supported})")
        return kind
    found = detect(path, path.name)
    if found.format == "html":
        return "html"
    if found.mime in {"text/plain", "text/markdown"}:
        return "markdown"
    if format_of(found.mime) in OFFICE_FAMILIES:
        return "office"
    raise v1_error(f"unsupported file type: {found.mime}")


def convert_pdf(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="HTML, Markdown or office file.")
    ],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="PDF to write.")],
    page_size: Annotated[str, typer.Option(help="A4, A3, A5, Letter, Legal, …")] = "A4",
    orientation: Annotated[str, typer.Option(help="portrait or landscape.")] = "portrait",
    url: Annotated[bool, typer.Option(help="INPUT is a URL (not supported).")] = False,
) -> None:
    """Convert HTML, Markdown or an office document to PDF."""
    if url:
        raise v1_error("URL to PDF conversion is not supported: save the page and convert the file")
    source = _existing(input_path)
    kind = _pdf_kind(source)
    raw: dict[str, Any] = {"to": "pdf"}
    name = source.name
    if kind != "office":
        raw |= {"page_size": page_size, "orientation": orientation, **_MARGINS}
        if kind == "markdown" and source.suffix.lower() not in {".md", ".markdown"}:
            name = f"{source.name or 'document'}.md"  # v1 read such text as Markdown
    payload = run_to_file(
        "convert", raw, InputFile(source, name), output_path, office=kind == "office"
    )
    pages = payload.get("output", {}).get("pages")
    typer.echo(f"✅ PDF created: {output_path} ({pages} pages)")


def thumbnail(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="Image, video or document.")],
    output_path: Annotated[Path, typer.Argument(metavar="OUTPUT", help="WebP file to write.")],
    size: Annotated[int, typer.Option(help="Side of the box the thumbnail fits in.")] = 200,
    time: Annotated[
        int, typer.Option(help="Video: the second the frame is taken at (0: a tenth in).")
    ] = 0,
) -> None:
    """A WebP thumbnail (quality 85) fitting SIZE × SIZE."""
    source = _existing(input_path)
    mime = detect(source, source.name).mime
    family = format_of(mime)
    file = InputFile(source, source.name, mime)
    if family == "image" or mime == "image/svg+xml":
        raw: dict[str, Any] = {"kind": "image", "width": size, "height": size}
        raw |= {"quality": THUMBNAIL_QUALITY, "format": "webp"}
        run_to_file("v1_media", raw, file, output_path)
    elif family == "video":
        raw = {"action": "frame", "format": "webp", "width": size, "height": size}
        raw |= {"quality": THUMBNAIL_QUALITY} | ({"time": str(time)} if time > 0 else {})
        run_to_file("video", raw, file, output_path)
    else:
        raw = {"thumbnail": True, "size": size, "format": "webp", "quality": THUMBNAIL_QUALITY}
        run_to_file("render", raw, file, output_path, office=True)
    typer.echo(f"✅ Thumbnail created: {output_path}")
