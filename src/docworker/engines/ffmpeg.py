"""FFmpeg and ffprobe, run one process per task: probing, transcoding, frame grabs.

FFmpeg is a new process for every task (it keeps nothing warm worth sharing), so it
does not go through the long-lived :class:`~docworker.engines.supervisor.Supervisor`;
each run is guarded here instead, the same way every time:

* its own process group (a session), killed as a group past the wall timeout, and
  tied to the thread that started it (``PR_SET_PDEATHSIG``): a worker killed for
  its job's time or memory takes its FFmpeg along;
* an address-space cap (``RLIMIT_AS``), a file-size cap (``RLIMIT_FSIZE``) and no
  core files, set in the child before FFmpeg starts;
* no network and no playlists: inputs are named ``file:<path>`` (never read as a
  protocol URL), ``-protocol_whitelist file`` refuses every other protocol a
  nested reference may name, and ``-format_whitelist`` admits only the media
  containers in :data:`DEMUXERS` — HLS/DASH playlists, ``concat`` scripts, SDP and
  the like are refused before they are opened; and, where the machine allows it,
  a network namespace of its own with no interface up
  (:mod:`docworker.engines.sandbox`);
* ``-nostdin`` and stdin on ``/dev/null``; progress read from ``-progress pipe:1``;
  stderr kept (its last :data:`STDERR_KEEP` bytes) for the error message.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import resource
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import structlog

from docworker.config import FfmpegSettings, SandboxSettings
from docworker.engines.sandbox import NetworkSandbox, network_sandbox
from docworker.errors import (
    CorruptDocument,
    DependencyDown,
    EngineFailed,
    EngineTimeout,
    LimitExceeded,
    ProcessingFailed,
    UnsupportedFormat,
)
from docworker.metrics import engine_call
from docworker.tracing import engine_span, set_attributes

log = structlog.get_logger(__name__)

NAME = "FFmpeg"
#: Demuxers an input may be opened with: media containers and elementary streams,
#: none that reads other files or URLs named inside the input (hls, dash, concat,
#: image2, sdp, rtsp, tee, ...). Names as FFmpeg spells them (``ffmpeg -demuxers``).
DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,ogg,asf,wav,w64,"
    "mp3,aac,ac3,eac3,flac,aiff,caf,amr,gif,m4v,h264,hevc,dv,mxf,rm,ivf,nut,wv,ape,tta"
)
#: The only protocol an input (or anything it names) may be read through.
PROTOCOLS = "file"
#: The options that go before every input.
GUARD = ("-protocol_whitelist", PROTOCOLS, "-format_whitelist", DEMUXERS)
#: How much of a process's stderr is kept for the error message.
STDERR_KEEP = 16 * 1024
#: Largest ffprobe answer read (a file with thousands of streams or tags says more).
PROBE_OUTPUT_MAX = 4 * 1024 * 1024
#: How long a killed process group may take to be reaped.
_REAP_WITHIN = 5.0
_PR_SET_PDEATHSIG = 1


def _child_limits(memory_bytes: int, file_bytes: int | None) -> Callable[[], None]:
    """What runs in the child between fork and exec: caps, and death with its parent."""
    libc = ctypes.CDLL(None, use_errno=True)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return apply


@dataclass(frozen=True)
class Completed:
    """A process that exited: its code, its standard output and the tail of its stderr."""

    returncode: int
    stdout: bytes
    stderr: str

    def reason(self) -> str:
        """The last meaningful lines of stderr, for an error message."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return " / ".join(lines[-3:])[-600:] or f"exit status {self.returncode}"


