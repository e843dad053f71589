"""The SSRF rule: what the allow-list admits, and the addresses refused whatever it says."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from typing import Any

import pytest
from pydantic import ValidationError

from docworker import url_policy
from docworker.config import FetchSettings
from docworker.url_policy import UrlPolicy, UrlRefused, is_public
from tests.listener import Listener


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::6810:85e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.215.14", True),
        ("64:ff9b::a00:1", False),
        ("2002:7f00:1::", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_nothing_is_fetched_without_an_allow_list() -> None:
    with pytest.raises(UrlRefused, match="allow-list"):
        UrlPolicy().check("https://93.184.215.14/logo.png")


@pytest.mark.parametrize(
    ("rule", "url", "allowed"),
    [
        ("example.com", "https://example.com/a.css", True),
        ("example.com", "https://www.example.com/a.css", False),
        ("*.example.com", "https://cdn.example.com/a.css", True),
        ("*.example.com", "https://example.com/a.css", True),
        ("*.example.com", "https://badexample.com/a.css", False),
        ("https://cdn.example.com/assets/", "https://cdn.example.com/assets/x.png", True),
        ("https://cdn.example.com/assets/", "https://cdn.example.com/other/x.png", False),
    ],
)
def test_allow_list_rules(rule: str, url: str, allowed: bool) -> None:
    assert UrlPolicy((rule,)).allows(url) is allowed


def test_allow_listed_public_address_passes() -> None:
    assert UrlPolicy(("93.184.215.14",)).check("http://93.184.215.14/") == [
        ipaddress.ip_address("93.184.215.14")
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://0x7f000001/",
    ],
)
def test_private_addresses_refused_even_when_allow_listed(url: str) -> None:
    policy = UrlPolicy(("*", "localhost", "127.0.0.1", "169.254.169.254", "0x7f000001"))
    with pytest.raises(UrlRefused):
        policy.check(url)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "data:,x"]
)
def test_other_schemes_refused(url: str) -> None:
    with pytest.raises(UrlRefused, match="scheme"):
        UrlPolicy(("example.com",)).check(url)


def test_credentials_are_not_repeated_in_the_error() -> None:
    with pytest.raises(UrlRefused) as caught:
        UrlPolicy().check("https://user:secret@example.com/")
    assert "secret" not in caught.value.detail


def test_fetch_never_reaches_a_loopback_listener(listener: Listener) -> None:
    with pytest.raises(UrlRefused):
        UrlPolicy(("127.0.0.1",)).fetch(listener.url + "/planted")
    assert listener.connections == []


def test_a_private_network_may_be_allowed() -> None:
    policy = UrlPolicy(("127.0.0.1", "10.1.2.3"), private=("127.0.0.0/8",))
    assert policy.check("http://127.0.0.1:8080/a.pdf") == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(UrlRefused, match=r"non-public address \(10\.1\.2\.3\)"):
        policy.check("http://10.1.2.3/a.pdf")


def test_private_networks_must_be_networks() -> None:
    assert FetchSettings(private_allow=["10.0.0.0/8", "::1"]).private_allow
    with pytest.raises(ValidationError, match="not a network"):
        FetchSettings(private_allow=["intranet.example.com"])


class _EchoHost(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers["Host"] or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_the_connection_goes_to_the_address_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is resolved once, by the check: the connection does not ask DNS again
    (where a rebinding name could answer a private address the second time). Here the
    name resolves nowhere but in the check's own lookup, and the server is reached, and
    sees its own name."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    looked_up: list[str] = []

    def resolve(url: str, host: str, port: int) -> list[Any]:
        looked_up.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(url_policy, "_resolve", resolve)
    policy = UrlPolicy(("rebind.invalid",), private=("127.0.0.1/32",))
    try:
        body, _, final = policy.fetch(f"http://rebind.invalid:{port}/doc")
    finally:
        server.shutdown()
        server.server_close()
    assert body == f"rebind.invalid:{port}".encode()
    assert final == f"http://rebind.invalid:{port}/doc"
    assert looked_up == ["rebind.invalid"]
