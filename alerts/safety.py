"""Outbound HTTP to URLs that workspace members type in: the SSRF guard and the one sender.

A webhook or Slack URL is checked twice: when it is saved (`check_url`) and
again when it is sent to (`post_json`), after DNS resolution. The sender
connects to the very address it checked (the host name goes in the Host
header and TLS's SNI/certificate check only), so a name that resolves to a
public address at save time and to 127.0.0.1 a second later (DNS rebinding)
never reaches the loopback. Refused: loopback, private (RFC 1918, ULA),
link-local (169.254/16: the cloud metadata service, fe80::/10), shared
(100.64/10), multicast, reserved and unspecified addresses, IPv4-mapped IPv6
forms of those, and any non-https URL in production.

`ALERTS_ALLOW_LOCAL_TARGETS` (development and tests only: refused with
DEBUG=False) lets local addresses and plain http through.

No redirects are followed (a 3xx is an answer, not a hop to a new target),
timeouts are short and at most ALERTS_RESPONSE_LIMIT bytes of a response are read.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

USER_AGENT = "engagement_site-alerts/1"
# The cloud metadata addresses, named even though link-local / ULA already covers them.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeTarget(ValueError):
    """The URL may not be sent to (the message says why, for a form error or the delivery log)."""


def _allow_local() -> bool:
    return bool(getattr(settings, "ALERTS_ALLOW_LOCAL_TARGETS", False))


def address_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address is refused, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    for test, label in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_private", "a private address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "an unspecified address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(address, test):
            return label
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the resolved IP the sender connects to


def _split(url: str):
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeTarget(f"This is not a valid URL ({error}).") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeTarget("Use an https:// URL.")
    if parts.username or parts.password:
        raise UnsafeTarget("Put no user name or password in the URL.")
    if parts.scheme != "https" and not (_allow_local() or settings.DEBUG):
        raise UnsafeTarget("Use an https:// URL: alerts are only sent over TLS.")
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def resolve(url: str) -> Target:
    """Check `url` and resolve its host: the address to connect to, or UnsafeTarget."""
    scheme, host, port, path = _split(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as error:
            raise UnsafeTarget(f"The host {host} does not resolve ({error}).") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeTarget(f"The host {host} has no address.")
    if not _allow_local():
        # Every address must be public: a resolver answer mixing a public and a private one
        # would otherwise let the attacker pick which one we use.
        for address in addresses:
            why = address_refused(address)
            if why:
                raise UnsafeTarget(f"{host} resolves to {address}, {why}: alerts are only sent to public hosts.")
    return Target(scheme, host, port, path, str(addresses[0]))


def check_url(url: str) -> None:
    """At save time (forms): raise UnsafeTarget with a message for the field."""
    resolve(url)


@dataclass
class Response:
    status: int | None
    latency_ms: int
    excerpt: str
    error: str = ""
    refused: bool = False  # the guard refused the target: a security answer, never retried

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """5xx, 429, timeouts and connection errors are worth another try; other 4xx never are."""
        if self.refused:
            return False
        return self.status is None or self.status >= 500 or self.status == 429


def post_json(url: str, body: bytes, headers: dict[str, str]) -> Response:
    """POST `body` to `url` through the guard; never raises for a network failure (it is an answer)."""
    started = time.monotonic()
    try:
        target = resolve(url)
    except UnsafeTarget as error:
        return Response(None, 0, "", f"Refused: {error}", refused=True)
    timeout = urllib3.Timeout(connect=settings.ALERTS_CONNECT_TIMEOUT, read=settings.ALERTS_READ_TIMEOUT)
    host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Host": host_header, **headers}
    if target.scheme == "https":
        # Connect to the checked address; verify the certificate against the host name.
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=target.host, assert_hostname=target.host,
            ssl_context=ssl.create_default_context(),
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False, maxsize=1)
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers=all_headers, redirect=False, preload_content=False,
            assert_same_host=False,
        )
        try:
            raw = response.read(settings.ALERTS_RESPONSE_LIMIT, decode_content=False)
        finally:
            response.release_conn()
            response.close()
        excerpt = raw.decode("utf-8", errors="replace")
        return Response(response.status, _ms(started), excerpt)
    except urllib3.exceptions.TimeoutError:
        return Response(None, _ms(started), "", "Timed out.")
    except urllib3.exceptions.HTTPError as error:
        return Response(None, _ms(started), "", f"Connection failed: {type(error).__name__}.")
    finally:
        pool.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
