"""The ``image`` operation: resize, crop, rotate, filter, watermark and convert images,
on libvips, with an automatic choice of format and quality.

One request is a chain: the shortcut resize (``width``/``height``/``fit``), decoded
at a reduced size where the format allows (shrink-on-load), then ``steps`` in
order, then the colour profile (to sRGB), the metadata policy and the encoder.
When nothing in the chain needs random access, the image streams from the file
to the output top to bottom, in bounded memory, whatever its size; the pixel
limit is checked from the header before anything is decoded.

Multi-frame input (animated GIF or WebP, multi-page TIFF, HEIF sequences) stays
animated when the output format can hold an animation (GIF, WebP) and ``frame``
is not given; each frame goes through the chain. Otherwise ``frame`` (1-based,
default 1) is the one processed.

The output is the artifact ``image.<suffix>``; the payload describes it (format,
size, dimensions, quality) and, with ``max_bytes`` or ``min_ssim``, what the
automatic search tried and chose (:mod:`docworker.operations.image_auto`).

The job's further input files are watermark images (the ``watermark`` step); with
``batch`` they are instead more images, each through the same chain to its own
artifact, and a large batch is split into runs of files processed on several
workers at once (:class:`~docworker.operations.base.Splittable`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, ClassVar

from pydantic import Field, model_validator

from docworker.engines.image_formats import ImageFormat
from docworker.engines.vips import (
    DEFAULT_QUALITY,
    drop_gps,
    encode,
    load,
    pyvips,
    read_header,
    shrink_on_load,
    to_srgb,
    vips_errors,
)
from docworker.engines.vips import Header as ImageHeader
from docworker.errors import InputError, InvalidParameter, LimitExceeded
from docworker.formats.base import PageSelection
from docworker.operations.base import (
    Artifact,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    PagesParam,
    PartResult,
    Result,
    SplitPart,
    SplitPlan,
    merge_errors,
)
from docworker.operations.image_auto import AutoSearch, luma
from docworker.operations.image_steps import (
    Colour,
    Fit,
    ImageWatermarkStep,
    Interest,
    Plan,
    Step,
    StepEnv,
    finish_resize,
    resize_plan,
)
from docworker.operations.ocr_parts import failed_parts


class MetadataPolicy(StrEnum):
    #: EXIF, XMP, IPTC and the ICC profile are written as read (after the chain).
    KEEP = "keep"
    #: Nothing but pixels (and no colour profile: sRGB is assumed).
    STRIP = "strip"
    #: Everything kept except the GPS position (EXIF GPS, XMP that holds one).
    STRIP_GPS = "strip_gps"


class OutputChoice(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    AVIF = "avif"
    TIFF = "tiff"
    GIF = "gif"
    #: The automatic search over ``formats`` (implied by max_bytes or min_ssim).
    AUTO = "auto"


#: The output format when none is asked for: the input's, where it can be written.
_SAME_AS_INPUT = {
    "jpeg": ImageFormat.JPEG,
    "png": ImageFormat.PNG,
    "webp": ImageFormat.WEBP,
    "tiff": ImageFormat.TIFF,
    "gif": ImageFormat.GIF,
    "avif": ImageFormat.AVIF,
    "heic": ImageFormat.JPEG,
    "svg": ImageFormat.PNG,
}
_AUTO_FORMATS = [ImageFormat.WEBP, ImageFormat.AVIF, ImageFormat.JPEG]
_AUTO_ALPHA_FORMATS = [ImageFormat.WEBP, ImageFormat.AVIF, ImageFormat.PNG]


class ImageParams(OperationParams):
    width: int | None = Field(None, ge=1, le=100_000, description="Resize: box width (px).")
    height: int | None = Field(None, ge=1, le=100_000, description="Resize: box height (px).")
    fit: Fit = Field(
        Fit.INSIDE,
        description="How the image meets the width × height box: contain (fit inside, "
        "padded to the box), cover (fill the box, overflow cropped), fill (stretched), "
        "inside (fit inside, no padding), outside (cover the box, nothing cropped).",
    )
    no_upscale: bool = Field(False, description="Never enlarge the image.")
    position: Interest = Field(
        Interest.CENTRE, description="What fit=cover keeps: centre, attention or entropy."
    )
    background: Colour = Field("#000000", description="What fit=contain pads with.")
    steps: list[Step] = Field(
        default_factory=list,
        max_length=50,
        description="More steps, applied in order after the resize above: resize, crop, "
        "rotate, flip, flop, grayscale, blur, sharpen, adjust, gamma, tint, text, watermark.",
    )
    auto_orient: bool = Field(True, description="Turn the image upright by its EXIF orientation.")
    frame: int | None = Field(
        None, ge=1, description="The frame or page of a multi-frame image to process (1-based)."
    )
    format: OutputChoice | None = Field(
        None,
        description="jpeg, png, webp, avif, tiff, gif, or auto; default: the input's "
        "(HEIC → JPEG, SVG → PNG), or auto with max_bytes or min_ssim.",
    )
    quality: int | None = Field(
        None,
        ge=1,
        le=100,
        description="1–100. JPEG, WebP, AVIF, TIFF (JPEG-compressed): lossy quality; "
        "PNG: palette quantisation at that quality; GIF: fewer colours below 100.",
    )
    effort: int | None = Field(
        None,
        ge=0,
        le=10,
        description="Encoder effort, on each format's scale (clamped): WebP 0–6, AVIF 0–9, "
        "PNG/TIFF compression 0–9, GIF 1–10, JPEG 0–1 (trellis quantisation).",
    )
    lossless: bool = Field(False, description="WebP, AVIF: lossless; PNG, TIFF: no palette.")
    metadata: MetadataPolicy = Field(
        MetadataPolicy.STRIP_GPS, description="keep, strip, or strip_gps (the default)."
    )
    srgb: bool = Field(True, description="Convert colours to sRGB (through the ICC profile).")
    max_bytes: int | None = Field(
        None,
        ge=100,
        description="Automatic quality: the output's largest size in bytes. The quality "
        "is searched (and the format too, unless 'format' names one).",
    )
    min_ssim: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Automatic quality: the least SSIM (0–1) against the image before "
        "encoding. The quality is searched (and the format too, unless 'format' names one).",
    )
    formats: list[ImageFormat] | None = Field(
        None,
        min_length=1,
        description="Automatic format: the formats tried (default webp, avif, jpeg; "
        "webp, avif, png for images with transparency).",
    )

    batch: bool = Field(
        False,
        description="Process every input file (the first and the others) the same way: "
        "one output each, the artifacts '<n>-<name>.<suffix>'. A large batch is split "
        "into parts that run on several workers at once.",
    )
    files: PagesParam = Field(
        None, description="Batch: which input files to process, 1-based ('1-3,5'); default all."
    )

    @model_validator(mode="after")
    def _auto_needs_a_target(self) -> ImageParams:
        if self.format is OutputChoice.AUTO and self.max_bytes is None and self.min_ssim is None:
            raise ValueError("format=auto needs max_bytes or min_ssim")
        if self.format not in {None, OutputChoice.AUTO} and self.formats:
            raise ValueError("give the format searched as 'format' or 'formats', not both")
        if self.batch and any(isinstance(step, ImageWatermarkStep) for step in self.steps):
            raise ValueError("a batch takes no watermark image: every file is one to process")
        return self

    @property
    def auto(self) -> bool:
        """Whether the quality (and, unless ``format`` names one, the format) is searched."""
        return self.max_bytes is not None or self.min_ssim is not None

    def candidates(self, has_alpha: bool) -> list[ImageFormat]:
        """The formats the automatic search tries."""
        if self.format not in {None, OutputChoice.AUTO}:
            return [ImageFormat(self.format)]
        return self.formats or (_AUTO_ALPHA_FORMATS if has_alpha else _AUTO_FORMATS)


class ImageOperation:
    name: ClassVar[str] = "image"
    summary: ClassVar[str] = (
        "Resize, crop, rotate, filter, watermark and convert images; automatic format."
    )
    # Short CPU-bound jobs like a warm conversion, beside the pages → images renderer;
    # not behind long video transcodes on "media".
    queue: ClassVar[Family] = Family.MEDIA
    Params: ClassVar[type[OperationParams]] = ImageParams

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, ImageParams)
        if params.batch:
            return _run_batch(ctx, source, params)
        if source.others and not any(isinstance(s, ImageWatermarkStep) for s in params.steps):
            raise InvalidParameter(
                "file",
                f"{1 + len(source.others)} files were given: further files are watermark "
                "images (a 'watermark' step) or, with batch=true, images to process",
            )
        artifact, payload = process_image(ctx, source, params, "image")
        return Result(payload=payload, artifacts=[artifact])

    def split(
        self, ctx: OperationContext, source: InputFile, params: OperationParams, plan: SplitPlan
    ) -> list[SplitPart] | None:
        """A batch's files in runs, processed on several workers at once."""
        assert isinstance(params, ImageParams)
        if not params.batch:
            return None
        ranges = plan.page_ranges(_batch_numbers(source, params))
        return [SplitPart({"files": files}) for files in ranges] if ranges else None

    def merge(
        self,
        ctx: OperationContext,
        source: InputFile,
        params: OperationParams,
        parts: list[PartResult],
    ) -> Result:
        """The batch's images and artifacts from its parts', in file order."""
        failed_parts(parts)
        images: list[dict[str, Any]] = []
        artifacts: list[Artifact] = []
        for part in parts:
            for image in (part.payload or {}).get("images", []):
                images.append(image)
                name = image["artifact"]
                artifacts.append(Artifact(name, part.artifacts[name], image["mime"]))
        payload = {"batch": True, "files": 1 + len(source.others), "images": images}
        return Result(payload=payload, errors=merge_errors(parts), artifacts=artifacts)


