"""LibreOffice, kept warm: converts documents (.doc → .docx, .xls → .xlsx, ...) on request.

One :class:`LibreOfficeEngine` owns at most one LibreOffice instance at a time,
looked after by the shared :class:`~docworker.engines.supervisor.Supervisor`:
started on the first conversion, one conversion at a time with a bounded queue,
killed past the timeout, restarted after ``restart_after`` conversions or a
crash, stopped when idle. Each worker process of the local executor owns one
engine, so conversions run as many at once as there are workers.

An instance is two processes in a process group (a session) of their own: the
bridge :mod:`docworker.engines.uno_host`, run by the system Python that has
LibreOffice's ``uno`` module, and LibreOffice under it, with a fresh profile
folder and a free loopback port. The service talks to the bridge over its
stdin/stdout, so the bridge sees the service die (its stdin ends) and kills the
group; LibreOffice is also set to die with the bridge. A timeout kills the group.
Where the machine allows it, both run in a network namespace of their own
(:mod:`docworker.engines.sandbox`): UNO's port is then on a loopback nobody else
sees, and LibreOffice has no way out, whatever a document links to.

Files: the engine keeps one temporary folder (the bridge's import path, the
instances' profiles and temporary files, the converted files), deleted by
:meth:`LibreOfficeEngine.stop` and at interpreter exit.
:meth:`LibreOfficeEngine.convert` returns a new file in that folder that belongs to
the caller, who deletes it once read.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from docworker.config import LibreOfficeSettings, SandboxSettings
from docworker.engines.sandbox import NetworkSandbox, network_sandbox
from docworker.engines.supervisor import Supervisor
from docworker.errors import (
    CorruptDocument,
    DependencyDown,
    EngineFailed,
    InvalidParameter,
    figure,
)
from docworker.tracing import engine_span, set_attributes

log = structlog.get_logger(__name__)

NAME = "LibreOffice"
HOST_SCRIPT = Path(__file__).with_name("uno_host.py")
_EXTENSION = re.compile(r"[a-z0-9]{1,10}")
#: How long a killed instance may take to be reaped.
_REAP_WITHIN = 5.0
#: How much of the bridge's log an error quotes when an instance fails to start.
_LOG_TAIL = 600


FilterValue = str | int | bool


@dataclass(frozen=True)
class ExportOptions:
    """How a conversion opens and stores the document, beyond its target type."""

    #: The password of an encrypted document.
    password: str | None = field(default=None, repr=False)
    #: Turn the pages of a text document or spreadsheet to landscape before storing.
    landscape: bool = False
    #: The export filter's options (its ``FilterData``), e.g. for PDF ``PageRange``,
    #: ``SelectPdfVersion``, ``ExportFormFields``.
    filter_data: Mapping[str, FilterValue] = field(default_factory=dict)

    def as_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {}
        if self.password:
            request["password"] = self.password
        if self.landscape:
            request["landscape"] = True
        if self.filter_data:
            request["filter_data"] = dict(self.filter_data)
        return request


class Converter(Protocol):
    """What converts a file through LibreOffice: :meth:`LibreOfficeEngine.convert`."""

    def __call__(
        self, path: Path, target_ext: str, *, options: ExportOptions | None = None
    ) -> Path: ...


class _Instance:
    """One running bridge and LibreOffice, and the folder they use."""

    def __init__(self, process: subprocess.Popen[bytes], folder: Path) -> None:
        self.process = process
        self.folder = folder
        self.version = "unknown"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        # The bridge leads its own process group: LibreOffice goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        # Killed, not asked to quit: a graceful exit takes LibreOffice a second and
        # saves nothing worth keeping, as the profile is deleted with the folder.
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_REAP_WITHIN)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its answer (the supervisor's watchdog bounds it)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (OSError, ValueError):
            line = b""
        if not line:
            raise EngineFailed(f"{NAME} exited during the conversion")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def convert(self, source: Path, output: Path, options: ExportOptions) -> None:
        """Have LibreOffice store ``source`` as ``output``, whose extension names the type."""
        ext = output.suffix.lstrip(".")
        message = {"op": "convert", "input": str(source), "output": str(output), "ext": ext}
        answer = self.request(message | options.as_request())
        if answer.get("ok") and output.is_file():
            return
        detail = str(answer.get("detail", "no output"))
        if answer.get("error") == "engine":
            raise EngineFailed(f"{NAME} failed during a conversion: {detail}")
        log.info("conversion refused", engine=NAME, target=ext, detail=detail)
        fmt = source.suffix.lstrip(".").lower() or "input"
        raise CorruptDocument(fmt, f"{NAME} could not open it or store it as {ext}")

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """The bridge's first line, once it has connected to LibreOffice."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise EngineFailed(f"{NAME} did not start within {figure(timeout)} s")
        line = self.process.stdout.readline()
        if not line:
            raise EngineFailed(f"{NAME} failed to start: {self.log_tail() or 'no message'}")
        hello: dict[str, Any] = json.loads(line)
        return hello

    def log_tail(self) -> str:
        try:
            text = (self.folder / "bridge.log").read_text(errors="replace")
        except OSError:
            return ""
        return " ".join(text[-_LOG_TAIL:].split())


