"""The ``screenshot`` operation: a web page rendered by Chromium, scripts run, as an image.

The input is an HTML file, a Markdown file or a zip of a page and its assets
(:mod:`docworker.operations.web_input`); the page is loaded in the worker's warm
headless Chromium (:mod:`docworker.engines.chromium`), which loads nothing from
the disk outside the page's folder and nothing remote unless the URL policy
allows it. The image (PNG, JPEG or WebP; the whole page, the viewport, or one
element) is the artifact ``screenshot.<format>``; the payload gives its size,
the page's title and the requests that were refused.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from docworker.engines.chromium import (
    Media,
    PageFormat,
    ScreenshotOptions,
    WaitOptions,
    WaitUntil,
    screenshot,
)
from docworker.errors import InvalidParameter, figure
from docworker.operations.base import (
    Artifact,
    Engine,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    Result,
)
from docworker.operations.web_input import prepare_page

#: JPEG and WebP quality when none is asked for.
DEFAULT_QUALITY = 90


def artifact_name(fmt: PageFormat) -> str:
    """The artifact's file name for an image in ``fmt``."""
    return f"screenshot.{fmt.value}"


class ScreenshotParams(OperationParams):
    format: PageFormat = Field(PageFormat.PNG, description="png, jpeg or webp.")
    quality: int | None = Field(
        None, ge=1, le=100, description=f"JPEG and WebP quality (default {DEFAULT_QUALITY})."
    )
    width: int = Field(
        1280, ge=16, le=16384, description="Viewport width, CSS pixels (at most the setting)."
    )
    height: int = Field(
        800, ge=16, le=16384, description="Viewport height, CSS pixels (at most the setting)."
    )
    full_page: bool = Field(
        True, description="The whole page (cut at the height limit), or only the viewport."
    )
    scale: float = Field(
        1.0, ge=0.1, le=4.0, description="Device scale factor: image pixels per CSS pixel."
    )
    selector: str | None = Field(
        None,
        max_length=1000,
        description="Capture only the first element this CSS selector matches.",
    )
    omit_background: bool = Field(
        False, description="PNG and WebP: transparent where the page paints no background."
    )
    wait_until: WaitUntil = Field(
        WaitUntil.LOAD,
        description="When the page counts as loaded: domcontentloaded, load, or networkidle "
        "(no request for 0.5 s after the load).",
    )
    wait_delay: float = Field(
        0.0, ge=0, le=60, description="Seconds to wait after the page is loaded (animations)."
    )
    wait_selector: str | None = Field(
        None, max_length=1000, description="Wait until an element matches this CSS selector."
    )
    extra_css: str | None = Field(
        None, max_length=100_000, description="A style sheet added to the page before capture."
    )
    media: Media = Field(
        Media.SCREEN, description="The CSS media type the page is laid out for: screen or print."
    )


class ScreenshotOperation:
    name: ClassVar[str] = "screenshot"
    summary: ClassVar[str] = (
        "An image of a web page (HTML, Markdown or a zipped site), scripts run."
    )
    queue: ClassVar[Family] = Family.CONVERT
    Params: ClassVar[type[OperationParams]] = ScreenshotParams

    def engine(self, params: OperationParams, mime: str) -> Engine | None:
        """Chromium, always."""
        return Engine.CHROMIUM

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, ScreenshotParams)
        settings = ctx.settings.chromium
        if params.wait_delay >= settings.timeout:
            raise InvalidParameter(
                "wait_delay",
                f"must be shorter than the render limit of {figure(settings.timeout)} s",
            )
        folder, page = prepare_page(ctx, source, ctx.settings.site)
        name = artifact_name(params.format)
        options = ScreenshotOptions(
            format=params.format,
            quality=params.quality or DEFAULT_QUALITY,
            width=params.width,
            height=params.height,
            full_page=params.full_page,
            scale=params.scale,
            selector=params.selector or None,
            omit_background=params.omit_background,
            max_pixels=ctx.limits.max_pixels,
            extra_css=params.extra_css or None,
            media=params.media,
        )
        wait = WaitOptions(
            until=params.wait_until, delay=params.wait_delay, selector=params.wait_selector or None
        )
        ctx.progress(0.1, "rendering the page")
        info = screenshot(
            page,
            ctx.artifact_path(name),
            settings=settings,
            policy=ctx.url_policy,
            root=folder,
            options=options,
            wait=wait,
            sandbox=ctx.settings.sandbox,
        )
        payload = {
            "format": params.format.value,
            "mime": info.mime,
            "width": info.width,
            "height": info.height,
            "truncated": info.truncated,
            "title": info.title,
            "artifact": name,
            "requests": info.requests,
        }
        return Result(payload, artifacts=[Artifact(name, info.path, info.mime)])
