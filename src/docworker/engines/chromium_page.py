"""One page in the warm Chromium: open, guard its requests, load, wait, print or capture.

A :class:`PageSession` is one render: a fresh browser context (no cookies, storage
or cache shared with any other render), one tab in it, and a thread that answers
every request the tab, its frames and its workers make, by the rules of
:class:`~docworker.engines.chromium_requests.RequestGuard` (frames and workers in
other processes are attached as they start, paused until their requests are
guarded too). Every command is bounded by the render's deadline; past it
:class:`Overdue` is raised and the engine kills the browser, since a page whose
script never ends keeps its renderer busy.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from docworker.engines.cdp import CdpConnection, CdpError
from docworker.engines.chromium_requests import Answer, RequestGuard
from docworker.errors import CorruptDocument, EngineFailed, InvalidParameter

_POLL = 0.05
_PDF_CHUNK = 1024 * 1024
_INTERCEPT_ALL = {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}
_AUTO_ATTACH = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}


class WaitUntil(StrEnum):
    DOMCONTENTLOADED = "domcontentloaded"
    LOAD = "load"
    NETWORKIDLE = "networkidle"


#: The main frame's lifecycle events each wait waits for, in order (Chromium's
#: ``networkIdle``: no request in flight for 0.5 s).
_LIFECYCLE = {
    WaitUntil.DOMCONTENTLOADED: ("DOMContentLoaded",),
    WaitUntil.LOAD: ("load",),
    WaitUntil.NETWORKIDLE: ("load", "networkIdle"),
}


@dataclass(frozen=True)
class WaitOptions:
    """When a page is ready: a load event, then a CSS selector present, then a delay."""

    until: WaitUntil = WaitUntil.LOAD
    #: Seconds to wait after the page is ready (animations, timers).
    delay: float = 0.0
    #: Wait until an element matches this CSS selector.
    selector: str | None = None


class Overdue(Exception):
    """The render passed its deadline; ``stage`` says what it was waiting for."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


