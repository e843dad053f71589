"""The ``video`` operation: probe a video or audio file, transcode it, or grab a frame.

Everything goes through :class:`~docworker.engines.ffmpeg.Ffmpeg` (guarded FFmpeg
runs). ``transcode`` makes WebM (VP9 + Opus by default, VP8 + Vorbis on request)
or MP4 (H.264 + AAC), resized with its aspect ratio kept, trimmed to a clip,
with a quality (CRF) and a bit-rate cap, with or without audio; ``frame`` makes
one frame a PNG, JPEG or WebP image fitted to a size. Outputs are artifacts:
``video.webm`` / ``video.mp4`` and ``frame.png`` / ``frame.jpeg`` / ``frame.webp``.
Every input is probed first: its duration, frame size and the clip are checked
against the limits (``settings.ffmpeg``) before anything is decoded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from docworker.engines.ffmpeg import Ffmpeg, Probe, Stream
from docworker.errors import InvalidParameter, LimitExceeded, ProcessingFailed, UnsupportedFormat
from docworker.operations import video_parts
from docworker.operations.base import (
    Artifact,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    PartResult,
    Result,
    SplitPart,
    SplitPlan,
)
from docworker.operations.media import (
    check_duration,
    check_output,
    covered_seconds,
    ffmpeg_timeout,
    filter_value,
    fitted_size,
    image_codec_args,
    length_args,
    media_mime,
    probe_input,
    span_of,
)
from docworker.operations.video_analytics import analytics
from docworker.operations.video_params import VideoAction, VideoCodec, VideoParams
from docworker.operations.video_scenes import scenes
from docworker.operations.video_thumbs import preview, thumbnails

#: Media types of the outputs, by format.
MIME = {
    "webm": "video/webm",
    "mp4": "video/mp4",
    "m3u8": "application/vnd.apple.mpegurl",
    "ts": "video/mp2t",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}
#: The frame taken when neither time nor percent is given, as a percentage.
DEFAULT_PERCENT = 10.0

#: Encoder options per video codec: (codec options, default CRF, audio codec options,
#: default audio bit rate). The VP8/VP9 speed settings are measured in bench/video_codecs.py.
_ENCODERS: dict[VideoCodec, tuple[list[str], int, list[str], int]] = {
    VideoCodec.VP9: (
        ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"],
        32,
        ["-c:a", "libopus"],
        96_000,
    ),
    VideoCodec.VP8: (
        ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"],
        10,
        ["-c:a", "libvorbis"],
        128_000,
    ),
    VideoCodec.H264: (
        ["-c:v", "libx264", "-preset", "veryfast", "-movflags", "+faststart"],
        23,
        ["-c:a", "aac"],
        128_000,
    ),
}


class VideoOperation:
    name: ClassVar[str] = "video"
    summary: ClassVar[str] = (
        "Probe video and audio files, transcode them to WebM or MP4, grab a frame, make "
        "thumbnails, a contact sheet and an animated preview, find the scenes, extract "
        "subtitles."
    )
    queue: ClassVar[Family] = Family.MEDIA
    Params: ClassVar[type[OperationParams]] = VideoParams

    def split(
        self, ctx: OperationContext, source: InputFile, params: OperationParams, plan: SplitPlan
    ) -> list[SplitPart] | None:
        """Time ranges of a long video's scenes or thumbnails (:mod:`.video_parts`)."""
        assert isinstance(params, VideoParams)
        return video_parts.split(ctx, source, params, plan)

    def merge(
        self,
        ctx: OperationContext,
        source: InputFile,
        params: OperationParams,
        parts: list[PartResult],
    ) -> Result:
        assert isinstance(params, VideoParams)
        return video_parts.merge(ctx, source, params, parts)

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, VideoParams)
        mime = media_mime(source, self.name)
        engine = Ffmpeg(ctx.settings.ffmpeg, ctx.settings.sandbox)
        probe = probe_input(engine, source, mime)
        if params.action is VideoAction.PROBE:
            return Result(payload={"action": "probe", "mime": mime, **probe.as_dict()})
        if params.action is VideoAction.SUBTITLES:
            return _subtitles(ctx, engine, source, params, probe)
        if params.action is VideoAction.CONCAT:
            return _concat(ctx, engine, source, params, probe)
        if source.others:
            raise InvalidParameter(
                "files", f"{params.action.value} takes one file; concat takes several"
            )
        if probe.video is None and probe.audio is None:
            raise UnsupportedFormat(mime, "the file has neither video nor audio to work on")
        _check_frame_size(ctx, probe)
        return _ACTIONS[params.action](ctx, engine, source, params, probe)