def _batch_numbers(source: InputFile, params: ImageParams) -> list[int]:
    count = 1 + len(source.others)
    return (
        PageSelection.parse(params.files).pages(count) if params.files else [*range(1, count + 1)]
    )


def _run_batch(ctx: OperationContext, source: InputFile, params: ImageParams) -> Result:
    """Each selected input file through the chain; a file that fails is an error item
    (the job is then partial) unless every file fails."""
    files = [source, *source.others]
    numbers = _batch_numbers(source, params)
    images: list[dict[str, Any]] = []
    artifacts: list[Artifact] = []
    failures: list[InputError] = []
    errors: list[dict[str, Any]] = []
    for done, number in enumerate(numbers):
        file = replace(files[number - 1], others=())
        try:
            artifact, payload = process_image(ctx, file, params, _batch_stem(number, file.name))
        except InputError as exc:
            failures.append(exc)
            errors.append({**exc.to_dict(), "file": number, "name": file.name})
            continue
        finally:
            ctx.progress((done + 1) / len(numbers), f"image {done + 1} of {len(numbers)}")
        artifacts.append(artifact)
        images.append({"file": number, "name": file.name, "artifact": artifact.name, **payload})
    if failures and not images:
        raise failures[0]
    payload = {"batch": True, "files": len(files), "images": images}
    return Result(payload=payload, errors=errors, artifacts=artifacts)


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _batch_stem(number: int, name: str | None) -> str:
    """``001-holiday`` for file 1, ``holiday.jpg``: a plain file name, whatever was given."""
    stem = _UNSAFE.sub("_", PurePosixPath(name or "image").stem).strip("_")[:60]
    return f"{number:03d}-{stem or 'image'}"


