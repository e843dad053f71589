"""Serving the application with uvicorn, and draining it when it is told to stop.

On SIGTERM (or SIGINT) uvicorn's graceful shutdown closes the listening sockets and
the idle keep-alive connections, waits for the requests being answered, then runs the
application's lifespan shutdown. A request already under way when the signal comes
(its body still being read, a pipelined one) still reaches the application, so the
service must know it is stopping from the first moment: :class:`DrainingServer` begins
the application's :class:`~docworker.jobs.admission.Drain` in the signal handler,
before uvicorn's loop (which looks every 0.1 s) begins its shutdown. From then on:

* a request with a body is refused before it is read, and a job submitted by a request
  already read is refused at admission, both with 503 ``draining`` and ``Retry-After``
  (``server.drain_retry_after``); reads (a job, a result, health) answer as before,
  and ``/health/readiness`` answers 503 so that a load balancer sends no more work;
* the executor claims no more jobs; a synchronous request waiting for a job still
  queued is answered 202 at once, one waiting for a running job waits for it;
* uvicorn waits ``server.drain_timeout`` at most for the open requests, and the
  lifespan shutdown waits what is left of it for the running jobs before the workers
  are stopped (a job still running then is queued again for the next start).
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
from types import FrameType
from urllib.parse import urlsplit

import structlog
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from docworker.api.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE
from docworker.config import Settings
from docworker.jobs.admission import Drain

log = structlog.get_logger(__name__)

#: uvicorn's exit status when the application failed to start.
STARTUP_FAILURE = 3


class DrainingServer(uvicorn.Server):
    """uvicorn's server, beginning the application's drain as its shutdown begins."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # In the signal handler: Drain.start is safe there (no lock, no log).
        self.drain.start()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.drain.start()  # whatever ended the main loop
        log.info("service draining", seconds=self.drain.timeout)
        await super().shutdown(sockets)


class ProblemHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, answering a request it cannot parse under ``/api/v2``
    with a problem+json 400 instead of uvicorn's plain text.

    Such a request (a negative, non-numeric or twice given and different
    ``Content-Length``, a malformed request line or header) never reaches the
    application: the parser refuses it and the connection is closed. The path is
    known when the request line was read; elsewhere (v1 routes, a request line that
    is not one) the answer stays uvicorn's, as v1's framework answered in plain text.
    """

    def send_400_response(self, msg: str) -> None:
        # No URL yet when the parser failed before the request line was read.
        if not urlsplit(getattr(self, "url", b"")).path.lower().startswith(b"/api/v2"):
            super().send_400_response(msg)
            return
        body = json.dumps(
            {
                "type": f"{PROBLEM_TYPE}invalid-request",
                "title": "Invalid HTTP request",
                "status": 400,
                "detail": "the request is not valid HTTP/1.1 (a Content-Length that is "
                "negative, not a number, or given twice with different values; a malformed "
                "request line or header)",
            }
        ).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def serve(application: FastAPI, settings: Settings) -> int:
    """Serve ``application`` (made by :func:`~docworker.api.app.create_app`) until it is
    told to stop, draining it then; the exit status (non-zero when it did not start)."""
    drain: Drain = application.state.drain
    config = uvicorn.Config(
        application,
        http=ProblemHttpProtocol,
        host=settings.listen_host,
        port=settings.server.port,
        timeout_keep_alive=int(settings.server.idle_timeout),
        timeout_graceful_shutdown=math.ceil(settings.server.drain_timeout),
        log_config=None,
        access_log=False,
    )
    server = DrainingServer(config, drain)
    # uvicorn raises the signal that stopped it again once it has stopped (so that a
    # parent sees it); Ctrl-C's is a KeyboardInterrupt by then, with nothing left to do.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE
