"""The steps of the ``image`` operation's chain: one pydantic model per step, each with
the libvips work it does on one frame.

A request's ``steps`` is a list of these, told apart by ``op`` (a discriminated
union), applied in order. Each step says whether it needs random access to the
pixels (a vertical flip reads the bottom rows first); when none does, the image
is streamed from the file top to bottom and never held whole in memory.
"""

from __future__ import annotations

import html
import re
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from docworker.engines.vips import pyvips, vips_errors
from docworker.errors import InvalidParameter, LimitExceeded

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")

#: A colour as '#rrggbb' or '#rrggbbaa'.
Colour = Annotated[str, Field(pattern=_HEX.pattern, examples=["#ffffff", "#00000080"])]


def rgba(colour: str) -> list[float]:
    """'#rrggbb[aa]' → [r, g, b, a] (0–255)."""
    found = _HEX.match(colour)
    if found is None:
        raise ValueError(f"{colour!r} is not a colour '#rrggbb' or '#rrggbbaa'")
    digits = found.group(1) + (found.group(2) or "ff")
    return [float(int(digits[i : i + 2], 16)) for i in range(0, 8, 2)]


class Fit(StrEnum):
    """How a resized image meets the box ``width`` × ``height``."""

    #: Within the box, aspect kept, then padded with ``background`` to the box's size.
    CONTAIN = "contain"
    #: Covers the box, aspect kept, the overflow cropped (where ``position`` says).
    COVER = "cover"
    #: Stretched to the box exactly.
    FILL = "fill"
    #: Within the box, aspect kept, no padding: at most the box.
    INSIDE = "inside"
    #: Covers the box, aspect kept, nothing cropped: at least the box.
    OUTSIDE = "outside"


class Interest(StrEnum):
    """Which part of the image a crop keeps."""

    CENTRE = "centre"
    #: Skin tones, saturated colours and edges (libvips' attention strategy).
    ATTENTION = "attention"
    #: The busiest region (highest entropy).
    ENTROPY = "entropy"


class Position(StrEnum):
    CENTRE = "centre"
    NORTH = "north"
    SOUTH = "south"
    EAST = "east"
    WEST = "west"
    NORTH_EAST = "north-east"
    NORTH_WEST = "north-west"
    SOUTH_EAST = "south-east"
    SOUTH_WEST = "south-west"


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def random_access(self) -> bool:
        """Whether the step reads pixels out of top-to-bottom order."""
        return False

    @abstractmethod
    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        """The image with this step done (every step model says how)."""


@dataclass(frozen=True)
class Plan:
    """A resize worked out: scale to ``scaled``, then crop or pad to ``box``."""

    scaled: tuple[int, int]
    box: tuple[int, int]


def resize_plan(
    size: tuple[int, int],
    width: int | None,
    height: int | None,
    fit: Fit,
    no_upscale: bool,
    max_pixels: int,
) -> Plan:
    """Where a ``size`` image goes for a ``width`` × ``height`` box (one may be None: then
    the other decides, aspect kept). ``no_upscale`` caps every scale at 1; a box larger
    than the image is then cropped no further (cover) and still padded to (contain).
    A result of more than ``max_pixels`` is refused before anything is made."""
    w, h = size
    box_w = width or max(1, round(w * (height or h) / h))
    box_h = height or max(1, round(h * box_w / w))
    sx, sy = box_w / w, box_h / h
    if fit is not Fit.FILL:
        sx = sy = min(sx, sy) if fit in {Fit.CONTAIN, Fit.INSIDE} else max(sx, sy)
    if no_upscale:
        sx, sy = min(sx, 1.0), min(sy, 1.0)
    scaled = (max(1, round(w * sx)), max(1, round(h * sy)))
    largest = max(scaled[0] * scaled[1], box_w * box_h)
    if largest > max_pixels:
        raise LimitExceeded("output pixels", largest, max_pixels)
    if fit is Fit.COVER:
        box = (min(box_w, scaled[0]), min(box_h, scaled[1]))
    elif fit is Fit.CONTAIN:
        box = (box_w, box_h)
    else:
        box = scaled
    return Plan(scaled, box)


