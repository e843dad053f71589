"""The ``video`` operation's parameters: actions, formats, times, sizes and bit rates.

Times are read the way FFmpeg reads durations — seconds (``5``, ``2.5``), with a
unit (``1500ms``, ``2s``, ``250000us``) or as a clock (``[HH:]MM:SS[.mmm]``) — and
kept as seconds, so the operation can check them against the input before FFmpeg
runs. ``clip`` is documents-worker v1's ``start:duration`` (each part colon-free);
it becomes ``start`` and ``duration`` once read.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from docworker.errors import InvalidParameter
from docworker.operations.base import OperationParams

_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")
_SECONDS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(s|ms|us)?")
_BITRATE = re.compile(r"(\d+(?:\.\d*)?)([kKmM]?)(?:bps|b)?")
_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6, None: 1.0}


def parse_time(value: object) -> float | None:
    """Seconds from a number or an FFmpeg duration ('2.5', '1500ms', '01:02.5')."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        clock = _CLOCK.fullmatch(text)
        plain = _SECONDS.fullmatch(text)
        if clock:
            hours, minutes, secs = clock.groups()
            if (int(minutes) >= 60 and hours is not None) or float(secs) >= 60:
                raise ValueError(f"'{text}' is not a valid clock time")
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
        elif plain:
            seconds = float(plain.group(1)) * _UNIT[plain.group(2)]
        else:
            raise ValueError(
                f"'{text}' is not a time: give seconds ('2.5'), a unit ('1500ms') "
                "or a clock ('00:01:02.5')"
            )
    if not 0 <= seconds < 10**7:
        raise ValueError(f"{seconds:g} s is out of range")
    return seconds


