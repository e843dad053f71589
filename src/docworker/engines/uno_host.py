"""The bridge between the service and one LibreOffice, run under the system's Python.

LibreOffice is driven through UNO, whose Python module (``uno``, Debian's
``python3-uno``) exists only for the Python that LibreOffice was built with, not
in the service's virtual environment. So :mod:`docworker.engines.libreoffice`
runs this file as a script under that Python (``python3 -I uno_host.py ...``);
it imports nothing from docworker, only the standard library, ``uno`` and
unoserver's converter (for its connection and its table of export filters). The
script:

1. writes a hardened profile (:func:`write_profile`: no links followed, no remote
   URL reachable, no macros) and starts LibreOffice (``soffice.bin``) headless with
   it, listening
   for UNO on a loopback port, in this script's process group, and set to die
   with this script (``PR_SET_PDEATHSIG``); in a network namespace of its own
   (``--loopback-up``, see :mod:`docworker.engines.sandbox`) it first brings that
   namespace's loopback up, the only interface there, for UNO;
2. connects and says ``{"ready": true, ...}`` on stdout;
3. answers requests, one JSON object per line on stdin, one answer per line on
   stdout: ``{"op": "convert", "input", "output", "ext"}`` (plus the options of
   :class:`Exporter`) gets ``{"ok": true, ...}`` or ``{"ok": false, "error":
   "document" | "engine", "detail"}``. The service
   ends an instance by killing its process group.

When stdin ends — the service process exited or was killed — the script kills
its process group, LibreOffice included: no LibreOffice outlives its service.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

PR_SET_PDEATHSIG = 1
#: LibreOffice's exit code asking to be started again (first start on a new profile).
RESTART_REQUESTED = 81
#: UNO exception types that mean LibreOffice itself failed, not the document.
ENGINE_FAILURES = frozenset({"DisposedException", "RuntimeException"})
CONNECT_RETRY = 0.1
#: com.sun.star.document.MacroExecMode.NEVER_EXECUTE and UpdateDocMode.NO_UPDATE.
NEVER_EXECUTE = 0
NO_UPDATE = 0


#: ioctl requests on a network interface's flags (linux/sockios.h), and its "up" flag.
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def bring_loopback_up() -> None:
    """Bring up ``lo``, which a new network namespace has down: UNO's port lives on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        if not flags & IFF_UP:
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def answer_channel() -> TextIO:
    """The answers' channel: stdout as it was; fd 1 itself then goes to stderr, so that
    nothing a library prints can garble the answers."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return channel


def say(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def kill_group() -> None:
    """Kill this script's process group: LibreOffice, then this script."""
    os.killpg(0, signal.SIGKILL)


def read_requests(requests: queue.Queue[dict[str, Any]], owned: str, offices: list[Office]) -> None:
    """Queue the requests read from stdin; at its end, take everything down.

    The service ends an instance by killing its process group, so stdin ends only
    when the service process itself is gone (killed, crashed, or exited without
    stopping its engine): nobody else will delete the engine's folder then, so this
    script does, once LibreOffice, which writes in it, is dead.
    """
    for line in sys.stdin.buffer:
        if line.strip():
            requests.put(json.loads(line))
    for office in offices:
        office.kill()
    shutil.rmtree(owned, ignore_errors=True)
    kill_group()


_SCRIPTING = "/org.openoffice.Office.Common/Security/Scripting"
#: Settings of every new profile: no folder is a trusted location, so LibreOffice
#: follows no link of a document (a linked image, an OLE link), and macros never run.
HARDENED_SETTINGS = (
    (_SCRIPTING, "BlockUntrustedRefererLinks", "true"),
    (_SCRIPTING, "DisableMacrosExecution", "true"),
    (_SCRIPTING, "MacroSecurityLevel", "3"),
)
_UCB_PROVIDERS = (
    "/org.openoffice.ucb.Configuration/ContentProviders/Local/SecondaryKeys/Office/ProviderData"
)
#: LibreOffice's content providers for remote URLs (http, https and WebDAV, FTP, CMIS),
#: removed from every new profile. The Word importer fetches an ``INCLUDEPICTURE``
#: field's URL itself, whatever ``BlockUntrustedRefererLinks`` says; without these
#: providers LibreOffice has no way to reach a remote URL at all.
REMOTE_PROVIDERS = ("Provider3", "Provider4", "Provider6", "Provider12", "Provider43")