def finish_resize(
    image: pyvips.Image, plan: Plan, interest: Interest, background: str
) -> pyvips.Image:
    """Crop (cover) or pad (contain) an image already scaled to ``plan.scaled``."""
    box_w, box_h = plan.box
    if (image.width, image.height) == plan.box:
        return image
    if image.width >= box_w and image.height >= box_h:
        if interest is Interest.CENTRE:
            left, top = (image.width - box_w) // 2, (image.height - box_h) // 2
            return image.crop(left, top, box_w, box_h)
        # Scored over the whole (already scaled) image: in memory, not streamed.
        return image.copy_memory().smartcrop(box_w, box_h, interesting=interest.value)
    image = _with_background_bands(image, background)
    fill = _band_values(image, background)
    x, y = (box_w - image.width) // 2, (box_h - image.height) // 2
    return image.embed(x, y, box_w, box_h, extend="background", background=fill)


def _with_background_bands(image: pyvips.Image, colour: str) -> pyvips.Image:
    """``image`` with an alpha band when ``colour`` is not opaque (to pad with it)."""
    if rgba(colour)[3] < 255 and not image.hasalpha():
        return image.bandjoin(255)
    return image


def _band_values(image: pyvips.Image, colour: str) -> list[float]:
    """``colour`` as values for each band of ``image`` (grey images take its luminance)."""
    r, g, b, a = rgba(colour)
    colours = [r, g, b] if image.bands >= 3 else [0.2126 * r + 0.7152 * g + 0.0722 * b]
    if image.hasalpha():
        colours.append(a)
    return colours[: image.bands] + [0.0] * (image.bands - len(colours))


class ResizeStep(_Step):
    op: Literal["resize"] = "resize"
    width: int | None = Field(None, ge=1, le=100_000, description="Box width in pixels.")
    height: int | None = Field(None, ge=1, le=100_000, description="Box height in pixels.")
    fit: Fit = Field(Fit.INSIDE, description="contain, cover, fill, inside or outside.")
    no_upscale: bool = Field(False, description="Never enlarge the image.")
    position: Interest = Field(Interest.CENTRE, description="What cover keeps when it crops.")
    background: Colour = Field("#000000", description="What contain pads with.")

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        if self.width is None and self.height is None:
            return image
        size = (image.width, image.height)
        plan = resize_plan(size, self.width, self.height, self.fit, self.no_upscale, env.max_pixels)
        with vips_errors("image"):
            if plan.scaled != (image.width, image.height):
                image = image.thumbnail_image(
                    plan.scaled[0], height=plan.scaled[1], size="force", no_rotate=True
                )
            return finish_resize(image, plan, self.position, self.background)


class CropStep(_Step):
    op: Literal["crop"] = "crop"
    mode: Literal["box", "centre", "attention", "entropy"] = Field(
        "box",
        description="box: the rectangle left/top/width/height; centre, attention, entropy: "
        "a width × height region chosen that way.",
    )
    left: int = Field(0, ge=0, description="box: left edge in pixels.")
    top: int = Field(0, ge=0, description="box: top edge in pixels.")
    width: int = Field(ge=1, le=100_000)
    height: int = Field(ge=1, le=100_000)

    def random_access(self) -> bool:
        return self.mode in {"attention", "entropy"}

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        width, height = min(self.width, image.width), min(self.height, image.height)
        with vips_errors("image"):
            if self.mode == "centre":
                left, top = (image.width - width) // 2, (image.height - height) // 2
                return image.crop(left, top, width, height)
            if self.mode != "box":
                return image.copy_memory().smartcrop(width, height, interesting=self.mode)
            if self.left >= image.width or self.top >= image.height:
                raise InvalidParameter("steps.crop", "the box lies outside the image")
            width = min(width, image.width - self.left)
            height = min(height, image.height - self.top)
            return image.crop(self.left, self.top, width, height)


class RotateStep(_Step):
    op: Literal["rotate"] = "rotate"
    angle: float = Field(ge=-360, le=360, description="Degrees clockwise.")
    background: Colour = Field(
        "#000000", description="What fills the corners of an angle that is not a right angle."
    )

    def random_access(self) -> bool:
        return self.angle % 360 != 0

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        angle = self.angle % 360
        with vips_errors("image"):
            if angle in {90, 180, 270}:
                # Right angles move pixels, nothing is resampled: no loss.
                return image.rot(f"d{int(angle)}")
            if angle == 0:
                return image
            image = _with_background_bands(image, self.background)
            return image.rotate(angle, background=_band_values(image, self.background))