def process_image(
    ctx: OperationContext, source: InputFile, params: ImageParams, stem: str
) -> tuple[Artifact, dict[str, Any]]:
    """Run the chain on one input; the output as the artifact ``<stem>.<suffix>``."""
    settings = ctx.settings.image
    header = read_header(source.path, ctx.limits.max_pixels, settings.max_svg_bytes)
    fmt = _output_format(params, header)
    frames = _frames(params, header, fmt, settings.max_frames, ctx.limits.max_pixels)
    image = _decoded(header, params, frames, ctx.limits.max_pixels)
    ctx.progress(0.1, "decoding")
    env = StepEnv(settings.font_file, _watermarks(ctx, source), ctx.limits.max_pixels)
    with vips_errors("image"):
        image = _each_frame(image, lambda frame: _chain(frame, params, env))
        strip = params.metadata is MetadataPolicy.STRIP
        if params.metadata is MetadataPolicy.STRIP_GPS:
            image = drop_gps(image)
    auto: dict[str, Any] | None = None
    quality = params.quality
    if params.auto:
        # Encoded many times: decoded and processed once, into memory.
        image = image.copy_memory()
        fmt, quality, auto = _auto(image, params, header, settings.score_size, strip)
    if quality is None and fmt in DEFAULT_QUALITY and not params.lossless:
        quality = DEFAULT_QUALITY[fmt]
    target = ctx.artifact_path(f"{stem}.{fmt.suffix}")
    ctx.progress(0.5, "encoding")
    encode(
        _for_format(image, fmt),
        fmt,
        quality=quality,
        effort=params.effort,
        lossless=params.lossless,
        strip=strip,
        target=target,
    )
    payload = _payload(header, image, fmt, quality, target.stat().st_size, params)
    if auto is not None:
        payload["auto"] = auto
    return Artifact(target.name, target, fmt.mime), payload


