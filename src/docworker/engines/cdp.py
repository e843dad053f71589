"""A Chrome DevTools Protocol connection over the browser's debugging pipe.

Chromium started with ``--remote-debugging-pipe`` reads commands on its file
descriptor 3 and writes answers and events on 4, each message a JSON object ended
by a NUL byte. No port is opened, so nothing else on the machine can drive the
browser, and the browser exits when the pipe closes (when this process dies).

:class:`CdpConnection` sends commands from any thread and waits for their answers;
one reader thread reads everything the browser writes and hands each event to the
listener registered for its session (flattened sessions, ``sessionId`` on every
message). Listeners run on the reader thread, so they must not block: they queue
work for another thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: Largest message accepted from the browser (a screenshot or PDF chunk is base64).
MAX_MESSAGE = 512 * 1024 * 1024
_READ_SIZE = 1024 * 1024

Listener = Callable[[str, dict[str, Any]], None]


class CdpError(Exception):
    """The browser answered a command with an error, or the connection is gone."""

    def __init__(self, method: str, message: str, *, closed: bool = False) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message
        self.closed = closed


class _Pending:
    __slots__ = ("answer", "done")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: dict[str, Any] | None = None


class CdpConnection:
    """Commands and events over the two pipe descriptors of one browser."""

    def __init__(self, to_browser: int, from_browser: int) -> None:
        self._out = to_browser
        self._in = from_browser
        self._send_lock = threading.Lock()
        self._state = threading.Lock()
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        self._listeners: dict[str, Listener] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
        self._reader.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def listen(self, session: str, listener: Listener | None) -> None:
        """Route the events of ``session`` ('' for the browser's own) to ``listener``."""
        with self._state:
            if listener is None:
                self._listeners.pop(session, None)
            else:
                self._listeners[session] = listener

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> int:
        """Send a command without waiting; its answer is dropped unless someone waits."""
        return self._send(method, params, session)[0]

    def _send(
        self, method: str, params: dict[str, Any] | None, session: str
    ) -> tuple[int, _Pending]:
        with self._state:
            if self._closed:
                raise CdpError(method, "the browser connection is closed", closed=True)
            self._next_id += 1
            ident = self._next_id
            pending = self._pending[ident] = _Pending()
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            with self._send_lock:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._out, view) :]
        except OSError as exc:
            self._shut(f"write failed: {exc}")
            raise CdpError(method, "the browser connection is closed", closed=True) from exc
        return ident, pending

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str = "",
        *,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send a command and return its ``result``; :class:`CdpError` on an error answer,
        a closed connection or no answer within ``timeout``."""
        ident, pending = self._send(method, params, session)
        if not pending.done.wait(max(timeout, 0.0)):
            with self._state:
                self._pending.pop(ident, None)
            raise CdpError(method, f"no answer within {timeout:.3g} s")
        answer = pending.answer
        if answer is None:
            raise CdpError(method, "the browser connection closed", closed=True)
        if "error" in answer:
            error = answer["error"]
            raise CdpError(method, str(error.get("message", error)))
        result: dict[str, Any] = answer.get("result", {})
        return result

    def forget(self, ident: int) -> None:
        """Drop the answer of a command sent with :meth:`send` that nobody waits for."""
        with self._state:
            self._pending.pop(ident, None)

    def close(self) -> None:
        """Close both descriptors (the browser exits when its end closes)."""
        self._shut("closed")
        for fd in (self._out,):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._reader.join(5.0)

    # -- reading --------------------------------------------------------------------
    def _read_loop(self) -> None:
        buffer = bytearray()
        try:
            while True:
                try:
                    chunk = os.read(self._in, _READ_SIZE)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buffer += chunk
                if len(buffer) > MAX_MESSAGE:
                    log.warning("browser message too large", bytes=len(buffer))
                    break
                while (end := buffer.find(b"\0")) >= 0:
                    message = bytes(buffer[:end])
                    del buffer[: end + 1]
                    self._dispatch(json.loads(message))
        finally:
            self._shut("the browser closed its pipe")
            with contextlib.suppress(OSError):
                os.close(self._in)

    def _dispatch(self, message: dict[str, Any]) -> None:
        ident = message.get("id")
        if ident is not None:
            with self._state:
                pending = self._pending.pop(int(ident), None)
            if pending is not None:
                pending.answer = message
                pending.done.set()
            return
        method = message.get("method")
        if not method:
            return
        session = str(message.get("sessionId", ""))
        with self._state:
            listener = self._listeners.get(session)
        if listener is not None:
            try:
                listener(str(method), message.get("params") or {})
            except Exception:
                log.exception("browser event listener failed", method=method)

    def _shut(self, reason: str) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
            pending, self._pending = self._pending, {}
        for item in pending.values():
            item.done.set()
        log.debug("browser connection closed", reason=reason)
