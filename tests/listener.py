"""A TCP listener on 127.0.0.1 that records every connection made to it.

The tests that prove an engine reaches nothing (WeasyPrint, Chromium, LibreOffice,
FFmpeg, librsvg, the URL policy) point a document at it and then check that
``connections`` stayed empty. Each connection is recorded with the first bytes it
sent (an HTTP request line, or ``b""`` when nothing came); it is answered with a
404 and closed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest


class Listener:
    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.socket.settimeout(0.2)
        self.port: int = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(1)
                try:
                    received = connection.recv(4096)
                    connection.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    received = b""
                self.connections.append(received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    try:
        yield found
    finally:
        found.close()
