"""The ``audio`` operation: probe, extract, analyze or draw the audio of a media file.

Audio files (MP3, WAV, FLAC, Ogg, M4A, …) are inputs in their own right, and so is the
first audio stream of a video. Everything goes through
:class:`~docworker.engines.ffmpeg.Ffmpeg` (guarded FFmpeg runs), after the probe that
checks the stretch asked for against the limits (``settings.ffmpeg``):

- ``extract`` writes the track as WAV (16-bit PCM), FLAC, MP3, Opus (Ogg) or AAC (M4A),
  resampled or down-mixed on request: the artifact ``audio.<ext>``;
- ``analyze`` reads it once through FFmpeg's ``silencedetect`` and ``ebur128`` filters:
  integrated loudness, loudness range and true peak (EBU R128 / ITU-R BS.1770), the
  silences (under ``silence_threshold`` dBFS for ``silence_min`` seconds or more) and
  the share of the time that holds sound — a JSON report;
- ``transcribe`` recognises the words spoken (:mod:`docworker.engines.speech`) and
  writes them as subtitles (WebVTT or SubRip), cues cut at pauses and at a reading
  length, beside the words and their times in JSON;
- ``waveform`` draws it (``showwavespic``, down-mixed to one channel and read at a low
  rate so the picture's memory stays small however long the input): ``waveform.png``.

The silences are written by FFmpeg's ``ametadata`` filter to a file beside the job's
outputs (never into the kept tail of stderr, which a long input with many silences
would overflow); the loudness summary is the last thing ``ebur128`` logs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from docworker.engines.ffmpeg import Ffmpeg, Probe
from docworker.engines.speech import SAMPLE_RATE as SPEECH_RATE
from docworker.engines.speech import Transcription, Word, model_of
from docworker.errors import LimitExceeded, ProcessingFailed, UnsupportedFormat
from docworker.operations.audio_params import (
    LOSSLESS,
    AudioAction,
    AudioFormat,
    AudioParams,
    SubtitleFormat,
)
from docworker.operations.base import (
    Artifact,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    Result,
)
from docworker.operations.media import (
    Span,
    check_duration,
    check_output,
    covered_seconds,
    ffmpeg_timeout,
    filter_value,
    length_args,
    media_mime,
    probe_input,
    span_of,
)

#: Per format: file extension, media type, FFmpeg muxer, encoder options, default bit rate.
_FORMATS: dict[AudioFormat, tuple[str, str, str, list[str], int | None]] = {
    AudioFormat.WAV: ("wav", "audio/wav", "wav", ["-c:a", "pcm_s16le"], None),
    AudioFormat.FLAC: ("flac", "audio/flac", "flac", ["-c:a", "flac"], None),
    AudioFormat.MP3: ("mp3", "audio/mpeg", "mp3", ["-c:a", "libmp3lame"], 192_000),
    AudioFormat.OPUS: ("opus", "audio/ogg", "ogg", ["-c:a", "libopus"], 96_000),
    AudioFormat.AAC: (
        "m4a",
        "audio/mp4",
        "ipod",
        ["-c:a", "aac", "-movflags", "+faststart"],
        128_000,
    ),
}
#: The shortest silence reported when ``silence_min`` is not given (seconds).
DEFAULT_SILENCE_MIN = 0.5
#: The most silences a report lists (the totals count them all).
MAX_SILENCES = 10_000
#: Samples per second the waveform is drawn from: enough for a picture's columns.
_WAVEFORM_RATE = 8000
_WAVEFORM_COLOUR = "0x1f77b4"
#: The ebur128 summary's figures, as FFmpeg logs them.
_LOUDNESS = {
    "integrated_lufs": re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf|nan) LUFS"),
    "threshold_lufs": re.compile(r"Integrated loudness:.*?Threshold:\s*(-?[\d.]+|-inf|nan)", re.S),
    "range_lu": re.compile(r"LRA:\s*(-?[\d.]+|nan) LU"),
    "true_peak_dbfs": re.compile(r"True peak:\s*Peak:\s*(-?[\d.]+|-inf|nan) dBFS"),
}


class AudioOperation:
    name: ClassVar[str] = "audio"
    summary: ClassVar[str] = (
        "Probe audio (or a video's audio), extract it as WAV/FLAC/MP3/Opus/AAC, measure "
        "its loudness and silences, draw its waveform, transcribe its speech."
    )
    queue: ClassVar[Family] = Family.MEDIA
    Params: ClassVar[type[OperationParams]] = AudioParams

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, AudioParams)
        mime = media_mime(source, self.name)
        engine = Ffmpeg(ctx.settings.ffmpeg, ctx.settings.sandbox)
        probe = probe_input(engine, source, mime)
        if params.action is AudioAction.PROBE:
            return Result(payload={"action": "probe", "mime": mime, **probe.as_dict()})
        if probe.audio is None:
            raise UnsupportedFormat(mime, "the file has no audio stream")
        span = span_of(params.start, params.duration, params.end, probe)
        seconds = covered_seconds(span, probe)
        check_duration(ctx, seconds)
        if params.action is AudioAction.ANALYZE:
            return _analyze(ctx, engine, source, params, probe, span, seconds)
        if params.action is AudioAction.WAVEFORM:
            return _waveform(ctx, engine, source, params, probe, span, seconds)
        if params.action is AudioAction.TRANSCRIBE:
            return _transcribe(ctx, engine, source, params, probe, span, seconds)
        return _extract(ctx, engine, source, params, probe, span, seconds)


def _input(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, span: Span, seconds: float | None
) -> list[str]:
    return [*engine.input_args(source.path, start=span.start), *length_args(ctx, span, seconds)]


# -- extract ------------------------------------------------------------------------------


def _extract(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    params: AudioParams,
    probe: Probe,
    span: Span,
    seconds: float | None,
) -> Result:
    fmt = params.output_format
    extension, mime, muxer, codec, default_rate = _FORMATS[fmt]
    output = ctx.artifact_path(f"audio.{extension}")
    args = [*_input(ctx, engine, source, span, seconds), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    args += ["-map_metadata", "-1", *codec]
    if fmt not in LOSSLESS:
        args += ["-b:a", str(params.bitrate or default_rate)]
    channels = params.channels
    if channels is None:
        found = probe.audio.get("channels") if probe.audio else None
        channels = 2 if found is not None and found > 2 else None
    if channels is not None:
        args += ["-ac", str(channels)]
    if params.sample_rate is not None:
        args += ["-ar", str(_sample_rate(fmt, params.sample_rate))]
    args += ["-f", muxer, f"file:{output}"]
    engine.transcode(
        args, expected_seconds=seconds, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    check_output(ctx, output)
    made = engine.probe(output)
    audio = made.audio
    result = {
        "format": fmt.value,
        "mime": mime,
        "codec": audio.codec if audio else None,
        "sample_rate": audio.get("sample_rate") if audio else None,
        "channels": audio.get("channels") if audio else None,
        "duration": made.duration,
        "size": output.stat().st_size,
        "start": span.start,
    }
    payload = {"action": "extract", "input": probe.as_dict(), "output": result}
    return Result(payload=payload, artifacts=[Artifact(output.name, output, mime)])


#: The sample rates libopus encodes; another is resampled to the next one up.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def _sample_rate(fmt: AudioFormat, asked: int) -> int:
    if fmt is AudioFormat.OPUS:
        return next((rate for rate in _OPUS_RATES if rate >= asked), _OPUS_RATES[-1])
    if fmt is AudioFormat.MP3:
        # MPEG audio has no rate above 48 kHz.
        return min(asked, 48000)
    return asked


# -- analyze ------------------------------------------------------------------------------


def _analyze(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    params: AudioParams,
    probe: Probe,
    span: Span,
    seconds: float | None,
) -> Result:
    minimum = params.silence_min or DEFAULT_SILENCE_MIN
    measured = measure_sound(
        ctx, engine, source, span, seconds, threshold=params.silence_threshold, minimum=minimum
    )
    report: dict[str, Any] = {
        "action": "analyze",
        "input": probe.as_dict(),
        "start": span.start,
        **measured,
    }
    return Result(payload=report)


def measure_sound(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    span: Span,
    seconds: float | None,
    *,
    threshold: float = -50.0,
    minimum: float = DEFAULT_SILENCE_MIN,
) -> dict[str, Any]:
    """The loudness, the silences and the share of sound of the stretch's first audio
    stream, from one FFmpeg pass (``duration``, ``loudness``, ``silence``,
    ``sound_share``)."""
    marks = ctx.artifact_path("silences.txt")  # a scratch file: not listed as an artifact
    chain = ",".join(
        [
            f"silencedetect=noise={threshold:g}dB:duration={minimum:g}",
            f"ametadata=mode=print:file={filter_value(str(marks))}",
            "ebur128=peak=true:framelog=verbose",
        ]
    )
    args = [*_input(ctx, engine, source, span, seconds), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    args += ["-af", chain, "-f", "null", "-"]
    done = engine.transcode(
        args,
        expected_seconds=seconds,
        progress=ctx.progress,
        timeout=ffmpeg_timeout(ctx),
        log_level="info",
    )
    loudness = _loudness(done.stderr)
    length = seconds if seconds is not None else _analyzed_seconds(done.stderr)
    silences, count, silent = _silences(marks, span.start, length)
    marks.unlink(missing_ok=True)
    return {
        "duration": length,
        "loudness": loudness,
        "silence": {
            "threshold_db": threshold,
            "min_duration": minimum,
            "count": count,
            "seconds": round(silent, 3),
            "segments": silences,
            "truncated": count > len(silences),
        },
        "sound_share": (round(max(0.0, 1.0 - silent / length), 4) if length else None),
    }


def _loudness(stderr: str) -> dict[str, float | None]:
    summary = stderr[stderr.rfind("Summary:") :] if "Summary:" in stderr else ""
    if not summary:
        raise ProcessingFailed("FFmpeg's loudness meter gave no summary: the audio ended early")
    found: dict[str, float | None] = {}
    for key, pattern in _LOUDNESS.items():
        match = pattern.search(summary)
        value = match.group(1) if match else "nan"
        number = float(value)
        # -inf (digital silence) and nan (too short to measure) have no JSON number.
        found[key] = round(number, 2) if math.isfinite(number) else None
    return found


_TIME = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")


def _analyzed_seconds(stderr: str) -> float | None:
    """The input's length as read, for a file that stated none: FFmpeg's last time."""
    times = _TIME.findall(stderr)
    if not times:
        return None
    hours, minutes, secs = times[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def _silences(
    marks: Path, offset: float, length: float | None
) -> tuple[list[dict[str, float]], int, float]:
    """The silences ``ametadata`` wrote (times from the stretch's start, moved by
    ``offset``), the count and the silent seconds; one still open at the end of the
    stretch ends there."""
    segments: list[dict[str, float]] = []
    count, silent = 0, 0.0
    opened: float | None = None

    def close(start: float, end: float) -> None:
        nonlocal count, silent
        count += 1
        silent += max(end - start, 0.0)
        if len(segments) < MAX_SILENCES:
            segments.append(
                {
                    "start": round(offset + start, 3),
                    "end": round(offset + end, 3),
                    "duration": round(end - start, 3),
                }
            )

    if marks.is_file():
        with marks.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.strip().partition("=")
                if key == "lavfi.silence_start":
                    opened = max(_seconds(value), 0.0)
                elif key == "lavfi.silence_end" and opened is not None:
                    close(opened, _seconds(value))
                    opened = None
    if opened is not None and length is not None and length > opened:
        close(opened, length)
    return segments, count, silent


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


# -- waveform -----------------------------------------------------------------------------


def _waveform(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    params: AudioParams,
    probe: Probe,
    span: Span,
    seconds: float | None,
) -> Result:
    pixels = params.width * params.height
    if pixels > ctx.settings.ffmpeg.max_pixels:
        raise LimitExceeded("output frame pixels", pixels, ctx.settings.ffmpeg.max_pixels)
    output = ctx.artifact_path("waveform.png")
    graph = (
        f"[0:a:0]aformat=sample_fmts=s16:channel_layouts=mono,aresample={_WAVEFORM_RATE},"
        f"showwavespic=s={params.width}x{params.height}:colors={_WAVEFORM_COLOUR}[picture]"
    )
    args = [*_input(ctx, engine, source, span, seconds), "-filter_complex", graph]
    args += ["-map", "[picture]", "-frames:v", "1", "-c:v", "png", "-f", "image2", "-update", "1"]
    args += [f"file:{output}"]
    engine.transcode(
        args, expected_seconds=None, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    check_output(ctx, output)
    result = {
        "format": "png",
        "mime": "image/png",
        "width": params.width,
        "height": params.height,
        "start": span.start,
        "duration": seconds,
        "size": output.stat().st_size,
    }
    payload = {"action": "waveform", "input": probe.as_dict(), "output": result}
    return Result(payload=payload, artifacts=[Artifact(output.name, output, "image/png")])


# -- transcribe ---------------------------------------------------------------------------

#: A cue ends at a pause this long (seconds), past this length (seconds), or when its
#: text would pass this many characters (two subtitle lines of 42).
CUE_PAUSE = 0.6
CUE_SECONDS = 5.0
CUE_CHARACTERS = 84
_LINE = 42


def _transcribe(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    params: AudioParams,
    probe: Probe,
    span: Span,
    seconds: float | None,
) -> Result:
    model = model_of(ctx.settings.speech)
    transcription = Transcription(model)
    step = max((seconds or 0.0) / 50, 1.0)
    reported = 0.0

    def take(chunk: bytes) -> None:
        nonlocal reported
        transcription.feed(chunk)
        if seconds and transcription.seconds - reported >= step:
            reported = transcription.seconds
            done = min(reported / seconds, 1.0)
            ctx.progress(0.95 * done, f"listened to {reported:.0f} of {seconds:.0f} s")

    args = [*_input(ctx, engine, source, span, seconds), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    args += ["-ac", "1", "-ar", str(SPEECH_RATE), "-f", "s16le"]
    engine.stream(args, on_chunk=take, timeout=ffmpeg_timeout(ctx))
    words = [
        Word(word.text, round(word.start + span.start, 2), round(word.end + span.start, 2))
        for word in transcription.finish()
    ]
    cues = cues_of(words)
    fmt = params.subtitle_format
    output = ctx.artifact_path(f"subtitles.{fmt.value}")
    output.write_text(
        write_vtt(cues) if fmt is SubtitleFormat.VTT else write_srt(cues), encoding="utf-8"
    )
    mime = "text/vtt" if fmt is SubtitleFormat.VTT else "application/x-subrip"
    payload = {
        "action": "transcribe",
        "input": probe.as_dict(),
        "start": span.start,
        "duration": seconds,
        "engine": "pocketsphinx",
        "language": model.language,
        "text": " ".join(word.text for word in words),
        "cues": [{"start": c.start, "end": c.end, "text": c.text} for c in cues],
        "words": [{"text": w.text, "start": w.start, "end": w.end} for w in words],
    }
    return Result(payload=payload, artifacts=[Artifact(output.name, output, mime)])


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def cues_of(words: list[Word]) -> list[Cue]:
    """Subtitle cues from timed words: a new cue at a pause of :data:`CUE_PAUSE`, or when
    the cue would last past :data:`CUE_SECONDS` or hold more than
    :data:`CUE_CHARACTERS`; its text broken into lines of about :data:`_LINE`."""
    cues: list[Cue] = []
    group: list[Word] = []

    def close() -> None:
        if group:
            text = _lines(" ".join(word.text for word in group))
            cues.append(Cue(group[0].start, group[-1].end, text))
            group.clear()

    for word in words:
        if group:
            length = len(" ".join(w.text for w in group)) + 1 + len(word.text)
            if (
                word.start - group[-1].end >= CUE_PAUSE
                or word.end - group[0].start > CUE_SECONDS
                or length > CUE_CHARACTERS
            ):
                close()
        group.append(word)
    close()
    return cues


def _lines(text: str) -> str:
    if len(text) <= _LINE:
        return text
    middle = len(text) // 2
    spaces = [index for index, char in enumerate(text) if char == " "]
    cut = min(spaces, key=lambda index: abs(index - middle)) if spaces else middle
    return f"{text[:cut]}\n{text[cut + 1 :]}"


def _stamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def write_vtt(cues: list[Cue]) -> str:
    blocks = ["WEBVTT"]
    blocks += [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}" for c in cues]
    return "\n\n".join(blocks) + "\n"


def write_srt(cues: list[Cue]) -> str:
    blocks = [
        f"{number}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}"
        for number, c in enumerate(cues, start=1)
    ]
    return "\n\n".join(blocks) + ("\n" if blocks else "")
