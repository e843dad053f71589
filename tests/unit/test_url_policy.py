"""The SSRF rule: what the allow-list admits, and the addresses refused whatever it says."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

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