def write_profile(profile_url: str) -> None:
    """Write the new profile's ``user/registrymodifications.xcu`` before LibreOffice
    first starts: :data:`HARDENED_SETTINGS` set, :data:`REMOTE_PROVIDERS` removed."""
    user = os.path.join(unquote(urlsplit(profile_url).path), "user")
    os.makedirs(user, exist_ok=True)
    settings = "".join(
        f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse">'
        f"<value>{value}</value></prop></item>"
        for path, name, value in HARDENED_SETTINGS
    )
    removed = "".join(
        f'<item oor:path="{_UCB_PROVIDERS}"><node oor:name="{name}" oor:op="remove"/></item>'
        for name in REMOTE_PROVIDERS
    )
    with open(os.path.join(user, "registrymodifications.xcu"), "w", encoding="utf-8") as fh:
        fh.write(
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
            'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"{settings}{removed}</oor:items>"
        )


class Office:
    """The LibreOffice process, started so that it dies with this script."""

    def __init__(self, program: str, profile_url: str, port: int) -> None:
        self.port = port
        self.command = [
            program,
            "--headless",
            "--invisible",
            "--nocrashreport",
            "--nodefault",
            "--nologo",
            "--nofirststartwizard",
            "--norestore",
            f"-env:UserInstallation={profile_url}",
            f"--accept=socket,host=127.0.0.1,port={port},tcpNoDelay=1;urp;",
        ]
        self.stopping = False
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl
        self.process = self._launch()

    def _launch(self) -> subprocess.Popen[bytes]:
        parent = os.getpid()
        prctl = self._prctl

        def die_with_parent() -> None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

        return subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - async-signal-safe: one syscall
        )

    def connect(self, converter_class: Any) -> Any:
        """A connected converter, once LibreOffice listens; the service bounds the wait."""
        while True:
            code = self.process.poll()
            if code == RESTART_REQUESTED:
                self.process = self._launch()
                continue
            if code is not None:
                raise SystemExit(f"LibreOffice exited with code {code} while starting")
            try:
                return converter_class(interface="127.0.0.1", port=str(self.port))
            except Exception:  # noqa: BLE001 - UNO's NoConnectException until it listens
                time.sleep(CONNECT_RETRY)

    def watch(self) -> None:
        """Take the script down when LibreOffice dies, so the service sees it and restarts."""
        self.process.wait()
        if not self.stopping:
            kill_group()

    def kill(self) -> None:
        self.stopping = True
        self.process.kill()
        self.process.wait()


class SafeDesktop:
    """LibreOffice's desktop, loading every document hidden, without macros or links.

    unoserver's converter loads with ``ReadOnly`` only. Without ``Hidden`` the headless
    Calc of LibreOffice 7.4 aborts on some .xls files while drawing a cursor; macros
    and links to other files or URLs are never wanted when converting untrusted files.
    """

    def __init__(self, desktop: Any, property_value: Any) -> None:
        self._desktop = desktop
        self._extra = (
            property_value(Name="Hidden", Value=True),
            property_value(Name="MacroExecutionMode", Value=NEVER_EXECUTE),
            property_value(Name="UpdateDocMode", Value=NO_UPDATE),
        )

    def loadComponentFromURL(
        self, url: str, target: str, flags: int, properties: tuple[Any, ...]
    ) -> Any:
        return self._desktop.loadComponentFromURL(url, target, flags, (*properties, *self._extra))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._desktop, name)


