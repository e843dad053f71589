"""Which URLs the service may fetch: the one rule against server-side request forgery.

Every engine or operation that could reach a URL (an HTML page's images and style
sheets, a remote input, a webhook) asks :class:`UrlPolicy` first. Nothing
remote is fetched unless the allow-list names it (webhooks: any public host, as the
client names its own receiver), and an address that is private,
loopback, link-local, multicast, reserved or otherwise not public is refused,
allow-listed or not, whatever name resolves to it, unless its network is one the
settings name (``fetch.private_allow``: an intranet server of documents). The
connection goes to the address checked, not to the name resolved again.
:meth:`UrlPolicy.stream` fetches through that rule, checking every redirect again
and bounding the size and the time; :meth:`UrlPolicy.fetch` reads a small
resource whole through it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from docworker.config import FetchSettings
from docworker.errors import Forbidden, InputError, LimitExceeded

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Networks that are not private by Python's tables but that no public fetch may reach.
_ALSO_REFUSED = (
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT (shared address space)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)

MAX_REDIRECTS = 5


class UrlRefused(Forbidden):
    """A URL the policy does not let the service fetch."""

    code = "url-refused"
    title = "URL refused"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"the URL {shown_url(url)} may not be fetched: {reason}", url=shown_url(url)
        )


class UrlUnreadable(InputError):
    """A URL the policy allows that did not give its content: an HTTP error, a server
    that does not answer or breaks off."""

    code = "url-unreadable"
    title = "URL unreadable"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"the URL {shown_url(url)} could not be read: {reason}", url=shown_url(url)
        )


def shown_url(url: str) -> str:
    """The URL without its user information (a password must not reach a log or an
    answer), cut at 300 characters."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url[:300]
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()[:300]


