"""Where decision callbacks may go: `[api] callback_networks`.

A callback is a POST that sendguard makes to a URL its caller chose. Without
a limit, any check token could aim it at what the server can reach and the
caller cannot (cloud metadata at 169.254.169.254, an admin port on loopback,
the internal network): server-side request forgery. So callbacks go only to
addresses inside the networks the admin lists, and nowhere while none are
listed. The URL's host is resolved and *every* address it resolves to must
be inside (a name with one allowed and one other address is refused):

- `check_callback_url` when the check API is given the URL (422 otherwise);
- `CallbackTransport` again when the callback is made: it connects to the
  address it has just checked, so a DNS answer that changes in between
  (DNS rebinding) cannot send the POST anywhere else.

Only this module and the standard library are needed, so the review jobs
may use `CallbackTransport` without loading the web framework.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import httpx

__all__ = [
    "NOT_ENABLED",
    "CallbackBlocked",
    "CallbackRefused",
    "CallbackTransport",
    "allowed_addresses",
    "check_callback_url",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT = 2.0  # seconds; a resolver slower than this is a refusal, not a wait
NOT_ENABLED = "callbacks are not enabled: set [api] callback_networks"
OUTSIDE = "the callback host resolves to an address outside [api] callback_networks"
UNRESOLVED = "the callback host cannot be resolved"


class CallbackRefused(ValueError):
    """The callback URL's host is not somewhere callbacks may go (the message says why)."""


class CallbackBlocked(httpx.ConnectError):
    """Raised by `CallbackTransport`: an httpx error, so a callback sender that
    records failed attempts records this one (as `CallbackBlocked`) too."""


def _address(text: str) -> Address:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:a.b.c.d reaches a.b.c.d
    return ip


def _lookup(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


async def allowed_addresses(
    host: str, networks: Sequence[Network], *, timeout: float | None = None
) -> list[Address]:
    """What `host` (a DNS name or an IP literal) resolves to, when every
    address is inside `networks`; else CallbackRefused. The message never
    names a resolved address: it would tell a caller what internal names
    resolve to. `timeout` defaults to RESOLVE_TIMEOUT."""
    if not networks:
        raise CallbackRefused(NOT_ENABLED)
    timeout = RESOLVE_TIMEOUT if timeout is None else timeout
    host = host.removeprefix("[").removesuffix("]")
    try:
        found = [_address(host)]
    except ValueError:
        try:
            texts = await asyncio.wait_for(asyncio.to_thread(_lookup, host), timeout)
            found = list(dict.fromkeys(_address(t) for t in texts))
        except TimeoutError:
            raise CallbackRefused(f"{UNRESOLVED} within {timeout:g} s") from None
        except (OSError, UnicodeError, ValueError):
            raise CallbackRefused(UNRESOLVED) from None
    if not found:
        raise CallbackRefused(UNRESOLVED)
    for ip in found:
        # "0.0.0.0" and "::" connect to this host, whatever the networks say.
        if ip.is_unspecified or ip.is_multicast or not any(ip in net for net in networks):
            raise CallbackRefused(OUTSIDE)
    return found


async def check_callback_url(
    url: str, networks: Sequence[Network], *, timeout: float | None = None
) -> None:
    """CallbackRefused unless `url`'s host resolves only inside `networks`."""
    if not networks:
        raise CallbackRefused(NOT_ENABLED)
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    if not host:
        raise CallbackRefused("the callback URL has no host")
    await allowed_addresses(host, networks, timeout=timeout)


class _ClosingStream(httpx.AsyncByteStream):
    """A response body that closes its one-use transport once read."""

    def __init__(self, stream: httpx.AsyncByteStream, transport: httpx.AsyncBaseTransport) -> None:
        self._stream = stream
        self._transport = transport

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            await self._transport.aclose()


class CallbackTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends only inside `networks` (module
    docstring). It connects to the address it checked and keeps the URL's
    host name for the Host header and for TLS (SNI and the certificate
    check). Each request has its own connection: callbacks are rare, and a
    pooled connection would outlive the check that allowed it."""

    def __init__(self, networks: Sequence[Network], *, timeout: float | None = None) -> None:
        self._networks = tuple(networks)
        self._timeout = timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and SNI want it
        try:
            found = await allowed_addresses(host, self._networks, timeout=self._timeout)
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=str(found[0])),
                headers=request.headers,  # Host: stays the name the URL gave
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
        except (CallbackRefused, httpx.InvalidURL) as exc:
            raise CallbackBlocked(str(exc), request=request) from None
        inner = httpx.AsyncHTTPTransport(retries=0)
        try:
            response = await inner.handle_async_request(pinned)
        except BaseException:
            await inner.aclose()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_ClosingStream(response.stream, inner),
            extensions=response.extensions,
        )