def _watermarks(ctx: OperationContext, source: InputFile) -> Callable[[int], pyvips.Image]:
    """Loads the job's further input files as watermark images, each once, when asked."""
    loaded: dict[int, pyvips.Image] = {}

    def watermark(number: int) -> pyvips.Image:
        if number not in loaded:
            if number - 2 >= len(source.others):
                raise InvalidParameter(
                    "steps.watermark.input",
                    f"file {number} is the watermark, but {1 + len(source.others)} were given",
                )
            settings = ctx.settings.image
            path = source.others[number - 2].path
            header = read_header(path, ctx.limits.max_pixels, settings.max_svg_bytes)
            image = load(header, access="random", frames=None)
            with vips_errors(header.format):
                image = to_srgb(image)
                loaded[number] = image.autorot() if header.orientation != 1 else image
        return loaded[number]

    return watermark


def _output_format(params: ImageParams, header: ImageHeader) -> ImageFormat:
    if params.auto:
        # Settled by the search; this is the format the chain is prepared for.
        return params.candidates(header.has_alpha)[0]
    if params.format is not None:
        return ImageFormat(params.format)
    return _SAME_AS_INPUT[header.format]


def _frames(
    params: ImageParams, header: ImageHeader, fmt: ImageFormat, max_frames: int, max_pixels: int
) -> tuple[int, int] | None:
    """(first frame, count) to load; None: the only or first frame."""
    if params.frame is not None:
        if params.frame > header.pages:
            raise LimitExceeded(
                "frame",
                params.frame,
                header.pages,
                detail=f"frame {params.frame} asked for; the image has {header.pages}",
            )
        return params.frame - 1, 1
    if header.pages > 1 and fmt.animated and not params.auto:
        if header.pages > max_frames:
            raise LimitExceeded("frames", header.pages, max_frames)
        # The animation's encoder holds every frame: all of them count against the limit.
        total = header.width * header.height * header.pages
        if total > max_pixels:
            raise LimitExceeded(
                "animation pixels",
                total,
                max_pixels,
                detail=f"the animation's {header.pages} frames hold {total} pixels, over the "
                f"limit of {max_pixels}: take one with 'frame'",
            )
        return 0, -1
    return None


