"""Headless Chromium, kept warm: HTML (and Markdown) → PDF and screenshots, scripts run.

For pages that need JavaScript to show their content; WeasyPrint stays the default
HTML → PDF engine (no scripts, a tenth of the memory). Two functions are the
surface other code calls; both render in this process's shared engine
(:func:`shared_engine`), started on first use:

``print_pdf(source, output, *, settings, policy, root=None, options=PdfOptions(),
wait=WaitOptions(), timeout=None) -> RenderInfo``
    ``source``: an HTML file, or a Markdown file (``.md``, ``.markdown``), which is
    rendered to an HTML page beside it first. ``output``: where the PDF is written.
    ``settings``: :class:`~docworker.config.ChromiumSettings` (``ctx.settings.chromium``);
    ``policy``: the :class:`~docworker.url_policy.UrlPolicy` (``ctx.url_policy``);
    ``root``: the folder the page may read local files from (default: ``source``'s).
    :class:`PdfOptions`: page size in mm, landscape, margins in mm (top, right,
    bottom, left), header and footer templates (Chromium's: elements of class
    ``date``, ``title``, ``url``, ``pageNumber``, ``totalPages`` are filled in),
    extra CSS, print background, scale, page ranges, CSS page size preferred, the CSS
    media type (``print`` by default, or ``screen``).
``screenshot(source, output, *, settings, policy, root=None, options=ScreenshotOptions(),
wait=WaitOptions(), timeout=None) -> RenderInfo``
    The same inputs; :class:`ScreenshotOptions`: PNG, JPEG or WebP, quality, viewport
    width and height, full page or the viewport, device scale factor, a CSS selector
    to clip to, a transparent background, the CSS media type (``screen`` by default).

:class:`WaitOptions` says when the page is ready (``load``, ``domcontentloaded`` or
``networkidle``, then an element matching a selector, then a delay), all within
``timeout`` (default and ceiling: ``settings.timeout``). Errors: :class:`LimitExceeded`
(422) when the page is not ready in time (a script that never ends: the browser is
killed and restarted), :class:`InvalidParameter` for a selector that is wrong or
matches nothing, :class:`CorruptDocument` when the page does not open,
:class:`DependencyDown` when Chromium is not installed, and the supervisor's
(:class:`QueueFull`, :class:`EngineTimeout`, :class:`EngineFailed`).

The browser runs in a session (process group) of its own, driven over its debugging
pipe (:mod:`docworker.engines.cdp`), never over a port; it exits when the pipe
closes, so it dies with this process. Its network is closed four ways: every
request is paused and answered by :class:`~docworker.engines.chromium_requests.RequestGuard`
(remote resources are fetched by :class:`UrlPolicy`, so the browser connects
nowhere), its proxy is a loopback port held bound and never listening (so anything
not paused, e.g. a WebSocket, is refused), its resolver resolves no name, and,
where the machine allows it, it runs in a network namespace of its own with no
interface up (:mod:`docworker.engines.sandbox`). As the service, not the browser,
fetches the allow-listed remote resources (``fetch.allow``), the namespace holds
whatever that list says.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing.util
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from docworker.config import ChromiumSettings, SandboxSettings
from docworker.engines.cdp import CdpConnection, CdpError
from docworker.engines.chromium_capture import (
    Media,
    PdfOptions,
    RenderInfo,
    ScreenshotOptions,
    page_for,
    render_pdf,
    render_screenshot,
)
from docworker.engines.chromium_page import Overdue, PageSession, WaitOptions, WaitUntil
from docworker.engines.chromium_requests import RequestGuard
from docworker.engines.image_formats import PageFormat
from docworker.engines.sandbox import NetworkSandbox, network_sandbox
from docworker.engines.supervisor import Supervisor
from docworker.errors import (
    DependencyDown,
    DocworkerError,
    EngineFailed,
    InvalidParameter,
    LimitExceeded,
    figure,
)
from docworker.url_policy import UrlPolicy

__all__ = [
    "ChromiumEngine",
    "Media",
    "PageFormat",
    "PdfOptions",
    "RenderInfo",
    "ScreenshotOptions",
    "WaitOptions",
    "WaitUntil",
    "print_pdf",
    "screenshot",
    "shared_engine",
]

log = structlog.get_logger(__name__)

NAME = "Chromium"
#: Debian's launcher is a shell script; the browser binary it starts is this.
_DEBIAN_BINARY = Path("/usr/lib/chromium/chromium")
#: Past the render's own deadline, the supervisor's watchdog kills the browser.
_WATCHDOG_GRACE = 10.0
_REAP_WITHIN = 5.0
_LOG_TAIL = 600
#: The longest path a Unix socket may have (``sun_path``, less its closing NUL).
_SOCKET_PATH_MAX = 107
#: What Chromium adds to its temporary folder for its process-singleton socket
#: (``/org.chromium.Chromium.XXXXXX/SingletonSocket``), with some room to spare.
_SINGLETON_TAIL = 56

_FLAGS = (
    "--headless",
    "--remote-debugging-pipe",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--no-pings",
    "--metrics-recording-only",
    "--dns-prefetch-disable",
    "--disable-features=Translate,MediaRouter,OptimizationHints,DnsOverHttps,"
    "NetworkPrediction,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--block-new-web-contents",
    "--deny-permission-prompts",
    "--mute-audio",
    "--hide-scrollbars",
    "--password-store=basic",
    "--use-mock-keychain",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)


class _Browser:
    """One running browser: its process group, its pipe, its folder and its dead proxy."""

    def __init__(
        self,
        pid: int,
        cdp: CdpConnection,
        folder: Path,
        proxy: socket.socket,
        temp_fd: int | None = None,
    ) -> None:
        self._pid = pid
        self.cdp = cdp
        self.folder = folder
        self._proxy = proxy
        #: The open folder the browser's temporary folder is reached through, if any
        #: (see :func:`_temp_dir`).
        self._temp_fd = temp_fd
        self._lock = threading.Lock()
        self._exited = False
        self.version = "unknown"
        # A page opened ahead of the next render (a new context's renderer takes
        # ~0.4 s to start), and the thread opening it.
        self._spare: PageSession | None = None
        self._spare_thread: threading.Thread | None = None
        self._closed = False

    @property
    def pid(self) -> int:
        return self._pid

    def alive(self) -> bool:
        with self._lock:
            if self._exited:
                return False
            try:
                done, _ = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                done = self._pid
            self._exited = done != 0
            return not self._exited

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, signal.SIGKILL)

    def kill_and_reap(self) -> None:
        """Kill the group and wait (briefly) until the browser is gone."""
        self.kill()
        deadline = time.monotonic() + _REAP_WITHIN
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)

    def page(self, deadline: float) -> PageSession:
        """A fresh page for a render: the one opened ahead, or a new one."""
        thread = self._spare_thread
        if thread is not None:
            thread.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            page, self._spare = self._spare, None
        if page is None:
            page = PageSession(self.cdp, deadline=deadline).open()
        page.deadline = deadline
        return page

    def open_spare(self, timeout: float) -> None:
        """Open the next render's page now, in the background."""

        def prepare() -> None:
            page = PageSession(self.cdp, deadline=time.monotonic() + timeout)
            try:
                page.open()
            except (CdpError, Overdue, DocworkerError):
                page.close(dispose=False)
                return
            with self._lock:
                keep = not self._closed and self._spare is None
                if keep:
                    self._spare = page
            if not keep:
                page.close()

        thread = threading.Thread(target=prepare, name="chromium-spare", daemon=True)
        self._spare_thread = thread
        thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        self.kill_and_reap()
        if spare is not None:
            spare.close(dispose=False)
        thread = self._spare_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_REAP_WITHIN)
        self.cdp.close()
        self._proxy.close()
        if self._temp_fd is not None:
            os.close(self._temp_fd)
            self._temp_fd = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            text = (self.folder / "chromium.log").read_text(errors="replace")
        except OSError:
            return ""
        return " ".join(text[-_LOG_TAIL:].split())