def run_guarded(
    command: Sequence[str],
    *,
    timeout: float,
    memory_bytes: int,
    file_bytes: int | None = None,
    on_line: Callable[[str], None] | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
    stdout_max: int = PROBE_OUTPUT_MAX,
    sandbox: NetworkSandbox | None = None,
) -> Completed:
    """Run ``command`` in its own process group under the caps, and wait for it.

    With ``on_line``, standard output is handed over line by line (FFmpeg's
    ``-progress`` report) instead of being collected; with ``on_chunk``, as the bytes
    come (decoded frames), a consumer that may raise to stop the run. Past ``timeout`` seconds the
    whole group is killed and :class:`EngineTimeout` raised; more than
    ``stdout_max`` bytes of output kill it too (:class:`LimitExceeded`). With
    ``sandbox``, the program starts in a network namespace of its own where it can.
    """
    name = Path(command[0]).name
    with engine_span(f"{name} run", engine=name) as span:
        done = _run_guarded(
            name, command, timeout, memory_bytes, file_bytes, on_line, on_chunk, stdout_max, sandbox
        )
        set_attributes(span, **{"exit_code": done.returncode, "output.bytes": len(done.stdout)})
    return done


def _run_guarded(
    name: str,
    command: Sequence[str],
    timeout: float,
    memory_bytes: int,
    file_bytes: int | None,
    on_line: Callable[[str], None] | None,
    on_chunk: Callable[[bytes], None] | None,
    stdout_max: int,
    sandbox: NetworkSandbox | None,
) -> Completed:
    argv = sandbox.command(command) if sandbox is not None else list(command)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_child_limits(memory_bytes, file_bytes),  # noqa: PLW1509 - caps set in the child
    )
    try:
        out, err = _drain(process, name, time.monotonic() + timeout, on_line, on_chunk, stdout_max)
    except EngineTimeout:
        log.warning("process killed at its time limit", program=name, seconds=timeout)
        raise EngineTimeout(name, timeout) from None
    finally:
        _kill_group(process)
    text = err.decode("utf-8", "replace")
    return Completed(process.returncode, out, text)


def _drain(
    process: subprocess.Popen[bytes],
    name: str,
    deadline: float,
    on_line: Callable[[str], None] | None,
    on_chunk: Callable[[bytes], None] | None,
    stdout_max: int,
) -> tuple[bytes, bytes]:
    """Read both pipes until they close (or the deadline passes), then reap the process."""
    assert process.stdout is not None and process.stderr is not None
    out, err, pending = bytearray(), bytearray(), b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise EngineTimeout(NAME, 0)
            for key, _ in selector.select(min(left, 1.0)):
                stream: IO[bytes] = key.fileobj  # type: ignore[assignment]
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    selector.unregister(stream)
                elif stream is process.stderr:
                    err += chunk
                    del err[:-STDERR_KEEP]
                elif on_chunk is not None:
                    on_chunk(chunk)
                elif on_line is not None:
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        on_line(line.decode("utf-8", "replace"))
                else:
                    out += chunk
                    if len(out) > stdout_max:
                        raise LimitExceeded(f"{name} output bytes", len(out), stdout_max)
    if not _exited(process.pid, deadline):
        raise EngineTimeout(NAME, 0)
    return bytes(out), bytes(err)


def _exited(pid: int, deadline: float) -> bool:
    """Wait until the process has exited, without reaping it: while it is a zombie its
    process-group id cannot be reused, so killing the group afterwards is safe."""
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill whatever is left of the process's group, reap it, close its pipes."""
    if process.returncode is None:  # not reaped yet, so the group id is still its own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_REAP_WITHIN)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


class ProgressReader:
    """Turns FFmpeg's ``-progress`` lines into fractions of ``total`` seconds of output."""

    def __init__(self, total: float | None, report: Callable[[float, str], None]) -> None:
        self.total = total
        self.report = report
        self.seconds = 0.0

    def __call__(self, line: str) -> None:
        key, _, value = line.partition("=")
        if key == "out_time_us" and value.strip().lstrip("-").isdigit():
            self.seconds = max(int(value) / 1e6, 0.0)
            if self.total:
                fraction = min(self.seconds / self.total, 1.0)
                self.report(fraction, f"encoded {self.seconds:.1f} of {self.total:.1f} s")
        elif key == "progress" and value.strip() == "end":
            self.report(1.0, "encoded")