class LibreOfficeEngine:
    """Document conversion through a supervised, lazily started LibreOffice."""

    def __init__(
        self, settings: LibreOfficeSettings, sandbox: SandboxSettings | None = None
    ) -> None:
        """``sandbox``: whether LibreOffice gets a network namespace (default: where
        the machine allows one)."""
        self.settings = settings
        self._sandbox_settings = sandbox or SandboxSettings()
        self._supervisor: Supervisor[_Instance] = Supervisor(
            NAME,
            self._start,
            task_timeout=settings.timeout,
            restart_after=settings.restart_after,
            max_queue=settings.max_queue,
            start_timeout=settings.start_timeout,
            idle_shutdown=settings.idle_shutdown,
        )
        self._folder_lock = threading.Lock()
        self._folder: Path | None = None

    def convert(
        self,
        path: Path,
        target_ext: str,
        *,
        timeout: float | None = None,
        options: ExportOptions | None = None,
    ) -> Path:
        """Convert ``path`` to the type of extension ``target_ext`` (``"docx"``, ``"pdf"``).

        Returns the new file, which belongs to the caller (delete it once read).
        ``timeout`` shortens the configured limit for this conversion (e.g. to what
        is left of a job's time); ``options`` open and store the document as they say
        (password, landscape, the export filter's options).
        Raises :class:`CorruptDocument` when LibreOffice cannot open the file or
        cannot store it as ``target_ext``, :class:`DependencyDown` when LibreOffice
        is not installed, and the supervisor's errors (queue full, timeout, crash).
        """
        ext = target_ext.lower().lstrip(".")
        if not _EXTENSION.fullmatch(ext):
            raise InvalidParameter("target", f"'{target_ext}' is not a file extension")
        source = path.resolve()
        output = self._workfolder() / "out" / f"{uuid.uuid4().hex}.{ext}"
        chosen = options or ExportOptions()
        limit = min(timeout, self.settings.timeout) if timeout else self.settings.timeout
        started = time.monotonic()
        attributes = {"engine": NAME, "target": ext, "input.bytes": source.stat().st_size}
        try:
            with engine_span("libreoffice convert", **attributes) as span:
                self._supervisor.run(
                    lambda instance: instance.convert(source, output, chosen), timeout=limit
                )
                set_attributes(span, **{"output.bytes": output.stat().st_size})
        except BaseException:
            output.unlink(missing_ok=True)
            raise
        log.debug("converted", engine=NAME, target=ext, seconds=time.monotonic() - started)
        return output

    def status(self) -> dict[str, Any]:
        """Health: installed or not, the instance's state and the counters."""
        state = self._supervisor.status()
        state["conversions"] = state.pop("tasks")
        state["installed"] = self.unavailable_reason() is None
        instance = self._supervisor.current
        state["version"] = instance.version if instance is not None else None
        state["network"] = self.sandbox.holds
        return state

    @property
    def sandbox(self) -> NetworkSandbox:
        """How LibreOffice is kept off the network here."""
        return network_sandbox(self._sandbox_settings)

    def stop(self) -> None:
        """Stop the instance and delete the engine's folder (with any file not yet deleted)."""
        self._supervisor.stop()
        with self._folder_lock:
            folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            atexit.unregister(self.stop)

    def __enter__(self) -> LibreOfficeEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- starting an instance -----------------------------------------------------------
    def _program(self) -> str | None:
        """LibreOffice's real program: ``soffice.bin`` beside the ``soffice`` launcher.

        The launcher script runs ``oosplash``, which runs ``soffice.bin`` as its child;
        started directly, ``soffice.bin`` is the process the bridge can tie to itself.
        """
        configured = self.settings.soffice_path
        found = shutil.which(configured)
        if found is None:
            return None
        real = Path(found).resolve()
        binary = real.with_name("soffice.bin")
        return str(binary) if real.name == "soffice" and binary.is_file() else str(real)

    def unavailable_reason(self) -> str | None:
        """Why LibreOffice cannot run here, or None."""
        if self._program() is None:
            return f"no LibreOffice program '{self.settings.soffice_path}'"
        if not os.access(self.settings.python_path, os.X_OK):
            return f"no Python at {self.settings.python_path} to run its bridge"
        if importlib.util.find_spec("unoserver") is None:
            return "the unoserver package is missing"
        return None

    def _workfolder(self) -> Path:
        with self._folder_lock:
            if self._folder is None:
                folder = Path(tempfile.mkdtemp(prefix="docworker-libreoffice-"))
                (folder / "out").mkdir()
                (folder / "python").mkdir()
                spec = importlib.util.find_spec("unoserver")
                if spec is not None and spec.submodule_search_locations:
                    package = Path(next(iter(spec.submodule_search_locations)))
                    (folder / "python" / "unoserver").symlink_to(package)
                self._folder = folder
                atexit.register(self.stop)
            return self._folder

    def _start(self, timeout: float) -> _Instance:
        missing = self.unavailable_reason()
        if missing is not None:
            raise DependencyDown(f"{NAME} is not installed here: {missing}", engine=NAME)
        program = self._program()
        assert program is not None
        sandbox = self.sandbox
        sandbox.require()
        workfolder = self._workfolder()
        folder = Path(tempfile.mkdtemp(prefix="instance-", dir=workfolder))
        bridge = [
            str(self.settings.python_path),
            "-I",
            str(HOST_SCRIPT),
            "--path",
            str(workfolder / "python"),
            "--soffice",
            program,
            "--profile",
            (folder / "profile").as_uri(),
            "--port",
            str(_free_port()),
            "--owned",
            str(workfolder),
        ]
        if sandbox.isolated:
            bridge.append("--loopback-up")
        command = sandbox.command(bridge, configures=True)
        # LibreOffice's own temporary files (lu*.tmp) go in the instance's folder, deleted
        # with it: a killed instance cleans nothing up itself.
        (folder / "tmp").mkdir()
        env = {**os.environ, "TMPDIR": str(folder / "tmp")}
        with open(folder / "bridge.log", "ab") as bridge_log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=bridge_log,
                start_new_session=True,
                env=env,
            )
        instance = _Instance(process, folder)
        try:
            hello = instance.wait_ready(timeout)
        except BaseException:
            instance.close()
            raise
        if hello.get("fatal") == "network":
            instance.close()
            raise DependencyDown(f"{NAME} could not start: {hello.get('detail', '')}", engine=NAME)
        if "fatal" in hello:
            detail = hello.get("detail", "")
            instance.close()
            raise DependencyDown(
                f"{NAME} is not installed here: {self.settings.python_path} cannot load "
                f"its 'uno' module (Debian: python3-uno): {detail}",
                engine=NAME,
            )
        instance.version = str(hello.get("version", "unknown"))
        return instance


def _free_port() -> int:
    """A loopback port free now (LibreOffice binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
