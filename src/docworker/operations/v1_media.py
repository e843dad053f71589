"""The ``v1_media`` operation: documents-worker v1's image, document and video pipelines
(V1_API.md §5.2–§5.4), composed of the ``image``, ``render`` and ``video`` operations.

v1's media routes take a handful of loosely parsed parameters (``width``,
``height``, ``crop``, ``quality``, ``resize``, ``page``, ``format``, ``clip``) and an
engine choice; this operation turns them into the steps of the existing
operations, called in process, so each step has one implementation:

* **image** (§5.2): exactly one geometric operation, by priority ``resize``
  (percent) > ``crop`` > ``width``/``height`` (a fit inside the box, which may
  enlarge; ``width`` alone is a ``width`` × ``width`` box, ``height`` alone fits
  the height) > a plain conversion, then :func:`~docworker.operations.image.process_image`
  encodes it in ``format`` (default WebP) at ``quality``. With the ffmpeg
  semantics (``vips=false``) the scale comes first (``width`` and ``height``
  together stretch to exactly that size) and ``crop`` (``w:h:x:y``, or ``w:h``
  centred) applies after it. The ``video`` operation's FFmpeg reads video and
  audio containers only (image files and image sequences are refused by its
  format allow-list), so these semantics run on libvips too.
* **document** (§5.4): an office document is made a PDF by the worker's
  LibreOffice; ``format=pdf`` answers that PDF (a PDF upload as it is); any other
  format renders page ``page`` (default 1) at 150 dpi through the ``render``
  operation and runs the image pipeline on it. Anything else (an image) goes
  straight to the image pipeline. A page past the last is a failure.
* **video** (§5.3): the ``video`` operation's transcode to WebM, trimmed by
  ``clip`` when it splits into two parts (v1 ignored any other shape).

The parameters are checked here, in the job (v1 accepted any request and failed
the job). The output is the artifact ``output.<format>``, its extension the
``format`` asked for (lower-cased), as v1 named its output files; a video's is
``video.webm``.
"""

from __future__ import annotations

import shutil
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import Field, ValidationError

from docworker.engines.image_formats import ImageFormat
from docworker.engines.vips import read_header
from docworker.errors import InvalidParameter, ProcessingFailed
from docworker.formats.detect import detect, format_of
from docworker.operations.base import (
    Artifact,
    Engine,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    Result,
)
from docworker.operations.image import ImageParams, process_image
from docworker.operations.ocr_v1 import as_pdf
from docworker.operations.render import RenderOperation, RenderParams
from docworker.operations.video import VideoOperation
from docworker.operations.video_params import VideoParams