class FlipStep(_Step):
    op: Literal["flip", "flop"] = "flip"
    axis: Literal["horizontal", "vertical"] | None = Field(
        None,
        description="horizontal: mirror left–right; vertical: top–bottom. Default, by the "
        "usual names: 'flip' mirrors top–bottom, 'flop' left–right.",
    )

    @property
    def vertical(self) -> bool:
        return self.axis == "vertical" if self.axis else self.op == "flip"

    def random_access(self) -> bool:
        return self.vertical

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        with vips_errors("image"):
            return image.flipver() if self.vertical else image.fliphor()


class GrayscaleStep(_Step):
    op: Literal["grayscale"] = "grayscale"

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        with vips_errors("image"):
            return image.colourspace("b-w")


class BlurStep(_Step):
    op: Literal["blur"] = "blur"
    sigma: float = Field(2.0, ge=0.3, le=100, description="Gaussian blur radius (sigma).")

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        with vips_errors("image"):
            return image.gaussblur(self.sigma).cast(image.format)


class SharpenStep(_Step):
    op: Literal["sharpen"] = "sharpen"
    sigma: float = Field(1.0, ge=0.3, le=10, description="Radius of the sharpening.")

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        with vips_errors("image"):
            return image.sharpen(sigma=self.sigma)


def _colour_bands(
    image: pyvips.Image, change: Callable[[pyvips.Image], pyvips.Image]
) -> pyvips.Image:
    """``change`` applied to the colour bands, the alpha band kept as it was."""
    if image.hasalpha():
        colour, alpha = image.extract_band(0, n=image.bands - 1), image[image.bands - 1]
        return change(colour).cast(image.format).bandjoin(alpha)
    return change(image).cast(image.format)


class AdjustStep(_Step):
    op: Literal["adjust"] = "adjust"
    brightness: float = Field(1.0, ge=0, le=10, description="Multiplier; 1 leaves it.")
    contrast: float = Field(1.0, ge=0, le=10, description="Multiplier around mid-grey.")
    saturation: float = Field(1.0, ge=0, le=10, description="Chroma multiplier; 0 is grey.")

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        with vips_errors("image"):
            return _colour_bands(image, self._adjust)

    def _adjust(self, colour: pyvips.Image) -> pyvips.Image:
        interpretation = colour.interpretation
        if self.saturation != 1.0 and colour.bands >= 3:
            lch = colour.colourspace("lch")
            colour = (lch * [1.0, self.saturation, 1.0]).colourspace(interpretation)
        if self.contrast != 1.0 or self.brightness != 1.0:
            middle = 32768.0 if interpretation in {"rgb16", "grey16"} else 128.0
            scale = self.contrast * self.brightness
            colour = colour.linear(scale, (middle - middle * self.contrast) * self.brightness)
        return colour


class GammaStep(_Step):
    op: Literal["gamma"] = "gamma"
    gamma: float = Field(
        2.2, ge=0.1, le=10, description="Each value becomes value^(1/gamma): above 1 lightens."
    )

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        with vips_errors("image"):
            return _colour_bands(image, lambda colour: colour.gamma(exponent=self.gamma))


class TintStep(_Step):
    op: Literal["tint"] = "tint"
    colour: Colour = Field(description="The image keeps its lightness and takes this hue.")

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        r, g, b, _ = rgba(self.colour)
        with vips_errors("image"):
            tone = (
                pyvips.Image.black(1, 1)
                .new_from_image([r, g, b])
                .cast("uchar")
                .copy(interpretation="srgb")
            )
            _, a, b_ = tone.colourspace("lab").getpoint(0, 0)

            def tinted(colour: pyvips.Image) -> pyvips.Image:
                lightness = colour.colourspace("lab")[0]
                return lightness.bandjoin([a, b_]).copy(interpretation="lab").colourspace("srgb")

            return _colour_bands(image, tinted)