class ChromiumEngine:
    """Renders pages in a supervised, lazily started headless Chromium."""

    def __init__(self, settings: ChromiumSettings, sandbox: SandboxSettings | None = None) -> None:
        """``sandbox``: whether the browser gets a network namespace (default: where the
        machine allows one)."""
        self.settings = settings
        self._sandbox_settings = sandbox or SandboxSettings()
        self._supervisor: Supervisor[_Browser] = Supervisor(
            NAME,
            self._start,
            task_timeout=settings.timeout + _WATCHDOG_GRACE,
            restart_after=settings.restart_after,
            max_queue=settings.max_queue,
            start_timeout=settings.start_timeout,
            idle_shutdown=settings.idle_shutdown,
        )
        self._webp = True

    def print_pdf(
        self,
        source: Path,
        output: Path,
        *,
        policy: UrlPolicy,
        root: Path | None = None,
        options: PdfOptions | None = None,
        wait: WaitOptions | None = None,
        timeout: float | None = None,
    ) -> RenderInfo:
        """``source`` (HTML or Markdown) printed to the PDF ``output``; see the module."""
        chosen = options or PdfOptions()
        return self._render(
            source,
            root,
            policy,
            timeout,
            lambda page, url: render_pdf(page, url, output, chosen, wait or WaitOptions()),
        )

    def screenshot(
        self,
        source: Path,
        output: Path,
        *,
        policy: UrlPolicy,
        root: Path | None = None,
        options: ScreenshotOptions | None = None,
        wait: WaitOptions | None = None,
        timeout: float | None = None,
    ) -> RenderInfo:
        """An image of ``source`` (HTML or Markdown) written to ``output``; see the module."""
        chosen = options or ScreenshotOptions()
        limits = (self.settings.max_viewport, self.settings.max_screenshot_height)

        def shoot(page: PageSession, url: str) -> RenderInfo:
            info, self._webp = render_screenshot(
                page, url, output, chosen, wait or WaitOptions(), limits, self._webp
            )
            return info

        return self._render(source, root, policy, timeout, shoot)

    def _render(
        self,
        source: Path,
        root: Path | None,
        policy: UrlPolicy,
        timeout: float | None,
        job: Callable[[PageSession, str], RenderInfo],
    ) -> RenderInfo:
        if not source.is_file():
            raise InvalidParameter("source", f"no page file at {source.name}")
        page_file = page_for(source)
        folder = (root or source.parent).resolve()
        limit = min(timeout, self.settings.timeout) if timeout else self.settings.timeout
        guard = RequestGuard(folder, policy, self.settings.max_remote_requests)

        def task(browser: _Browser) -> RenderInfo:
            page: PageSession | None = None
            overdue = False
            try:
                page = browser.page(time.monotonic() + limit)
                page.guard = guard
                info = job(page, page_file.resolve().as_uri())
                return replace(info, requests=guard.summary())
            except Overdue as exc:
                overdue = True
                # A script that never ends keeps its renderer busy: start afresh.
                browser.kill_and_reap()
                raise LimitExceeded(
                    "render time",
                    limit,
                    limit,
                    detail=f"the page was not ready within {figure(limit)} s (waiting for "
                    f"{exc.stage}; a script that never ends?); the browser was restarted",
                ) from None
            except CdpError as exc:
                raise EngineFailed(f"{NAME} failed: {exc}") from None
            finally:
                if page is not None:
                    page.close(dispose=not overdue)
                if not overdue and browser.alive():
                    browser.open_spare(self.settings.start_timeout)

        started = time.monotonic()
        result = self._supervisor.run(task, timeout=limit + _WATCHDOG_GRACE)
        log.debug("rendered", engine=NAME, seconds=round(time.monotonic() - started, 3))
        return result

    def status(self) -> dict[str, Any]:
        """Health: installed or not, the browser's state and the counters."""
        state = self._supervisor.status()
        state["renders"] = state.pop("tasks")
        state["installed"] = self.unavailable_reason() is None
        browser = self._supervisor.current
        state["version"] = browser.version if browser is not None else None
        state["network"] = self.sandbox.holds
        return state

    @property
    def sandbox(self) -> NetworkSandbox:
        """How the browser is kept off the network here, beyond its own rules."""
        return network_sandbox(self._sandbox_settings)

    def stop(self) -> None:
        """Stop the browser, if one runs; a later render starts a new one."""
        self._supervisor.stop()

    def __enter__(self) -> ChromiumEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- starting the browser -----------------------------------------------------------
    def program(self) -> str | None:
        """The browser binary to run: the configured one, or the binary behind Debian's
        launcher script (which would add flags and API keys of its own)."""
        found = shutil.which(self.settings.path)
        if found is None:
            return None
        with contextlib.suppress(OSError), open(found, "rb") as fh:
            if fh.read(2) == b"#!" and os.access(_DEBIAN_BINARY, os.X_OK):
                return str(_DEBIAN_BINARY)
        return found

    def unavailable_reason(self) -> str | None:
        """Why Chromium cannot run here, or None."""
        if self.program() is None:
            return f"no Chromium program '{self.settings.path}'"
        return None

    def _start(self, timeout: float) -> _Browser:
        program = self.program()
        if program is None:
            raise DependencyDown(f"{NAME} is not installed here: {self.unavailable_reason()}")
        self.sandbox.require()
        folder = Path(tempfile.mkdtemp(prefix="docworker-chromium-"))
        proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        proxy.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        browser = self._spawn(program, folder, proxy)
        try:
            version = browser.cdp.call("Browser.getVersion", timeout=timeout)
            browser.cdp.call("Browser.setDownloadBehavior", {"behavior": "deny"}, timeout=timeout)
        except CdpError:
            tail = browser.log_tail()
            browser.close()
            raise EngineFailed(
                f"{NAME} did not start within {figure(timeout)} s: {tail or 'no message'}"
            ) from None
        browser.version = str(version.get("product", "unknown"))
        return browser

    def _spawn(self, program: str, folder: Path, proxy: socket.socket) -> _Browser:
        port = proxy.getsockname()[1]
        flags = [*_FLAGS, f"--user-data-dir={folder / 'profile'}"]
        flags.append(f"--proxy-server=http://127.0.0.1:{port}")
        sandbox = self.settings.sandbox
        if sandbox is False or (sandbox is None and os.geteuid() == 0):
            flags.append("--no-sandbox")
        (folder / "tmp").mkdir()
        temp_dir, temp_fd = _temp_dir(folder / "tmp")
        env = {
            **os.environ,
            "HOME": str(folder),
            "XDG_CONFIG_HOME": str(folder / "config"),
            "XDG_CACHE_HOME": str(folder / "cache"),
            # Its temporary files go with the folder when the browser is closed or killed.
            "TMPDIR": temp_dir,
        }
        argv = self.sandbox.command([program, *flags, "about:blank"])
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        try:
            pid = os.posix_spawn(
                argv[0],
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, str(folder / "chromium.log"), _LOG_FLAGS, 0o600),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                    (os.POSIX_SPAWN_DUP2, to_browser_r, 3),
                    (os.POSIX_SPAWN_DUP2, from_browser_w, 4),
                ],
                setsid=True,
            )
        except OSError as exc:
            for fd in (to_browser_r, to_browser_w, from_browser_r, from_browser_w):
                os.close(fd)
            if temp_fd is not None:
                os.close(temp_fd)
            proxy.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise DependencyDown(f"{NAME} could not be started: {exc}") from None
        os.close(to_browser_r)
        os.close(from_browser_w)
        cdp = CdpConnection(to_browser_w, from_browser_r)
        return _Browser(pid, cdp, folder, proxy, temp_fd)