class PageSession:
    """One tab in its own browser context, its requests guarded, bounded by ``deadline``."""

    def __init__(
        self, cdp: CdpConnection, guard: RequestGuard | None = None, deadline: float = 0.0
    ) -> None:
        self.cdp = cdp
        #: The render's rules; None (a page opened ahead of its render): refuse everything.
        self.guard = guard
        self.deadline = deadline
        self._work: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        self._changed = threading.Condition()
        #: Lifecycle events seen: (loader id, name), e.g. ('4F2…', 'load').
        self._events: set[tuple[str, str]] = set()
        #: The loader of the main frame's current document.
        self._main_loader: str | None = None
        self._crashed = False
        self._sessions: list[str] = []
        self._stopping = threading.Event()
        self._context = ""
        self.session = ""
        self._server = threading.Thread(target=self._serve, name="chromium-guard", daemon=True)

    # -- life -----------------------------------------------------------------------
    def open(self) -> PageSession:
        """Create the context and the tab, and guard the tab's requests from the start."""
        created = self.call("Target.createBrowserContext", {"disposeOnDetach": True})
        self._context = created["browserContextId"]
        target = self.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": self._context}
        )
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]
        self._watch(self.session)
        self._server.start()
        for method, params in (
            ("Fetch.enable", _INTERCEPT_ALL),
            ("Page.enable", {}),
            ("Page.setLifecycleEventsEnabled", {"enabled": True}),
            ("Target.setAutoAttach", _AUTO_ATTACH),
        ):
            self.call(method, params, self.session)
        return self

    def close(self, *, dispose: bool = True) -> None:
        """Stop guarding and drop the context (with its tab); ``dispose=False`` when the
        browser is about to be killed anyway."""
        self._stopping.set()
        for session in self._sessions:
            self.cdp.listen(session, None)
        if self._server.is_alive():
            self._server.join(5.0)
        if dispose and self._context and not self.cdp.closed:
            with contextlib.suppress(CdpError):
                self.cdp.call(
                    "Target.disposeBrowserContext", {"browserContextId": self._context}, timeout=5
                )

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str = ""
    ) -> dict[str, Any]:
        """A command bounded by the deadline; :class:`Overdue` once it has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Overdue(method)
        try:
            return self.cdp.call(method, params, session, timeout=left)
        except CdpError as exc:
            if not exc.closed and time.monotonic() >= self.deadline:
                raise Overdue(method) from None
            if self._crashed or exc.closed:
                raise EngineFailed("Chromium's page crashed or the browser exited") from None
            raise

    # -- loading --------------------------------------------------------------------
    def emulate_viewport(self, width: int, height: int, scale: float) -> None:
        params = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", params, self.session)

    def load(self, url: str, wait: WaitOptions) -> None:
        """Open ``url`` and wait as ``wait`` says (all within the deadline)."""
        with self._changed:
            self._main_loader = None
        answer = self.call("Page.navigate", {"url": url}, self.session)
        if answer.get("errorText"):
            raise CorruptDocument("html", f"the page did not open ({answer['errorText']})")
        with self._changed:
            # A script may have moved the page on already (frameNavigated set it then).
            if self._main_loader is None:
                self._main_loader = answer.get("loaderId")
        for name in _LIFECYCLE[wait.until]:
            self._wait_for(partial(self._reached, name), f"the page's {name} event")
        if wait.selector:
            self._wait_for_selector(wait.selector)
        if wait.delay > 0:
            stage = f"the delay of {wait.delay:g} s"
            self._wait_for(lambda: False, stage, until=time.monotonic() + wait.delay)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (scripts' errors refused)."""
        answer = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        if "exceptionDetails" in answer:
            text = answer["exceptionDetails"].get("text", "script error")
            raise InvalidParameter("script", f"the page could not evaluate it: {text}")
        return answer.get("result", {}).get("value")

    def add_style(self, css: str) -> None:
        """Add a style sheet to the page, after its own."""
        self.evaluate(
            "(() => { const s = document.createElement('style');"
            f" s.textContent = {json.dumps(css)};"
            " (document.head || document.documentElement).appendChild(s); })()"
        )

    def print_pdf(self, params: dict[str, Any], output: BinaryIO) -> None:
        """Print to PDF with ``Page.printToPDF``'s ``params``, streamed into ``output``."""
        try:
            answer = self.call(
                "Page.printToPDF", {**params, "transferMode": "ReturnAsStream"}, self.session
            )
        except CdpError as exc:
            raise InvalidParameter("pdf", f"Chromium refused to print: {exc.message}") from None
        handle = answer["stream"]
        while True:
            chunk = self.call("IO.read", {"handle": handle, "size": _PDF_CHUNK}, self.session)
            data = chunk.get("data", "")
            output.write(base64.b64decode(data) if chunk.get("base64Encoded") else data.encode())
            if chunk.get("eof"):
                break
        self.call("IO.close", {"handle": handle}, self.session)

    def capture(self, params: dict[str, Any]) -> bytes:
        """An image of the page with ``Page.captureScreenshot``'s ``params``."""
        answer = self.call("Page.captureScreenshot", params, self.session)
        return base64.b64decode(answer["data"])

    # -- waiting --------------------------------------------------------------------
    def _wait_for(self, ready: Callable[[], bool], stage: str, until: float | None = None) -> None:
        end = min(until, self.deadline) if until is not None else self.deadline
        with self._changed:
            while not ready():
                if self._crashed:
                    raise EngineFailed("Chromium's page crashed during the render")
                left = end - time.monotonic()
                if left <= 0:
                    if until is not None and until < self.deadline:
                        return
                    raise Overdue(stage)
                self._changed.wait(min(left, _POLL))

    def _reached(self, name: str) -> bool:
        return (self._main_loader or "", name) in self._events

    def _wait_for_selector(self, selector: str) -> None:
        probe = f"document.querySelector({json.dumps(selector)}) !== null"
        while True:
            try:
                found = self.evaluate(probe)
            except InvalidParameter:
                raise InvalidParameter("wait_selector", "not a valid CSS selector") from None
            if found:
                return
            if time.monotonic() + _POLL * 2 >= self.deadline:
                raise Overdue(f"an element matching '{selector[:100]}'")
            time.sleep(_POLL * 2)

    # -- events (on the connection's reader thread: never block here) -----------------
    def _watch(self, session: str) -> None:
        self._sessions.append(session)
        self.cdp.listen(session, lambda method, params: self._on_event(session, method, params))

    def _on_event(self, session: str, method: str, params: dict[str, Any]) -> None:
        if method in {"Fetch.requestPaused", "Page.javascriptDialogOpening"}:
            self._work.put((method, session, params))
        elif method == "Target.attachedToTarget":
            self._watch(params["sessionId"])
            self._work.put((method, params["sessionId"], params))
        elif session == self.session:
            self._page_event(method, params)

    def _page_event(self, method: str, params: dict[str, Any]) -> None:
        with self._changed:
            if method == "Page.lifecycleEvent":
                self._events.add((params.get("loaderId", ""), params.get("name", "")))
            elif method == "Page.frameNavigated" and "parentId" not in params["frame"]:
                self._main_loader = params["frame"].get("loaderId")
            elif method in {"Inspector.targetCrashed", "Target.targetCrashed"}:
                self._crashed = True
            else:
                return
            self._changed.notify_all()

    # -- the guard thread -------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                method, session, params = self._work.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._handle(method, session, params)
            except CdpError:
                continue  # the request or target went away meanwhile

    def _handle(self, method: str, session: str, params: dict[str, Any]) -> None:
        if method == "Fetch.requestPaused":
            request = params["request"]
            guard = self.guard
            if guard is None:
                answer = Answer.refuse()
            else:
                answer = guard.answer(request["url"], request.get("method", "GET"))
            self._send(answer.method, {"requestId": params["requestId"], **answer.params}, session)
        elif method == "Page.javascriptDialogOpening":
            self._send("Page.handleJavaScriptDialog", {"accept": False}, session)
        elif method == "Target.attachedToTarget":
            # A frame or worker in another process: guard it before it may run.
            self._send("Fetch.enable", _INTERCEPT_ALL, session)
            self._send("Target.setAutoAttach", _AUTO_ATTACH, session)
            self._send("Runtime.runIfWaitingForDebugger", {}, session)

    def _send(self, method: str, params: dict[str, Any], session: str) -> None:
        self.cdp.forget(self.cdp.send(method, params, session))


def file_url(path: Path) -> str:
    """The ``file:`` URL the browser opens for ``path``."""
    return path.resolve().as_uri()