PDF = "application/pdf"
_Params = TypeVar("_Params", bound=OperationParams)
#: The artifact's name, without its extension.
OUTPUT_STEM = "output"
#: v1's default output extension.
DEFAULT_FORMAT = "webp"
#: v1 rendered document pages at this resolution before the image step.
DOCUMENT_DPI = 150
#: Document families made a PDF by LibreOffice (Word, Excel, PowerPoint, OpenDocument).
OFFICE_FAMILIES = frozenset(
    {"doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "odg", "rtf"}
)
#: v1 output extension → the image format written.
IMAGE_EXTENSIONS = {
    "webp": ImageFormat.WEBP,
    "jpg": ImageFormat.JPEG,
    "jpeg": ImageFormat.JPEG,
    "png": ImageFormat.PNG,
    "avif": ImageFormat.AVIF,
    "tif": ImageFormat.TIFF,
    "tiff": ImageFormat.TIFF,
    "gif": ImageFormat.GIF,
}

_WITH_QUALITY = frozenset({ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.AVIF})


class MediaKind(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"
    VIDEO = "video"


class V1MediaParams(OperationParams):
    kind: MediaKind = Field(
        MediaKind.IMAGE,
        description="image: the image pipeline; document: office → PDF → page → image; "
        "video: WebM.",
    )
    width: int | None = Field(None, description="Target width in pixels (v1's value, unchecked).")
    height: int | None = Field(None, description="Target height in pixels.")
    crop: str | None = Field(
        None,
        max_length=200,
        description="vips: 'left:top:width:height'; ffmpeg semantics: 'w:h:x:y' or 'w:h'.",
    )
    quality: int | None = Field(None, description="Encoder quality, 1-100.")
    resize: int | None = Field(None, description="Uniform scale in percent (50: half size).")
    page: int | None = Field(None, description="Document: the 1-based page rendered (default 1).")
    clip: str | None = Field(
        None,
        max_length=200,
        description="Video: 'start:duration'; any shape but two parts is ignored, as in v1.",
    )
    format: str | None = Field(
        None,
        max_length=200,
        description="Output extension: webp (default), jpg, jpeg, png, avif, tif, tiff, gif; "
        "pdf for documents.",
    )
    vips: bool = Field(
        True, description="false: ffmpeg's geometry semantics (scale, then crop 'w:h:x:y')."
    )


class V1MediaOperation:
    name: ClassVar[str] = "v1_media"
    summary: ClassVar[str] = "documents-worker v1's image and document pipelines (v1 routes)."
    queue: ClassVar[Family] = Family.MEDIA
    Params: ClassVar[type[OperationParams]] = V1MediaParams

    def engine(self, params: OperationParams, mime: str) -> Engine | None:
        """LibreOffice for an office document, which becomes a PDF first."""
        assert isinstance(params, V1MediaParams)
        office = params.kind is MediaKind.DOCUMENT and _is_office(mime)
        return Engine.LIBREOFFICE if office else None

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, V1MediaParams)
        if params.kind is MediaKind.VIDEO:
            return _video(ctx, source, params)
        extension = (params.format or DEFAULT_FORMAT).lower()
        mime = source.mime or detect(source.path, source.name).mime
        if params.kind is MediaKind.DOCUMENT and (mime == PDF or _is_office(mime)):
            artifact, payload = _document(ctx, source, mime, params, extension)
        else:
            artifact, payload = v1_image(ctx, source, params, extension)
        payload = {"kind": params.kind.value, "source_mime": mime, **payload}
        return Result(payload=payload, artifacts=[artifact])


def _video(ctx: OperationContext, source: InputFile, params: V1MediaParams) -> Result:
    """§5.3: the ``video`` operation's WebM transcode, trimmed by a two-part ``clip``; v1's
    ``format`` and image parameters do not apply. Checked here, in the job, so that a bad
    clip fails the job as v1's did rather than its submission."""
    raw: dict[str, Any] = {"action": "transcode", "format": "webm"}
    if params.clip is not None and len(params.clip.split(":")) == 2:
        raw["clip"] = params.clip
    result = VideoOperation().run(ctx, source, _validated(VideoParams, raw))
    result.payload = {"kind": params.kind.value, **result.payload}
    return result


def _is_office(mime: str) -> bool:
    return format_of(mime) in OFFICE_FAMILIES


def _document(
    ctx: OperationContext, source: InputFile, mime: str, params: V1MediaParams, extension: str
) -> tuple[Artifact, dict[str, Any]]:
    """§5.4: the document as a PDF, then that PDF, or its page through the image pipeline."""
    name = source.name or source.path.name
    with as_pdf(source.path, name, mime, ctx.convert) as (pdf, pdf_name):
        if extension == "pdf":
            target = ctx.artifact_path(f"{OUTPUT_STEM}.pdf")
            shutil.copyfile(pdf, target)
            ctx.progress(1.0, "PDF made")
            return Artifact(target.name, target, PDF), _described(target, "pdf", PDF)
        page = params.page or 1
        render = RenderParams(pages=str(page), dpi=DOCUMENT_DPI)
        rendered = RenderOperation().run(ctx, InputFile(pdf, pdf_name, PDF), render)
    if not rendered.artifacts:
        raise ProcessingFailed(f"page {page} of the document was not rendered")
    image = rendered.artifacts[0]
    artifact, payload = v1_image(
        ctx, InputFile(image.path, image.name, image.mime), params, extension
    )
    image.path.unlink(missing_ok=True)
    return artifact, payload | {"page": page, "page_count": rendered.payload["page_count"]}


def _described(path: Path, extension: str, mime: str) -> dict[str, Any]:
    return {"extension": extension, "mime": mime, "size": path.stat().st_size}


def v1_image(
    ctx: OperationContext, source: InputFile, params: V1MediaParams, extension: str
) -> tuple[Artifact, dict[str, Any]]:
    """§5.2: one geometric operation (or, with the ffmpeg semantics, a scale then a
    crop), encoded as ``extension`` by the ``image`` operation's pipeline."""
    fmt = IMAGE_EXTENSIONS.get(extension)
    if fmt is None:
        raise InvalidParameter(
            "format",
            f"'{extension}' is not an image format v1 wrote "
            f"({', '.join(IMAGE_EXTENSIONS)}; pdf for documents)",
        )
    geometry = (
        _vips_geometry(ctx, source, params)
        if params.vips
        else _ffmpeg_geometry(ctx, source, params)
    )
    # libvips' PNG, TIFF and GIF savers have no quality unless asked to quantise, which
    # v1 never asked: the quality goes to the lossy encoders only.
    quality = params.quality if fmt in _WITH_QUALITY else None
    raw: dict[str, Any] = {"format": fmt.value, "quality": quality, **geometry}
    image_params = _validated(ImageParams, raw)
    made, payload = process_image(ctx, source, image_params, OUTPUT_STEM)
    target = made.path.with_name(f"{OUTPUT_STEM}.{extension}")
    if target != made.path:
        made.path.rename(target)
    described = {"extension": extension, **{k: payload[k] for k in ("mime", "width", "height")}}
    described |= {"size": target.stat().st_size, "format": payload["format"]}
    return Artifact(target.name, target, made.mime), described


def _validated(model: type[_Params], raw: dict[str, Any]) -> _Params:
    """``raw`` as an operation's parameters; :class:`InvalidParameter` names the first fault."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise InvalidParameter(where, first["msg"]) from None


def _vips_geometry(
    ctx: OperationContext, source: InputFile, params: V1MediaParams
) -> dict[str, Any]:
    """The one geometric operation of v1's vips engine, as ``image`` parameters."""
    if params.resize is not None:
        width, height = _upright_size(ctx, source)
        scale = params.resize / 100
        return {
            "width": _scaled(width, scale, "resize"),
            "height": _scaled(height, scale, "resize"),
            "fit": "fill",
        }
    if params.crop is not None:
        left, top, width, height = _numbers(params.crop, 4, "left:top:width:height")
        box = {"mode": "box", "left": left, "top": top, "width": width, "height": height}
        return {"steps": [{"op": "crop", **box}]}
    if params.width is not None and params.height is not None:
        return {"width": params.width, "height": params.height, "fit": "inside"}
    if params.width is not None:
        # v1 fitted inside a width × width box: a portrait image ends up `width` tall.
        return {"width": params.width, "height": params.width, "fit": "inside"}
    if params.height is not None:
        return {"height": params.height, "fit": "inside"}
    return {}


def _ffmpeg_geometry(
    ctx: OperationContext, source: InputFile, params: V1MediaParams
) -> dict[str, Any]:
    """v1's ffmpeg engine: a scale (exact when both sides are given), then a crop."""
    geometry: dict[str, Any] = {}
    if params.resize is not None:
        width, height = _upright_size(ctx, source)
        scale = params.resize / 100
        geometry = {
            "width": _scaled(width, scale, "resize"),
            "height": _scaled(height, scale, "resize"),
            "fit": "fill",
        }
    elif params.width is not None and params.height is not None:
        geometry = {"width": params.width, "height": params.height, "fit": "fill"}
    elif params.width is not None or params.height is not None:
        # scale=w:-1 / -1:h: the other side from the aspect ratio.
        geometry = {"width": params.width, "height": params.height, "fit": "inside"}
    if params.crop is not None:
        geometry["steps"] = [_ffmpeg_crop(params.crop)]
    return geometry


def _ffmpeg_crop(spec: str) -> dict[str, Any]:
    """ffmpeg's ``crop=w:h:x:y`` (``w:h`` alone is centred) as a crop step."""
    parts = spec.split(":")
    if len(parts) == 2:
        width, height = _numbers(spec, 2, "w:h")
        return {"op": "crop", "mode": "centre", "width": width, "height": height}
    width, height, left, top = _numbers(spec, 4, "w:h:x:y")
    return {"op": "crop", "mode": "box", "left": left, "top": top, "width": width, "height": height}


def _numbers(spec: str, count: int, shape: str) -> list[int]:
    parts = spec.split(":")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) != count or any(n < 0 for n in numbers):
        raise InvalidParameter("crop", f"'{spec}' is not {shape} ({count} whole numbers)")
    return numbers


def _upright_size(ctx: OperationContext, source: InputFile) -> tuple[int, int]:
    header = read_header(source.path, ctx.limits.max_pixels, ctx.settings.image.max_svg_bytes)
    return header.upright_size


def _scaled(side: int, scale: float, name: str) -> int:
    value = round(side * scale)
    if value < 1:
        raise InvalidParameter(name, f"a scale of {scale * 100:g} % leaves no pixel")
    return value
