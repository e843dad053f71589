"""Which URLs the service may fetch: the one rule against server-side request forgery.

Every engine or operation that could reach a URL (an HTML page's images and style
sheets, a remote input, a webhook) asks :class:`UrlPolicy` first. Nothing remote is
fetched unless the allow-list names it (webhooks: unless it is public, as the client
names its own receiver), and an address that is private, loopback, link-local,
multicast, reserved or otherwise not public is refused whatever name resolves to it,
unless the policy's ``private`` list names the URL. :meth:`UrlPolicy.fetch`
fetches through that rule, checking every redirect again and bounding the size.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from docworker.errors import InputError, LimitExceeded

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Networks that are not private by Python's tables but that no public fetch may reach.
_ALSO_REFUSED = (
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT (shared address space)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)

MAX_REDIRECTS = 5


class UrlRefused(InputError):
    """A URL the policy does not let the service fetch."""

    code = "url-refused"
    title = "URL refused"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"the URL {shown_url(url)} may not be fetched: {reason}", url=shown_url(url)
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
class UrlPolicy:
    """The allow-list: host names (``example.com``), wildcard domains
    (``*.example.com``, which also matches ``example.com``) or URL prefixes
    (``https://cdn.example.com/assets/``). Empty: nothing remote is fetched."""

    allow: tuple[str, ...] = ()
    timeout: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    #: Any host passes the allow-list (its addresses must still be public).
    any_host: bool = False
    #: URLs (in the allow-list's forms) that may resolve to non-public addresses.
    private: tuple[str, ...] = ()

    def allows(self, url: str) -> bool:
        """Whether ``url`` passes the allow-list (addresses not yet resolved)."""
        return self.any_host or _listed(url, self.allow)

    def check(self, url: str) -> list[IpAddress]:
        """The addresses ``url``'s host resolves to; :class:`UrlRefused` when the URL is
        not http(s), not allow-listed, or resolves to any non-public address (unless the
        ``private`` list names it)."""
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
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused and not _listed(url, self.private):
            raise UrlRefused(url, f"it resolves to a non-public address ({refused[0]})")
        return addresses

    def fetch(self, url: str) -> tuple[bytes, str | None, str]:
        """The body, media type and final URL of ``url``, each redirect checked again;
        :class:`LimitExceeded` past ``max_bytes``."""
        current = url
        with httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as web:
            for _ in range(MAX_REDIRECTS + 1):
                self.check(current)
                with web.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise UrlRefused(current, f"it answered HTTP {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise LimitExceeded("fetched bytes", len(body), self.max_bytes)
                    mime = response.headers.get("content-type", "").split(";")[0].strip()
                    return bytes(body), mime or None, current
        raise UrlRefused(url, f"it redirects more than {MAX_REDIRECTS} times")


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