def _check_frame_size(ctx: OperationContext, probe: Probe) -> None:
    video = probe.video
    if video is None:
        return
    pixels = (video.get("width") or 0) * (video.get("height") or 0)
    maximum = ctx.settings.ffmpeg.max_pixels
    if pixels > maximum:
        raise LimitExceeded("frame pixels", pixels, maximum)


# -- transcode ----------------------------------------------------------------------------


def _transcode(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    fmt = params.output_format
    codec = params.codec
    has_video = probe.video is not None
    has_audio = probe.audio is not None and not params.mute
    if not has_video and not has_audio:
        raise InvalidParameter(
            "mute", "the file has no video, and without its audio nothing is left"
        )
    span = span_of(params.start, params.duration, params.end, probe)
    seconds = covered_seconds(span, probe)
    check_duration(ctx, seconds)
    size = fitted_size(ctx, probe, params.width, params.height, even=True) if has_video else None
    args = [*engine.input_args(source.path, start=span.start), *length_args(ctx, span, seconds)]
    args += ["-map_metadata", "-1", "-sn", "-dn"]
    burned = _subtitle_script(ctx, engine, source, params, probe, span.start)
    fps = probe.video.get("fps") if probe.video else None
    args += _video_args(params, codec, size, burned, fps) if has_video else ["-vn"]
    args += _audio_args(params, codec, probe) if has_audio else ["-an"]
    if fmt == "hls":
        return _hls(ctx, engine, args, seconds, span.start, probe, has_video)
    output = ctx.artifact_path(f"video.{fmt}")
    args += ["-f", fmt, f"file:{output}"]
    engine.transcode(
        args, expected_seconds=seconds, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    check_output(ctx, output)
    made = engine.probe(output)
    result = {
        "format": fmt,
        "mime": MIME[fmt],
        **_made(made),
        "duration": made.duration,
        "size": output.stat().st_size,
        "start": span.start,
    }
    payload = {"action": "transcode", "input": probe.as_dict(), "output": result}
    return Result(payload=payload, artifacts=[Artifact(output.name, output, MIME[fmt])])


def _video_args(
    params: VideoParams,
    codec: VideoCodec,
    size: tuple[int, int] | None,
    burned: Path | None = None,
    fps: float | None = None,
) -> list[str]:
    args = ["-map", "0:V:0", *_video_encoder(params, codec)]
    filters = [f"scale={size[0]}:{size[1]}:flags=bicubic,setsar=1"] if size is not None else []
    if params.max_fps is not None and (fps is None or fps > params.max_fps):
        filters.append(f"fps={params.max_fps:g}")
    if burned is not None:
        filters.append(f"ass=filename={filter_value(str(burned))}")
    if filters:
        args += ["-vf", ",".join(filters)]
    return args


def _video_encoder(params: VideoParams, codec: VideoCodec) -> list[str]:
    """The video encoder, its quality and its bit rate."""
    options, default_crf, _, _ = _ENCODERS[codec]
    crf = params.crf if params.crf is not None else default_crf
    args = [*options, "-pix_fmt", "yuv420p", "-crf", str(crf)]
    cap = params.max_bitrate
    if codec is VideoCodec.H264:
        if cap is not None:
            args += ["-maxrate", str(cap), "-bufsize", str(2 * cap)]
    elif codec is VideoCodec.VP9:
        # VP9 with -b:v 0 is constant quality; a bit rate makes the CRF constrained by it.
        args += ["-b:v", str(cap or 0)]
    else:
        # VP8 needs a bit rate beside its CRF: the ceiling of its constrained quality.
        args += ["-b:v", str(cap or 4_000_000)]
    return args


def _made(made: Probe) -> dict[str, Any]:
    """What a probe of the file made says of its streams, for the result."""
    return {
        "video_codec": made.video.codec if made.video else None,
        "audio_codec": made.audio.codec if made.audio else None,
        "width": made.video.get("width") if made.video else None,
        "height": made.video.get("height") if made.video else None,
    }


def _subtitle_script(
    ctx: OperationContext,
    engine: Ffmpeg,
    source: InputFile,
    params: VideoParams,
    probe: Probe,
    start: float,
) -> Path | None:
    """With ``burn_subtitles``, the chosen subtitle stream written as an ASS script (a
    scratch file, its times from ``start``) for libass to draw onto the picture. libass
    reads the script itself: the input is never opened again outside FFmpeg's guards."""
    if not params.burn_subtitles:
        return None
    stream = _subtitle_stream(params, probe)
    script = ctx.artifact_path("burn.ass")  # a scratch file: not listed as an artifact
    args = [*engine.input_args(source.path, start=start), "-map", f"0:s:{params.subtitle_stream}"]
    args += ["-c:s", "ass", "-f", "ass", f"file:{script}"]
    engine.transcode(
        args, expected_seconds=None, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    if not script.is_file():
        raise ProcessingFailed(f"FFmpeg could not turn the {stream.codec} subtitles into a script")
    return script


def _audio_args(params: VideoParams, codec: VideoCodec, probe: Probe) -> list[str]:
    _, _, options, default_rate = _ENCODERS[codec]
    args = ["-map", "0:a:0", *options, "-b:a", str(params.audio_bitrate or default_rate)]
    channels = probe.audio.get("channels") if probe.audio else None
    if channels is not None and channels > 2:
        args += ["-ac", "2"]
    return args


#: Seconds of each HLS segment (a keyframe is forced at each boundary).
HLS_SEGMENT = 4


def _hls(
    ctx: OperationContext,
    engine: Ffmpeg,
    args: list[str],
    seconds: float | None,
    start: float,
    probe: Probe,
    has_video: bool,
) -> Result:
    """HLS for on-demand playing: ``playlist.m3u8`` and its MPEG-TS segments of
    :data:`HLS_SEGMENT` seconds, each an artifact, the playlist naming them by their
    artifact names (served side by side under the job's artifacts)."""
    playlist = ctx.artifact_path("playlist.m3u8")
    pattern = ctx.artifact_path("segment-%03d.ts")
    if has_video:
        args += ["-force_key_frames", f"expr:gte(t,n_forced*{HLS_SEGMENT})"]
    args += ["-f", "hls", "-hls_time", str(HLS_SEGMENT), "-hls_playlist_type", "vod"]
    args += ["-hls_segment_filename", f"file:{pattern}", f"file:{playlist}"]
    engine.transcode(
        args, expected_seconds=seconds, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    check_output(ctx, playlist)
    names, duration = _playlist_entries(playlist)
    segments = [ctx.artifact_path(name) for name in names]
    if not segments or not all(path.is_file() for path in segments):
        raise ProcessingFailed("FFmpeg's HLS playlist names segments it did not write")
    total = sum(path.stat().st_size for path in segments) + playlist.stat().st_size
    maximum = ctx.settings.ffmpeg.max_output_bytes
    if total >= maximum:
        raise LimitExceeded("output bytes", total, maximum)
    made = engine.probe(segments[0])
    result = {
        "format": "hls",
        "mime": MIME["m3u8"],
        **_made(made),
        "duration": round(duration, 3),
        "segments": len(segments),
        "size": total,
        "start": start,
    }
    artifacts = [Artifact(playlist.name, playlist, MIME["m3u8"])]
    artifacts += [Artifact(path.name, path, MIME["ts"]) for path in segments]
    payload = {"action": "transcode", "input": probe.as_dict(), "output": result}
    return Result(payload=payload, artifacts=artifacts)


def _playlist_entries(playlist: Path) -> tuple[list[str], float]:
    """The segment names of a VOD playlist FFmpeg wrote, and their total duration."""
    names: list[str] = []
    duration = 0.0
    for raw in playlist.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            with contextlib.suppress(ValueError):
                duration += float(line[len("#EXTINF:") :].split(",", 1)[0])
        elif line and not line.startswith("#"):
            if "/" in line or line.startswith("."):
                raise ProcessingFailed(f"FFmpeg's HLS playlist names '{line}', not a segment here")
            names.append(line)
    return names, duration


# -- frame --------------------------------------------------------------------------------


def _frame(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    if probe.video is None:
        raise UnsupportedFormat(
            probe.container or "audio", "the file has no video stream to take a frame from"
        )
    at = _frame_time(params, probe)
    fmt = params.output_format
    size = fitted_size(ctx, probe, params.width, params.height, even=False)
    output = ctx.artifact_path(f"frame.{fmt}")
    args = [*engine.input_args(source.path, start=at), "-map", "0:V:0", "-frames:v", "1"]
    args += ["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic,setsar=1", "-update", "1"]
    args += [*image_codec_args(fmt, params.quality), "-f", "image2", f"file:{output}"]
    engine.transcode(
        args, expected_seconds=None, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    if not output.is_file() or output.stat().st_size == 0:
        raise InvalidParameter("time", f"there is no frame at {at:g} s")
    check_output(ctx, output)
    result = {
        "format": fmt,
        "mime": MIME[fmt],
        "width": size[0],
        "height": size[1],
        "time": at,
        "size": output.stat().st_size,
    }
    payload = {"action": "frame", "input": probe.as_dict(), "output": result}
    return Result(payload=payload, artifacts=[Artifact(output.name, output, MIME[fmt])])


def _frame_time(params: VideoParams, probe: Probe) -> float:
    duration = probe.duration
    if params.time is not None:
        if duration is not None and params.time >= duration:
            raise InvalidParameter(
                "time", f"{params.time:g} s is past the end of the file ({duration:g} s)"
            )
        return params.time
    if duration is None:
        return 0.0
    percent = DEFAULT_PERCENT if params.percent is None else params.percent
    # 100 % is the last frame, not the end after it: stay a frame's length before the end.
    fps = probe.video.get("fps") if probe.video else None
    last = max(duration - 1.0 / (fps or 25.0), 0.0)
    return round(min(duration * percent / 100.0, last), 6)


# -- subtitles ----------------------------------------------------------------------------

#: Subtitle codecs that are text, which FFmpeg converts to WebVTT and SubRip (bitmap
#: subtitles, DVD and Blu-ray's, would need OCR).
TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "ttml"})
_SUBTITLE_OUTPUT = {
    "vtt": ("webvtt", "webvtt", "text/vtt"),
    "srt": ("srt", "srt", "application/x-subrip"),
}


def _subtitles(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, probe: Probe
) -> Result:
    stream = _subtitle_stream(params, probe)
    fmt = params.output_format
    codec, muxer, mime = _SUBTITLE_OUTPUT[fmt]
    output = ctx.artifact_path(f"subtitles.{fmt}")
    args = [*engine.input_args(source.path), "-map", f"0:s:{params.subtitle_stream}"]
    args += ["-c:s", codec, "-f", muxer, f"file:{output}"]
    engine.transcode(
        args, expected_seconds=None, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    check_output(ctx, output)
    result = {
        "format": fmt,
        "mime": mime,
        "stream": stream.index,
        "codec": stream.codec,
        "language": stream.get("language"),
        "size": output.stat().st_size,
    }
    payload = {"action": "subtitles", "input": probe.as_dict(), "output": result}
    return Result(payload=payload, artifacts=[Artifact(output.name, output, mime)])


_Action = Callable[[OperationContext, Ffmpeg, InputFile, VideoParams, Probe], Result]
#: The actions that work on the picture or the sound (probe and subtitles are apart).
_ACTIONS: dict[VideoAction, _Action] = {
    VideoAction.TRANSCODE: _transcode,
    VideoAction.FRAME: _frame,
    VideoAction.SCENES: scenes,
    VideoAction.THUMBNAILS: thumbnails,
    VideoAction.PREVIEW: preview,
    VideoAction.ANALYTICS: analytics,
}


def _subtitle_stream(params: VideoParams, probe: Probe) -> Stream:
    """The text subtitle stream ``subtitle_stream`` names."""
    streams = [stream for stream in probe.streams if stream.type == "subtitle"]
    if not streams:
        raise UnsupportedFormat(probe.container or "video", "the file has no subtitle stream")
    if params.subtitle_stream >= len(streams):
        raise InvalidParameter(
            "subtitle_stream",
            f"the file has {len(streams)} subtitle stream(s): 0 to {len(streams) - 1}",
        )
    stream = streams[params.subtitle_stream]
    if stream.codec not in TEXT_SUBTITLES:
        raise UnsupportedFormat(
            str(stream.codec), f"subtitles in {stream.codec} are pictures, not text"
        )
    return stream


# -- concat -------------------------------------------------------------------------------

#: The most inputs one concat takes.
MAX_CONCAT_INPUTS = 20
#: Frame rate of a joined video whose first input states none.
_CONCAT_FPS = 25.0


def _concat(
    ctx: OperationContext, engine: Ffmpeg, source: InputFile, params: VideoParams, first: Probe
) -> Result:
    """The inputs one after another as one video: each scaled into the first one's
    picture (or ``width``/``height``), letter-boxed where its aspect differs, at the first
    one's frame rate; the sound joined too, silence standing in for an input without."""
    inputs = [source, *source.others]
    if len(inputs) < 2:
        raise InvalidParameter("files", "concat joins two files or more")
    if len(inputs) > MAX_CONCAT_INPUTS:
        raise LimitExceeded("concat inputs", len(inputs), MAX_CONCAT_INPUTS)
    probes = [first] + [
        probe_input(engine, other, media_mime(other, "video")) for other in inputs[1:]
    ]
    for index, probe in enumerate(probes):
        if probe.video is None or probe.duration is None:
            raise UnsupportedFormat(
                probe.container or "audio",
                f"file {index + 1} has no video stream of known length to join",
            )
        _check_frame_size(ctx, probe)
    total = sum(probe.duration or 0.0 for probe in probes)
    check_duration(ctx, total)
    width, height = fitted_size(ctx, first, params.width, params.height, even=True)
    fps = float(first.video.get("fps") or _CONCAT_FPS) if first.video else _CONCAT_FPS
    sound = not params.mute and any(probe.audio is not None for probe in probes)
    args: list[str] = []
    for item in inputs:
        args += engine.input_args(item.path)
    parts: list[str] = []
    joined = ""
    for index, probe in enumerate(probes):
        parts.append(
            f"[{index}:V:0]scale={width}:{height}:force_original_aspect_ratio=decrease:"
            f"flags=bicubic,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,"
            f"fps={fps:.6f},format=yuv420p,trim=duration={probe.duration:.6f},"
            f"setpts=PTS-STARTPTS[v{index}]"
        )
        joined += f"[v{index}]"
        if sound:
            if probe.audio is not None:
                parts.append(
                    f"[{index}:a:0]aresample=48000,aformat=channel_layouts=stereo,"
                    f"apad,atrim=duration={probe.duration:.6f},asetpts=PTS-STARTPTS[a{index}]"
                )
            else:
                parts.append(
                    f"anullsrc=r=48000:cl=stereo,atrim=duration={probe.duration:.6f}[a{index}]"
                )
            joined += f"[a{index}]"
    outputs = "[v][a]" if sound else "[v]"
    parts.append(f"{joined}concat=n={len(inputs)}:v=1:a={int(sound)}{outputs}")
    fmt = params.output_format
    codec = params.codec
    _, _, audio_options, default_rate = _ENCODERS[codec]
    output = ctx.artifact_path(f"video.{fmt}")
    args += ["-filter_complex", ";".join(parts), "-map", "[v]", *_video_encoder(params, codec)]
    if sound:
        args += ["-map", "[a]", *audio_options, "-b:a", str(params.audio_bitrate or default_rate)]
    args += ["-map_metadata", "-1", "-f", fmt, f"file:{output}"]
    engine.transcode(
        args, expected_seconds=total, progress=ctx.progress, timeout=ffmpeg_timeout(ctx)
    )
    check_output(ctx, output)
    made = engine.probe(output)
    result = {
        "format": fmt,
        "mime": MIME[fmt],
        "inputs": len(inputs),
        **_made(made),
        "duration": made.duration,
        "size": output.stat().st_size,
    }
    payload = {"action": "concat", "inputs": [p.as_dict() for p in probes], "output": result}
    return Result(payload=payload, artifacts=[Artifact(output.name, output, MIME[fmt])])