def _temp_dir(folder: Path) -> tuple[str, int | None]:
    """The browser's temporary folder ``folder``, named by a path short enough for the
    Unix socket Chromium makes in it (its process singleton: past 107 bytes it refuses
    to start), and the descriptor that path needs held open, if any.

    A worker's folder lies deep in the data folder (``work/<host>/<executor>/worker-<n>/``),
    too deep for that socket. Its path is then the folder as this process holds it open,
    ``/proc/<pid>/fd/<n>``: every process of the browser reaches the same folder through
    it, so its files still land in ``folder`` and go with it, and nothing is written
    elsewhere. The descriptor is closed with the browser."""
    if len(os.fsencode(folder)) + _SINGLETON_TAIL <= _SOCKET_PATH_MAX:
        return str(folder), None
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/{os.getpid()}/fd/{fd}", fd


_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC

# -- one engine per process -----------------------------------------------------------
_engines: dict[str, ChromiumEngine] = {}
_engines_lock = threading.Lock()


def shared_engine(
    settings: ChromiumSettings, sandbox: SandboxSettings | None = None
) -> ChromiumEngine:
    """This process's engine for ``settings`` (and ``sandbox``), created on first use and
    kept warm; its browser is stopped when the process exits (worker processes included)."""
    chosen = sandbox or SandboxSettings()
    key = settings.model_dump_json() + chosen.model_dump_json()
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = ChromiumEngine(settings, chosen)
            atexit.register(engine.stop)
            # Worker processes end through multiprocessing, which skips atexit.
            multiprocessing.util.Finalize(engine, engine.stop, exitpriority=10)
        return engine