class Ffmpeg:
    """FFmpeg and ffprobe as configured: program lookup, probing and guarded runs."""

    def __init__(self, settings: FfmpegSettings, sandbox: SandboxSettings | None = None) -> None:
        """``sandbox``: whether FFmpeg gets a network namespace (default: where the
        machine allows one)."""
        self.settings = settings
        self.sandbox: NetworkSandbox = network_sandbox(sandbox)

    # -- programs -------------------------------------------------------------------------
    def ffmpeg_program(self) -> str:
        found = shutil.which(self.settings.ffmpeg_path)
        if found is None:
            raise DependencyDown(
                f"{NAME} is not installed here: no program '{self.settings.ffmpeg_path}' "
                "(Debian: apt-get install ffmpeg)",
                engine=NAME,
            )
        return found

    def ffprobe_program(self) -> str:
        configured = self.settings.ffprobe_path
        if configured is None:
            sibling = Path(self.ffmpeg_program()).with_name("ffprobe")
            configured = str(sibling) if sibling.is_file() else "ffprobe"
        found = shutil.which(configured)
        if found is None:
            raise DependencyDown(
                f"ffprobe is not installed here: no program '{configured}'", engine=NAME
            )
        return found

    def input_args(self, path: Path, *, start: float | None = None) -> list[str]:
        """The options that open ``path`` as an input: no protocol but files, media
        containers only, and a seek to ``start`` seconds when given."""
        seek = ["-ss", f"{start:.6f}"] if start else []
        return [*GUARD, *seek, "-i", f"file:{path.resolve()}"]

    def _ffmpeg(self, log_level: str) -> list[str]:
        """FFmpeg, quiet but for what ``log_level`` lets through, never reading stdin."""
        return [
            self.ffmpeg_program(),
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            log_level,
        ]

    # -- running --------------------------------------------------------------------------
    @engine_call("ffmpeg")
    def probe(self, path: Path) -> Probe:
        """What ``path`` holds: container, duration and streams.

        Raises :class:`UnsupportedFormat` when FFmpeg cannot read it or finds no
        stream in it (a text file, a playlist, a container not admitted).
        """
        command = [
            self.ffprobe_program(),
            "-hide_banner",
            "-v",
            "error",
            *GUARD,
            "-show_format",
            "-show_streams",
            "-show_chapters",
            "-of",
            "json",
            f"file:{path.resolve()}",
        ]
        done = run_guarded(
            command,
            timeout=self.settings.probe_timeout,
            memory_bytes=self.settings.memory_limit_mb * 1024 * 1024,
            sandbox=self.sandbox,
        )
        if done.returncode != 0:
            raise UnsupportedFormat(
                "application/octet-stream",
                f"no audio or video that {NAME} may read was found: {done.reason()}",
            )
        try:
            data = json.loads(done.stdout or b"{}")
        except json.JSONDecodeError as exc:
            raise EngineFailed(
                f"ffprobe answered something that is not JSON: {exc}", engine=NAME
            ) from None
        probe = Probe.of(data)
        if not probe.streams:
            raise UnsupportedFormat(
                "application/octet-stream", f"{NAME} found no stream at all in the file"
            )
        return probe

    @engine_call("ffmpeg")
    def transcode(
        self,
        args: Sequence[str],
        *,
        expected_seconds: float | None,
        progress: Callable[[float, str], None],
        timeout: float | None = None,
        log_level: str = "error",
    ) -> Completed:
        """Run ``ffmpeg <args>`` (inputs, filters, codecs and an output named ``file:``,
        or ``-`` for the null muxer) with the caps, reporting progress over
        ``expected_seconds`` of output.

        The output is cut at ``max_output_bytes`` (``-fs``); the caller checks its size.
        ``log_level`` ``info`` keeps what filters report in the run's stderr (its tail,
        :data:`STDERR_KEEP` bytes). Raises :class:`EngineTimeout`, :class:`LimitExceeded`
        (memory) or :class:`ProcessingFailed` with FFmpeg's own words.
        """
        settings = self.settings
        limit = settings.timeout if timeout is None else min(timeout, settings.timeout)
        command = [
            *self._ffmpeg(log_level),
            "-progress",
            "pipe:1",
            "-y",
            *args[:-1],
            # Output options: they belong right before the output they apply to.
            "-threads",
            str(settings.threads),
            "-fs",
            str(settings.max_output_bytes),
            args[-1],
        ]
        started = time.monotonic()
        done = run_guarded(
            command,
            timeout=limit,
            memory_bytes=settings.memory_limit_mb * 1024 * 1024,
            file_bytes=settings.max_output_bytes + 1024 * 1024,
            on_line=ProgressReader(expected_seconds, progress),
            sandbox=self.sandbox,
        )
        if done.returncode != 0:
            raise _failure(done, settings.memory_limit_mb)
        log.debug("ffmpeg run", seconds=round(time.monotonic() - started, 3))
        return done

    def frames(
        self,
        args: Sequence[str],
        *,
        size: tuple[int, int],
        on_frame: Callable[[int, bytes], None],
        timeout: float | None = None,
    ) -> int:
        """Run ``ffmpeg <args>`` (inputs and filters that make frames of ``size``) with
        the caps and hand each decoded frame over as it comes: its number and its BGR
        bytes (``rawvideo``, ``bgr24``). Nothing but the frame being assembled is held,
        however long the input. Returns how many frames came.

        Raises as :meth:`transcode`; what ``on_frame`` raises stops the run.
        """
        frame_bytes = size[0] * size[1] * 3
        pending = bytearray()
        count = 0

        def take(chunk: bytes) -> None:
            nonlocal count
            pending.extend(chunk)
            while len(pending) >= frame_bytes:
                on_frame(count, bytes(pending[:frame_bytes]))
                del pending[:frame_bytes]
                count += 1

        self.stream([*args, "-f", "rawvideo", "-pix_fmt", "bgr24"], on_chunk=take, timeout=timeout)
        return count

    @engine_call("ffmpeg")
    def stream(
        self,
        args: Sequence[str],
        *,
        on_chunk: Callable[[bytes], None],
        timeout: float | None = None,
    ) -> None:
        """Run ``ffmpeg <args>`` (inputs, filters and the output's format) with the caps,
        its output written to standard output and handed to ``on_chunk`` as it comes
        (decoded frames, PCM samples). Raises as :meth:`transcode`."""
        settings = self.settings
        limit = settings.timeout if timeout is None else min(timeout, settings.timeout)
        command = [
            *self._ffmpeg("error"),
            *args,
            "-threads",
            str(settings.threads),
            "pipe:1",
        ]
        done = run_guarded(
            command,
            timeout=limit,
            memory_bytes=settings.memory_limit_mb * 1024 * 1024,
            on_chunk=on_chunk,
            sandbox=self.sandbox,
        )
        if done.returncode != 0:
            raise _failure(done, settings.memory_limit_mb)

    def version(self) -> str | None:
        """FFmpeg's version string, or None when it cannot run."""
        try:
            done = run_guarded(
                [self.ffmpeg_program(), "-hide_banner", "-version"],
                timeout=10,
                memory_bytes=self.settings.memory_limit_mb * 1024 * 1024,
            )
        except (DependencyDown, EngineTimeout):
            return None
        first = done.stdout.decode("utf-8", "replace").split("\n", 1)[0]
        return first.removeprefix("ffmpeg version ").split(" ", 1)[0] or None