def is_public(address: IpAddress) -> bool:
    """Whether ``address`` is a public unicast address (an IPv4-mapped or NAT64 one
    is judged by the IPv4 address it carries)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if not address.is_global or address.is_multicast:
        return False
    return not any(address in network for network in _ALSO_REFUSED)


@dataclass(frozen=True)
class Fetched:
    """A response being read: its body a chunk at a time, its media type, its final URL."""

    chunks: Iterator[bytes]
    mime: str | None
    url: str


@dataclass(frozen=True)
class UrlPolicy:
    """The allow-list: host names (``example.com``), wildcard domains
    (``*.example.com``, which also matches ``example.com``) or URL prefixes
    (``https://cdn.example.com/assets/``). Empty: nothing remote is fetched.
    ``private``: the non-public networks allow-listed hosts may still resolve to."""

    allow: tuple[str, ...] = ()
    timeout: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    private: tuple[str, ...] = ()
    #: Any host passes the allow-list (its addresses must still be public).
    any_host: bool = False
    #: URLs (in the allow-list's forms) that may resolve to any non-public address.
    private_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, fetch: FetchSettings) -> UrlPolicy:
        """The policy the settings describe (``fetch.*``)."""
        return cls(tuple(fetch.allow), fetch.timeout, fetch.max_bytes, tuple(fetch.private_allow))

    def allows(self, url: str) -> bool:
        """Whether ``url`` passes the allow-list (addresses not yet resolved)."""
        return self.any_host or _listed(url, self.allow)

    def reachable(self, address: IpAddress) -> bool:
        """Whether ``address`` may be connected to: public, or in an allowed network."""
        if is_public(address):
            return True
        networks = [ipaddress.ip_network(entry.strip(), strict=False) for entry in self.private]
        return any(address.version == net.version and address in net for net in networks)

    def check(self, url: str) -> list[IpAddress]:
        """The reachable addresses ``url``'s host resolves to; :class:`UrlRefused` when
        the URL is not http(s), not allow-listed, or resolves to any address that is not
        public (nor in an allowed private network, nor its URL in ``private_urls``)."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in {"http", "https"}:
            raise UrlRefused(url, f"the scheme '{parts.scheme}' is never fetched")
        host = parts.hostname
        if not host:
            raise UrlRefused(url, "it names no host")
        if not self.allows(url):
            raise UrlRefused(url, "its host is not in the allow-list (fetch.allow)")
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise UrlRefused(url, "its port is not a number") from None
        addresses = _resolve(url, host, port)
        refused = [str(a) for a in addresses if not self.reachable(a)]
        if refused and not _listed(url, self.private_urls):
            raise UrlRefused(url, f"it resolves to a non-public address ({refused[0]})")
        return addresses

    @contextmanager
    def stream(
        self, url: str, *, max_bytes: int | None = None, deadline: float | None = None
    ) -> Iterator[Fetched]:
        """``url``'s response, each redirect checked again, its body read as it is
        iterated: :class:`LimitExceeded` once it passes ``max_bytes`` (default: the
        policy's) or, when its declared length does, before any is read; and once
        ``deadline`` seconds (whole, redirects included) have passed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        started = time.monotonic()
        current = url
        with httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as web:
            for _ in range(MAX_REDIRECTS + 1):
                addresses = self.check(current)
                with _answer(web, current, addresses[0]) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise UrlUnreadable(current, f"it answered HTTP {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise LimitExceeded("fetched bytes", int(declared), limit)
                    mime = response.headers.get("content-type", "").split(";")[0].strip()
                    chunks = _bounded(current, response.iter_bytes(), limit, started, deadline)
                    yield Fetched(chunks, mime or None, current)
                    return
        raise UrlRefused(url, f"it redirects more than {MAX_REDIRECTS} times")

    def post(self, url: str, content: bytes, headers: dict[str, str]) -> int:
        """POST ``content`` to ``url`` once it passes the policy, to the address checked
        (:func:`_answer`), no redirect followed (a webhook's receiver answers itself);
        the answer's status. :class:`UrlRefused` or :class:`UrlUnreadable` otherwise."""
        addresses = self.check(url)
        with (
            httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as web,
            _answer(
                web, url, addresses[0], method="POST", content=content, headers=headers
            ) as answer,
        ):
            return answer.status_code

    def fetch(self, url: str) -> tuple[bytes, str | None, str]:
        """The body, media type and final URL of ``url`` (see :meth:`stream`), read
        whole: for resources bounded small (a page's images and style sheets)."""
        with self.stream(url) as fetched:
            return b"".join(fetched.chunks), fetched.mime, fetched.url


@contextmanager
def _answer(
    web: httpx.Client,
    url: str,
    address: IpAddress,
    *,
    method: str = "GET",
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[httpx.Response]:
    """The response to ``method`` ``url`` from the server at ``address`` (the one
    checked: the name is not resolved again, so a name whose answers change between the
    check and the connection cannot lead it elsewhere), its body not read;
    :class:`UrlUnreadable` when the server cannot be reached or does not answer in time."""
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    target = parts._replace(netloc=netloc).geturl()
    # The server sees its own name: in Host, and in TLS (SNI, and the certificate is
    # checked against it).
    sent = {**(headers or {}), "Host": parts.netloc.rpartition("@")[2]}
    tls = {"sni_hostname": parts.hostname} if parts.scheme.lower() == "https" else {}
    try:
        with web.stream(method, target, content=content, headers=sent, extensions=tls) as response:
            yield response
    except httpx.TimeoutException:
        raise UrlUnreadable(url, "the server did not answer in time (fetch.timeout)") from None
    except httpx.HTTPError as exc:
        raise UrlUnreadable(url, f"{type(exc).__name__}: {exc}") from None


def _bounded(
    url: str, chunks: Iterator[bytes], limit: int, started: float, deadline: float | None
) -> Iterator[bytes]:
    """``chunks``, each counted against ``limit`` bytes and the ``deadline``."""
    size = 0
    for chunk in _read(url, chunks):
        size += len(chunk)
        if size > limit:
            raise LimitExceeded("fetched bytes", size, limit)
        if deadline is not None and time.monotonic() - started > deadline:
            raise LimitExceeded(
                "fetch time",
                round(time.monotonic() - started, 1),
                deadline,
                f"the download took more than {deadline:g} s (fetch.input_timeout)",
            )
        yield chunk


def _read(url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except httpx.TimeoutException:
        raise UrlUnreadable(url, "the server stopped sending (fetch.timeout)") from None
    except httpx.HTTPError as exc:
        raise UrlUnreadable(url, f"{type(exc).__name__}: {exc}") from None


def _listed(url: str, entries: tuple[str, ...]) -> bool:
    """Whether an entry names ``url``: its host (``example.com``), a wildcard domain
    (``*.example.com``, which also matches ``example.com``) or a prefix of it
    (``https://cdn.example.com/assets/``)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    for entry in entries:
        rule = entry.strip().lower()
        if "://" in rule:
            if url.lower().startswith(rule):
                return True
        elif rule.startswith("*."):
            if host == rule[2:] or host.endswith(rule[1:]):
                return True
        elif host == rule:
            return True
    return False


def _resolve(url: str, host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(url, f"its host does not resolve ({exc})") from None
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UrlRefused(url, "its host does not resolve")
    return addresses