def _forget_after_fork() -> None:
    # A forked child must not drive (or kill) its parent's browser.
    _engines.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def print_pdf(
    source: Path,
    output: Path,
    *,
    settings: ChromiumSettings,
    policy: UrlPolicy,
    root: Path | None = None,
    options: PdfOptions | None = None,
    wait: WaitOptions | None = None,
    timeout: float | None = None,
    sandbox: SandboxSettings | None = None,
) -> RenderInfo:
    """Print ``source`` (HTML or Markdown) to the PDF ``output`` in this process's warm
    Chromium; the arguments are described in the module's docstring."""
    engine = shared_engine(settings, sandbox)
    return engine.print_pdf(
        source, output, policy=policy, root=root, options=options, wait=wait, timeout=timeout
    )


def screenshot(
    source: Path,
    output: Path,
    *,
    settings: ChromiumSettings,
    policy: UrlPolicy,
    root: Path | None = None,
    options: ScreenshotOptions | None = None,
    wait: WaitOptions | None = None,
    timeout: float | None = None,
    sandbox: SandboxSettings | None = None,
) -> RenderInfo:
    """An image of ``source`` (HTML or Markdown) in this process's warm Chromium, written
    to ``output``; the arguments are described in the module's docstring."""
    engine = shared_engine(settings, sandbox)
    return engine.screenshot(
        source, output, policy=policy, root=root, options=options, wait=wait, timeout=timeout
    )