class Exporter:
    """Loads a document and stores it in another format, with the request's options.

    A request: ``{"op": "convert", "input", "output", "ext"}``, and optionally
    ``"password"`` (to open an encrypted document), ``"landscape"`` (turn every page
    style to landscape before storing) and ``"filter_data"`` (the export filter's
    options, e.g. ``{"PageRange": "1-2", "SelectPdfVersion": 2}`` for PDF).
    """

    def __init__(self, converter: Any, uno: Any, property_value: Any) -> None:
        self.converter = converter
        self.uno = uno
        self.property_value = property_value

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request; every failure is answered, none ends the loop."""
        try:
            self.export(request)
        except Exception as exc:  # noqa: BLE001 - a document must not end the bridge
            kind = "engine" if type(exc).__name__ in ENGINE_FAILURES else "document"
            return {"ok": False, "error": kind, "detail": f"{type(exc).__name__}: {exc}"[:1000]}
        return {"ok": True}

    def export(self, request: dict[str, Any]) -> None:
        prop = self.property_value
        load = [prop(Name="ReadOnly", Value=True)]
        if request.get("password"):
            load.append(prop(Name="Password", Value=request["password"]))
        url = self.uno.systemPathToFileUrl(os.path.abspath(request["input"]))
        document = self.converter.desktop.loadComponentFromURL(url, "_default", 0, tuple(load))
        if document is None:
            raise ValueError("the document could not be opened")
        try:
            if request.get("landscape"):
                turn_landscape(document)
            self._store(document, request)
        finally:
            document.close(True)

    def _store(self, document: Any, request: dict[str, Any]) -> None:
        prop = self.property_value
        output = self.uno.systemPathToFileUrl(os.path.abspath(request["output"]))
        base = output.rsplit(".", 1)[0]
        export_type = self.converter.type_service.queryTypeByURL(f"{base}.{request['ext']}")
        if not export_type:
            raise ValueError(f"no file type has the extension {request['ext']}")
        names = set(document.getSupportedServiceNames())
        kinds = [kind for kind in DOC_TYPES if kind in names]
        found = self.converter.find_filter(kinds[0], export_type) if kinds else None
        if found is None:
            raise ValueError(f"this document cannot be stored as {request['ext']}")
        store = [prop(Name="FilterName", Value=found), prop(Name="Overwrite", Value=True)]
        options = request.get("filter_data") or {}
        data = [prop(Name=name, Value=value) for name, value in options.items()]
        if data:
            value = self.uno.Any("[]com.sun.star.beans.PropertyValue", tuple(data))
            store.append(prop(Name="FilterData", Value=value))
        document.storeToURL(output, tuple(store))


#: The document services LibreOffice converts from (unoserver's list, in its order).
DOC_TYPES = (
    "com.sun.star.sheet.SpreadsheetDocument",
    "com.sun.star.text.TextDocument",
    "com.sun.star.presentation.PresentationDocument",
    "com.sun.star.drawing.DrawingDocument",
    "com.sun.star.text.WebDocument",
)


def turn_landscape(document: Any) -> None:
    """Turn every portrait page style of a text document or spreadsheet to landscape
    (width and height swapped); presentations and drawings have no page styles and
    keep their slide size."""
    families = getattr(document, "StyleFamilies", None)
    if families is None or not families.hasByName("PageStyles"):
        return
    styles = families.getByName("PageStyles")
    for name in styles.getElementNames():
        style = styles.getByName(name)
        if style.Height > style.Width:
            width, height = style.Width, style.Height
            style.IsLandscape = True
            style.Width, style.Height = height, width


def version(converter: Any) -> str:
    try:
        return str(converter.uno_info())
    except Exception:  # noqa: BLE001 - the version is for health only
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", required=True, help="folder holding the unoserver package")
    parser.add_argument("--soffice", required=True, help="LibreOffice's program")
    parser.add_argument("--profile", required=True, help="profile folder, as a file: URL")
    parser.add_argument("--port", required=True, type=int, help="loopback port for UNO")
    parser.add_argument("--owned", required=True, help="the service's folder for this engine")
    parser.add_argument(
        "--loopback-up", action="store_true", help="bring lo up first (a new network namespace)"
    )
    args = parser.parse_args()
    channel = answer_channel()
    if args.loopback_up:
        try:
            bring_loopback_up()
        except OSError as exc:
            say(channel, {"fatal": "network", "detail": f"the loopback could not be set up: {exc}"})
            return 3
    sys.path.insert(0, args.path)
    try:
        # uno is LibreOffice's own module; importing it makes com.sun.star importable.
        import uno  # type: ignore[import-not-found]
        from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
        from unoserver.converter import UnoConverter
    except ImportError as exc:
        say(channel, {"fatal": "missing", "detail": str(exc)})
        return 3
    requests: queue.Queue[dict[str, Any]] = queue.Queue()
    offices: list[Office] = []
    reader = threading.Thread(target=read_requests, args=(requests, args.owned, offices))
    reader.daemon = True
    reader.start()
    write_profile(args.profile)
    office = Office(args.soffice, args.profile, args.port)
    offices.append(office)
    converter = office.connect(UnoConverter)
    converter.desktop = SafeDesktop(converter.desktop, PropertyValue)
    exporter = Exporter(converter, uno, PropertyValue)
    threading.Thread(target=office.watch, daemon=True).start()
    say(channel, {"ready": True, "version": version(converter), "office_pid": office.process.pid})
    while True:
        say(channel, exporter.answer(requests.get()))


if __name__ == "__main__":
    sys.exit(main())