def _decoded(
    header: ImageHeader, params: ImageParams, frames: tuple[int, int] | None, max_pixels: int
) -> pyvips.Image:
    """The input, lazily: shrunk on load by the shortcut resize when there is one, else
    streamed (sequential) unless the chain or the orientation needs random access."""
    animated = frames is not None and frames[1] == -1
    auto_orient = params.auto_orient and not animated
    plan = _shortcut_plan(params, header, auto_orient, max_pixels)
    if plan is not None:
        width, height = plan.scaled
        image = shrink_on_load(header, width, height, frames=frames, auto_orient=auto_orient)
        if params.srgb:
            image = to_srgb(image)
        image = _each_frame(
            image, lambda frame: finish_resize(frame, plan, params.position, params.background)
        )
        # Shrinking streams the file; steps that need random access get the (small)
        # shrunk image in memory.
        random = any(step.random_access() for step in params.steps)
        return image.copy_memory() if random else image
    turn = auto_orient and header.orientation != 1
    random = turn or animated or any(step.random_access() for step in params.steps)
    image = load(header, access="random" if random else "sequential", frames=frames)
    with vips_errors(header.format):
        if params.srgb:
            image = to_srgb(image)
        return image.autorot() if turn else image


def _shortcut_plan(
    params: ImageParams, header: ImageHeader, auto_orient: bool, max_pixels: int
) -> Plan | None:
    if params.width is None and params.height is None:
        return None
    size = header.upright_size if auto_orient else (header.width, header.height)
    fit, no_upscale = params.fit, params.no_upscale
    return resize_plan(size, params.width, params.height, fit, no_upscale, max_pixels)


def _chain(image: pyvips.Image, params: ImageParams, env: StepEnv) -> pyvips.Image:
    for step in params.steps:
        image = step.apply(image, env)
    return image


def _each_frame(
    image: pyvips.Image, change: Callable[[pyvips.Image], pyvips.Image]
) -> pyvips.Image:
    """``change`` applied to each frame of an animation (a strip of frames), or to the image."""
    fields = image.get_fields()
    page_height = int(image.get("page-height")) if "page-height" in fields else image.height
    count = image.height // page_height if page_height else 1
    if count <= 1 or image.height % page_height:
        return change(image)
    frames = [
        change(image.crop(0, index * page_height, image.width, page_height))
        for index in range(count)
    ]
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    return joined


def _auto(
    image: pyvips.Image, params: ImageParams, header: ImageHeader, score_size: int, strip: bool
) -> tuple[ImageFormat, int, dict[str, Any]]:
    """The format and quality the search chose, and what it tried."""
    formats = params.candidates(header.has_alpha)

    def encoded(fmt: ImageFormat, quality: int) -> bytes:
        data = encode(
            _for_format(image, fmt),
            fmt,
            quality=quality,
            effort=params.effort,
            lossless=False,
            strip=strip,
        )
        assert data is not None
        return data

    search = AutoSearch(
        encode=encoded,
        reference=luma(image, score_size),
        score_size=score_size,
        min_ssim=params.min_ssim,
        max_bytes=params.max_bytes,
        trials={},
    )
    chosen = search.run(formats)
    described = chosen.as_dict() | {
        "min_ssim": params.min_ssim,
        "max_bytes": params.max_bytes,
        "tried": [trial.as_dict() for trial in search.trials.values()],
    }
    return chosen.format, chosen.quality, described


def _for_format(image: pyvips.Image, fmt: ImageFormat) -> pyvips.Image:
    """``image`` laid on white for a format without transparency (JPEG)."""
    if fmt.alpha or not image.hasalpha():
        return image
    with vips_errors("image"):
        return image.flatten(background=[255.0] * (image.bands - 1))


def _payload(
    header: ImageHeader,
    image: pyvips.Image,
    fmt: ImageFormat,
    quality: int | None,
    size: int,
    params: ImageParams,
) -> dict[str, Any]:
    fields = image.get_fields()
    page_height = int(image.get("page-height")) if "page-height" in fields else image.height
    return {
        "format": fmt.value,
        "mime": fmt.mime,
        "width": image.width,
        "height": page_height,
        "frames": max(1, image.height // page_height) if page_height else 1,
        "size": size,
        "quality": quality,
        "metadata": params.metadata.value,
        "input": {
            "format": header.format,
            "width": header.width,
            "height": header.height,
            "frames": header.pages,
            "orientation": header.orientation,
        },
    }