def _failure(done: Completed, memory_mb: int) -> Exception:
    reason = done.reason()
    if "Cannot allocate memory" in done.stderr or done.returncode == -signal.SIGSEGV:
        return LimitExceeded(
            "FFmpeg memory (MiB)",
            memory_mb,
            memory_mb,
            f"{NAME} needed more than its memory limit of {memory_mb} MiB",
        )
    if done.returncode < 0:
        return EngineFailed(
            f"{NAME} was killed by signal {-done.returncode}: {reason}", engine=NAME
        )
    if "Invalid data found" in reason or "could not find codec" in reason.lower():
        return CorruptDocument("video", reason)
    return ProcessingFailed(f"{NAME} failed: {reason}")


# -- probe results ------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _rate(value: Any) -> float | None:
    """Frames per second from FFmpeg's ``num/den`` form; None for ``0/0``."""
    num, _, den = str(value or "").partition("/")
    top, bottom = _number(num), _number(den or "1")
    if not top or not bottom:
        return None
    return round(top / bottom, 3)


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise degrees a player turns the picture by (a display matrix, or the older
    ``rotate`` tag), as FFmpeg's own auto-rotation reads it."""
    for side in stream.get("side_data_list") or []:
        if isinstance(side, dict) and "rotation" in side:
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                return round(-float(side["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    number = _number(tag)
    return round(number) % 360 if number is not None else 0


_TAG_MAX = 50
_TAG_CHARS = 500


def _tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    items = list(raw.items())[:_TAG_MAX]
    return {str(k)[:100]: str(v)[:_TAG_CHARS] for k, v in items}


@dataclass(frozen=True)
class Stream:
    """One stream of a probed file, in the fields clients ask about."""

    index: int
    type: str
    codec: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Stream:
        kind = str(raw.get("codec_type") or "unknown")
        data: dict[str, Any] = {
            "index": int(raw.get("index") or 0),
            "type": kind,
            "codec": raw.get("codec_name"),
            "profile": raw.get("profile"),
            "bit_rate": _integer(raw.get("bit_rate")),
            "duration": _number(raw.get("duration")),
            "language": (raw.get("tags") or {}).get("language"),
        }
        if kind == "video":
            width, height = _integer(raw.get("width")), _integer(raw.get("height"))
            rotation = _rotation(raw)
            turned = rotation in (90, 270)
            data |= {
                "width": width,
                "height": height,
                "rotation": rotation,
                "display_width": height if turned else width,
                "display_height": width if turned else height,
                "fps": _rate(raw.get("avg_frame_rate")) or _rate(raw.get("r_frame_rate")),
                "pix_fmt": raw.get("pix_fmt"),
                "frames": _integer(raw.get("nb_frames")),
                "still": bool((raw.get("disposition") or {}).get("attached_pic")),
            }
        elif kind == "audio":
            data |= {
                "channels": _integer(raw.get("channels")),
                "channel_layout": raw.get("channel_layout"),
                "sample_rate": _integer(raw.get("sample_rate")),
            }
        return cls(data["index"], kind, data["codec"], data)

    def get(self, key: str) -> Any:
        return self.data.get(key)


@dataclass(frozen=True)
class Probe:
    """What ffprobe found in a file."""

    container: str | None
    duration: float | None
    size: int | None
    bit_rate: int | None
    streams: tuple[Stream, ...]
    tags: dict[str, str]
    #: The chapters: start and end (seconds) and title, in order.
    chapters: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(cls, data: dict[str, Any]) -> Probe:
        fmt = data.get("format") or {}
        streams = tuple(Stream.of(s) for s in data.get("streams") or [] if isinstance(s, dict))
        duration = _number(fmt.get("duration"))
        if duration is None:
            durations = [s.get("duration") for s in streams if s.get("duration") is not None]
            duration = max(durations) if durations else None
        return cls(
            container=fmt.get("format_name"),
            duration=duration,
            size=_integer(fmt.get("size")),
            bit_rate=_integer(fmt.get("bit_rate")),
            streams=streams,
            tags=_tags(fmt.get("tags")),
            chapters=tuple(
                _chapter(raw) for raw in data.get("chapters") or [] if isinstance(raw, dict)
            ),
        )

    @property
    def video(self) -> Stream | None:
        """The first moving-picture stream (cover art is not one)."""
        return next((s for s in self.streams if s.type == "video" and not s.get("still")), None)

    @property
    def audio(self) -> Stream | None:
        return next((s for s in self.streams if s.type == "audio"), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "duration": self.duration,
            "size": self.size,
            "bit_rate": self.bit_rate,
            "streams": [s.data for s in self.streams],
            "tags": self.tags,
            "chapters": list(self.chapters),
        }


def _chapter(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "start": _number(raw.get("start_time")),
        "end": _number(raw.get("end_time")),
        "title": _tags(raw.get("tags")).get("title"),
    }