class TextWatermarkStep(_Step):
    op: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=500, description="The text to write.")
    position: Position = Field(Position.SOUTH_EAST, description="Where it goes.")
    opacity: float = Field(0.5, ge=0, le=1)
    size: int | None = Field(
        None, ge=4, le=2000, description="Letter height in pixels; default 5% of the image."
    )
    colour: Colour = "#ffffff"
    margin: int | None = Field(None, ge=0, description="Pixels from the edge; default: size/2.")

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        size = self.size or max(8, round(min(image.width, image.height) * 0.05))
        margin = size // 2 if self.margin is None else self.margin
        with vips_errors("watermark text"):
            mask = pyvips.Image.text(
                html.escape(self.text),
                font=f"DejaVu Sans {size}px",
                fontfile=str(env.font_file),
                width=max(image.width - 2 * margin, 1),
                dpi=72,
            )
            r, g, b, a = rgba(self.colour)
            layer = (mask.new_from_image([r, g, b]).copy(interpretation="srgb")).bandjoin(
                mask * (self.opacity * a / 255)
            )
            return overlay(image, layer.cast("uchar"), self.position, margin)


class ImageWatermarkStep(_Step):
    op: Literal["watermark"] = "watermark"
    input: int = Field(
        2,
        ge=2,
        description="Which of the job's input files is the watermark: 2 is the second.",
    )
    position: Position = Field(Position.SOUTH_EAST, description="Where it goes.")
    opacity: float = Field(0.5, ge=0, le=1)
    width: float = Field(
        0.25, gt=0, le=1, description="Its width as a fraction of the image's width."
    )
    margin: int | None = Field(None, ge=0, description="Pixels from the edge; default 2%.")

    def apply(self, image: pyvips.Image, env: StepEnv) -> pyvips.Image:
        mark = env.watermark(self.input)
        margin = (
            round(min(image.width, image.height) * 0.02) if self.margin is None else (self.margin)
        )
        with vips_errors("watermark image"):
            width = max(1, round(image.width * self.width))
            height = max(1, round(mark.height * width / mark.width))
            mark = mark.thumbnail_image(width, height=height, size="force", no_rotate=True)
            if mark.bands < 3:
                mark = mark.colourspace("srgb")
            if not mark.hasalpha():
                mark = mark.bandjoin(255)
            layer = mark.extract_band(0, n=3).bandjoin(mark[3] * self.opacity).cast("uchar")
            return overlay(image, layer, self.position, margin)


def overlay(
    image: pyvips.Image, layer: pyvips.Image, position: Position, margin: int
) -> pyvips.Image:
    """``layer`` (sRGB with alpha) drawn over ``image`` at ``position``, ``margin`` in."""
    x, y = place(position, (image.width, image.height), (layer.width, layer.height), margin)
    had_alpha = image.hasalpha()
    if image.bands < 3:
        image = image.colourspace("srgb")
    drawn = image.composite2(layer, "over", x=x, y=y).cast(image.format)
    # Drawing over gives the image an alpha band; one that had none stays opaque.
    return drawn if had_alpha else drawn.extract_band(0, n=drawn.bands - 1)


def place(
    position: Position, outer: tuple[int, int], inner: tuple[int, int], margin: int
) -> tuple[int, int]:
    """Top-left corner of an ``inner`` box put at ``position`` in ``outer``."""
    (width, height), (w, h) = outer, inner
    name = position.value
    x = margin if "west" in name else width - w - margin if "east" in name else (width - w) // 2
    y = margin if "north" in name else height - h - margin if "south" in name else (height - h) // 2
    return x, y


@dataclass(frozen=True)
class StepEnv:
    """What steps need beyond the image: the watermark font, and the job's other input
    files as images (``watermark(2)``: the second file, decoded, upright, in sRGB)."""

    font_file: Path
    watermark: Callable[[int], pyvips.Image]
    #: The most pixels an image made by a step may have.
    max_pixels: int


Step = Annotated[
    ResizeStep
    | CropStep
    | RotateStep
    | FlipStep
    | GrayscaleStep
    | BlurStep
    | SharpenStep
    | AdjustStep
    | GammaStep
    | TintStep
    | TextWatermarkStep
    | ImageWatermarkStep,
    Field(discriminator="op"),
]
