"""The ``audio`` operation's parameters: actions, formats, the stretch to work on, the
encoding of an extracted track, the silence detector's thresholds and the waveform's
size. Times and bit rates are read as the ``video`` operation reads them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from docworker.errors import InvalidParameter
from docworker.operations.base import OperationParams
from docworker.operations.video_params import BitrateParam, TimeParam, check_stretch


class AudioAction(StrEnum):
    PROBE = "probe"
    EXTRACT = "extract"
    ANALYZE = "analyze"
    WAVEFORM = "waveform"
    TRANSCRIBE = "transcribe"


class AudioFormat(StrEnum):
    WAV = "wav"
    FLAC = "flac"
    MP3 = "mp3"
    OPUS = "opus"
    AAC = "aac"


class SubtitleFormat(StrEnum):
    VTT = "vtt"
    SRT = "srt"


#: Formats without a bit rate of their own: the bit rate applies to the lossy ones.
LOSSLESS = frozenset({AudioFormat.WAV, AudioFormat.FLAC})
_ALIASES = {"m4a": "aac", "ogg": "opus", "wave": "wav"}
#: The actions that work on a stretch of the input (``start``, ``duration``, ``end``).
_STRETCHED = frozenset(
    {AudioAction.EXTRACT, AudioAction.ANALYZE, AudioAction.WAVEFORM, AudioAction.TRANSCRIBE}
)


class AudioParams(OperationParams):
    action: AudioAction = Field(
        AudioAction.EXTRACT,
        description="probe: what the file holds (JSON); extract: the audio track as an "
        "audio file; analyze: loudness (EBU R128), silences and the share of sound "
        "(JSON); waveform: a picture of the waveform (PNG); transcribe: the words spoken, "
        "with their times, as subtitles (WebVTT or SubRip) and JSON.",
    )
    format: str | None = Field(
        None,
        description="extract: wav (16-bit PCM, default), flac, mp3, opus (in Ogg) or aac "
        "(in an M4A file), 'm4a', 'ogg' and 'wave' naming aac, opus and wav; transcribe: "
        "vtt (default) or srt.",
    )
    start: TimeParam = Field(None, description="Where the stretch worked on begins.")
    duration: TimeParam = Field(None, description="How long the stretch lasts.")
    end: TimeParam = Field(None, description="Where the stretch ends (not with duration).")
    sample_rate: int | None = Field(
        None,
        ge=8000,
        le=192_000,
        description="extract: samples per second of the output (default: the input's; "
        "Opus takes 8, 12, 16, 24 or 48 kHz and resamples to the nearest above).",
    )
    channels: int | None = Field(
        None,
        ge=1,
        le=2,
        description="extract: 1 (mono) or 2 (stereo); default: the input's, at most 2.",
    )
    bitrate: BitrateParam = Field(
        None,
        description="extract, mp3/opus/aac: the bit rate, e.g. '128k' "
        "(default 192k MP3, 96k Opus, 128k AAC).",
    )
    silence_threshold: float = Field(
        -50.0,
        ge=-90.0,
        le=0.0,
        description="analyze: the level (dBFS) under which sound counts as silence.",
    )
    silence_min: TimeParam = Field(
        None, description="analyze: the shortest silence reported (default 0.5 s)."
    )
    width: int = Field(1200, ge=64, le=8192, description="waveform: the picture's width.")
    height: int = Field(240, ge=32, le=4096, description="waveform: the picture's height.")

    @field_validator("format", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            name = value.strip().lower().lstrip(".")
            return _ALIASES.get(name, name) or None
        return value

    def _check_format(self) -> None:
        if self.format is None:
            return
        allowed: tuple[str, ...] = ()
        if self.action is AudioAction.EXTRACT:
            allowed = tuple(AudioFormat)
        elif self.action is AudioAction.TRANSCRIBE:
            allowed = tuple(SubtitleFormat)
        if self.format not in allowed:
            names = ", ".join(allowed) or "none (the answer is JSON or PNG)"
            raise InvalidParameter(
                "format", f"'{self.format}' is not an output of {self.action.value}: {names}"
            )

    @model_validator(mode="after")
    def _check(self) -> AudioParams:
        # InvalidParameter (not ValueError) passes through pydantic and names the field.
        check_stretch(self.start, self.duration, self.end)
        stretched = self.start is not None or self.duration is not None or self.end is not None
        if stretched and self.action not in _STRETCHED:
            raise InvalidParameter("start", f"{self.action.value} covers the whole file")
        self._check_format()
        if self.bitrate is not None and self.action is not AudioAction.EXTRACT:
            raise InvalidParameter("bitrate", "only extract encodes audio")
        if self.bitrate is not None and self.output_format in LOSSLESS:
            raise InvalidParameter("bitrate", f"{self.output_format.value} is lossless")
        if self.silence_min is not None and self.silence_min <= 0:
            raise InvalidParameter("silence_min", "must be more than 0")
        return self

    @property
    def output_format(self) -> AudioFormat:
        """The audio format ``extract`` writes."""
        if self.action is AudioAction.EXTRACT and self.format is not None:
            return AudioFormat(self.format)
        return AudioFormat.WAV

    @property
    def subtitle_format(self) -> SubtitleFormat:
        """The subtitles ``transcribe`` writes."""
        if self.action is AudioAction.TRANSCRIBE and self.format is not None:
            return SubtitleFormat(self.format)
        return SubtitleFormat.VTT