def parse_bitrate(value: object) -> int | None:
    """Bits per second from a number or '800k', '2M', '1.5Mbps'."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        rate = value
    else:
        match = _BITRATE.fullmatch(str(value).strip())
        if match is None:
            raise ValueError(f"'{value}' is not a bit rate (e.g. 800k, 2M, 500000)")
        scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]
        rate = int(float(match.group(1)) * scale)
    if not 8_000 <= rate <= 500_000_000:
        raise ValueError(f"{rate} bit/s is out of range (8k to 500M)")
    return rate


def check_stretch(start: float | None, duration: float | None, end: float | None) -> None:
    """A stretch is ``start`` with ``duration`` or ``end``, ending after it begins."""
    if duration is not None and end is not None:
        raise InvalidParameter("end", "give duration or end, not both")
    if end is not None and end <= (start or 0):
        raise InvalidParameter("end", "must come after start")
    if duration is not None and duration <= 0:
        raise InvalidParameter("duration", "must be more than 0")


#: Seconds, or a string FFmpeg reads as a duration; stored as seconds.
TimeParam = Annotated[
    float | None,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}, {"type": "null"}]}
    ),
]
#: Bits per second, or a string such as '800k'; stored as bits per second.
BitrateParam = Annotated[
    int | None,
    BeforeValidator(parse_bitrate),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
]


class VideoAction(StrEnum):
    PROBE = "probe"
    TRANSCODE = "transcode"
    FRAME = "frame"
    SCENES = "scenes"
    THUMBNAILS = "thumbnails"
    PREVIEW = "preview"
    SUBTITLES = "subtitles"
    ANALYTICS = "analytics"
    CONCAT = "concat"


class VideoCodec(StrEnum):
    VP9 = "vp9"
    VP8 = "vp8"
    H264 = "h264"


#: Output formats per action, the first one the default; aliases map to a name here.
VIDEO_FORMATS = ("webm", "mp4", "hls")
IMAGE_FORMATS = ("png", "jpeg", "webp")
ANIMATION_FORMATS = ("webp", "gif")
SUBTITLE_FORMATS = ("vtt", "srt")
_FORMAT_ALIASES = {"jpg": "jpeg"}
#: The codecs a container takes; the first is its default.
CODECS = {
    "webm": (VideoCodec.VP9, VideoCodec.VP8),
    "mp4": (VideoCodec.H264,),
    "hls": (VideoCodec.H264,),
}


class VideoParams(OperationParams):
    action: VideoAction = Field(
        VideoAction.TRANSCODE,
        description="probe: what the file holds (JSON); transcode: a new video file; "
        "frame: one frame as an image; scenes: the shots, each with its times and a "
        "keyframe image; thumbnails: frames spaced evenly and a contact sheet; preview: "
        "a few seconds as an animated WebP or GIF; subtitles: an embedded subtitle stream "
        "as WebVTT or SubRip; analytics: scenes, motion, black and frozen stretches, "
        "loudness and silences, text on keyframes, and a timeline chart; concat: the "
        "inputs one after another as one video.",
    )
    format: str | None = Field(
        None,
        description="transcode: webm (default), mp4 or hls (a playlist and its segments); "
        "frame: png (default), jpeg or webp; "
        "scenes, thumbnails: the images' format, jpeg (default), png or webp; preview: "
        "webp (default) or gif; subtitles: vtt (default) or srt.",
    )
    video_codec: VideoCodec | None = Field(
        None,
        description="webm: vp9 (default, with Opus audio) or vp8 (with Vorbis audio); "
        "mp4: h264 (with AAC audio).",
    )
    width: int | None = Field(
        None, ge=2, le=16384, description="Fit the picture to this width; aspect ratio kept."
    )
    height: int | None = Field(
        None, ge=2, le=16384, description="Fit the picture to this height; aspect ratio kept."
    )
    clip: str | None = Field(
        None,
        max_length=64,
        description="v1's trim: 'start:duration', each part seconds or a colon-free "
        "FFmpeg time ('5:2.5', '1500ms:3s'). Not with start, duration or end.",
        examples=["5:2.5"],
    )
    start: TimeParam = Field(
        None, description="transcode, scenes: where the stretch worked on begins."
    )
    duration: TimeParam = Field(None, description="transcode, scenes: how long the stretch lasts.")
    end: TimeParam = Field(
        None, description="transcode, scenes: where the stretch ends (not with duration)."
    )
    crf: int | None = Field(
        None,
        ge=0,
        le=63,
        description="Constant quality: lower is better and larger (VP8/VP9 0–63, "
        "default 32 / 10; H.264 0–51, default 23).",
    )
    max_bitrate: BitrateParam = Field(
        None, description="Cap on the video bit rate, e.g. '2M', '800k' (bits per second)."
    )
    audio_bitrate: BitrateParam = Field(
        None, description="Audio bit rate, e.g. '128k' (default: 96k Opus, 128k AAC/Vorbis)."
    )
    mute: bool = Field(False, description="transcode: leave the audio out.")
    max_fps: float | None = Field(
        None,
        ge=1,
        le=240,
        description="transcode: cap on the frame rate; a video above it drops frames to "
        "it, one below keeps its own.",
    )
    time: TimeParam = Field(None, description="frame: the time of the frame.")
    percent: float | None = Field(
        None,
        ge=0,
        le=100,
        description="frame: the time of the frame as a percentage of the duration "
        "(default: 10, as first frames are often black).",
    )
    quality: int | None = Field(
        None, ge=1, le=100, description="frame, scenes: JPEG or WebP quality (default 85)."
    )
    threshold: float = Field(
        3.0,
        ge=1.0,
        le=255.0,
        description="scenes: how far a frame's change must stand above the changes around "
        "it to be a cut (PySceneDetect's adaptive threshold; lower finds more cuts).",
    )
    min_scene: TimeParam = Field(
        None,
        description="scenes: the shortest scene (default 0.5 s): a cut closer than this "
        "to the one before is dropped.",
    )
    keyframes: bool = Field(
        True, description="scenes: one image per scene, taken at its middle, as artifacts."
    )
    count: int = Field(
        9, ge=1, le=100, description="thumbnails: how many, spaced evenly over the stretch."
    )
    sheet: bool = Field(
        True,
        description="thumbnails: also a contact sheet, the thumbnails in a grid with their times.",
    )
    columns: int | None = Field(
        None, ge=1, le=20, description="thumbnails: the sheet's columns (default: a square grid)."
    )
    subtitle_stream: int = Field(
        0,
        ge=0,
        le=99,
        description="subtitles, burn_subtitles: which of the file's subtitle streams "
        "(0: the first).",
    )
    burn_subtitles: bool = Field(
        False,
        description="transcode: draw the subtitle stream subtitle_stream onto the picture.",
    )
    smart: bool = Field(
        True,
        description="thumbnails: choose each among the frames of the second around its time, "
        "passing over black and flat frames and taking the sharpest.",
    )

    @model_validator(mode="after")
    def _check(self) -> VideoParams:
        # InvalidParameter (not ValueError) passes through pydantic and names the field.
        self._read_clip()
        check_stretch(self.start, self.duration, self.end)
        if self.min_scene is not None and self.min_scene <= 0:
            raise InvalidParameter("min_scene", "must be more than 0")
        if self.time is not None and self.percent is not None:
            raise InvalidParameter("percent", "give time or percent, not both")
        self.format = self._check_format()
        if self.video_codec is not None and self.action in {
            VideoAction.TRANSCODE,
            VideoAction.CONCAT,
        }:
            container = self.format or VIDEO_FORMATS[0]
            if self.video_codec not in CODECS[container]:
                allowed = ", ".join(CODECS[container])
                raise InvalidParameter("video_codec", f"a {container} file takes {allowed}")
        if self.crf is not None and self.video_codec is VideoCodec.H264 and self.crf > 51:
            raise InvalidParameter("crf", "H.264 takes 0 to 51")
        return self

    def _read_clip(self) -> None:
        if self.clip is None:
            return
        if self.start is not None or self.duration is not None or self.end is not None:
            raise InvalidParameter("clip", "give clip, or start/duration/end, not both")
        parts = self.clip.split(":")
        if len(parts) != 2:
            raise InvalidParameter("clip", f"'{self.clip}' is not 'start:duration'")
        try:
            self.start = parse_time(parts[0]) or 0.0
            self.duration = parse_time(parts[1])
        except ValueError as exc:
            raise InvalidParameter("clip", str(exc)) from None
        if self.duration is None:
            raise InvalidParameter("clip", f"'{self.clip}' has no duration")
        self.clip = None

    def _check_format(self) -> str | None:
        if self.format is None or not self.format.strip():
            return None
        name = self.format.strip().lower().lstrip(".")
        name = _FORMAT_ALIASES.get(name, name)
        allowed = {
            VideoAction.TRANSCODE: VIDEO_FORMATS,
            VideoAction.FRAME: IMAGE_FORMATS,
            VideoAction.SCENES: IMAGE_FORMATS,
            VideoAction.THUMBNAILS: IMAGE_FORMATS,
            VideoAction.PREVIEW: ANIMATION_FORMATS,
            VideoAction.SUBTITLES: SUBTITLE_FORMATS,
            VideoAction.ANALYTICS: IMAGE_FORMATS,
            VideoAction.CONCAT: ("webm", "mp4"),
            VideoAction.PROBE: (),
        }[self.action]
        if name not in allowed:
            names = ", ".join(allowed) or "none (the answer is JSON)"
            raise InvalidParameter(
                "format", f"'{self.format}' is not an output of {self.action.value}: {names}"
            )
        return name

    @property
    def output_format(self) -> str:
        """The output's format: the one asked for, or the action's default."""
        default = {
            VideoAction.FRAME: "png",
            VideoAction.SCENES: "jpeg",
            VideoAction.THUMBNAILS: "jpeg",
            VideoAction.PREVIEW: "webp",
            VideoAction.SUBTITLES: "vtt",
            VideoAction.ANALYTICS: "jpeg",
        }.get(self.action, VIDEO_FORMATS[0])
        return self.format or default

    @property
    def codec(self) -> VideoCodec:
        return self.video_codec or CODECS.get(self.output_format, (VideoCodec.VP9,))[0]
