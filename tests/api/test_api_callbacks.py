"""Where a decision callback may go: `[api] callback_networks`.

A check token chooses the callback URL and the server makes the POST, so
an unchecked URL lets a token holder reach what only the server can (cloud
metadata, loopback admin ports, the internal network). The URL is refused
(422) unless every address its host resolves to is inside the configured
networks; none are allowed by default. `CallbackTransport` checks again
when the callback is made and connects to the address it checked, so a DNS
answer that changes in between cannot move it. DNS names are answered by a
stand-in `socket.getaddrinfo` (names under .practice.test); IP literals and
`localhost` go to the real resolver.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from api_support import PRACTICE_ODS
from fastapi.testclient import TestClient
from hold_support import CallbackSink

from sendguard.config import Config
from sendguard.review import callbacknet
from sendguard.review.callbacknet import (
    NOT_ENABLED,
    OUTSIDE,
    UNRESOLVED,
    CallbackBlocked,
    CallbackTransport,
)
from sendguard.store import open_store

FAX_TYPO = {"number": "0113 496 0010", "intended": PRACTICE_ODS}
LETTER = {"addressee": "Mrs J Smith", "address": "3 Park Lane\nLeeds\nLS6 2AB"}
LOOPBACK = ("127.0.0.0/8", "::1/128")
PRIVATE = ("10.0.0.0/8",)
METADATA = "169.254.169.254"  # link-local: cloud instance metadata
DNS: dict[str, list[str] | None] = {
    "emr.practice.test": ["10.1.2.3"],
    "metadata.practice.test": [METADATA],
    "split.practice.test": ["10.1.2.3", METADATA],  # one inside, one outside
    "mapped.practice.test": [f"::ffff:{METADATA}"],
    "nowhere.practice.test": None,  # NXDOMAIN
}


class Resolver:
    """Stands in for `socket.getaddrinfo` for the names in `answers`; each
    name's answers are given in turn (the last one repeats)."""

    def __init__(self, answers: dict[str, list[list[str] | None]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.asked.append(host)
        queue = self.answers[host]
        found = queue.pop(0) if len(queue) > 1 else queue[0]
        if found is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for a in found:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            sockaddr = (a, port or 0, 0, 0) if ":" in a else (a, port or 0)
            out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return out


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    resolver = Resolver({name: [found] for name, found in DNS.items()})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return resolver


def _holds(config: Config) -> list[str]:
    with open_store(config.store.url) as store:
        return [h.hold_id for h in store.list()]


def _refused(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "callback_url"]
    return str(error["msg"])


def test_callbacks_are_refused_until_networks_are_configured(
    client: TestClient, config: Config
) -> None:
    assert config.api.callback_networks == []
    for path, body in (("/v1/check/fax", FAX_TYPO), ("/v1/check/letter", LETTER)):
        for extra in ({}, {"hold": False}):
            r = client.post(path, json={**body, **extra, "callback_url": "http://127.0.0.1:9/"})
            assert (
                _refused(r)
                == NOT_ENABLED
                == ("callbacks are not enabled: set [api] callback_networks")
            )
    assert _holds(config) == []
    r = client.post("/v1/check/fax", json=FAX_TYPO)  # without a callback: held as before
    assert r.status_code == 200
    assert _holds(config) == [r.json()["hold_id"]]


@pytest.mark.parametrize(
    ("networks", "url"),
    [
        (LOOPBACK, "http://127.0.0.1:8080/sendguard/callback"),
        (LOOPBACK, "HTTP://127.0.0.2/cb"),
        (LOOPBACK, "http://[::1]:9000/cb"),
        (LOOPBACK, "http://[::ffff:127.0.0.1]/cb"),
        (LOOPBACK, "http://localhost:65535/"),
        (PRIVATE, "https://10.20.30.40:8443/callbacks?practice=B82005&secret=x#frag"),
        (PRIVATE, "https://EMR.practice.test/decisions"),
        (("10.1.2.3/32", "192.0.2.0/24"), "http://emr.practice.test/"),
    ],
)
def test_a_callback_inside_the_configured_networks_is_kept(
    client_allowing: Callable[..., TestClient],
    config: Config,
    dns: Resolver,
    networks: tuple[str, ...],
    url: str,
) -> None:
    client = client_allowing(*networks)
    r = client.post("/v1/check/fax", json={**FAX_TYPO, "callback_url": url})
    assert r.status_code == 200, r.text
    with open_store(config.store.url) as store:
        held = store.get(r.json()["hold_id"])
    assert held is not None
    assert held.callback_url == url


@pytest.mark.parametrize(
    ("networks", "url", "why"),
    [
        (PRIVATE, f"http://{METADATA}/latest/meta-data/", OUTSIDE),
        (PRIVATE, f"http://[::ffff:{METADATA}]/", OUTSIDE),
        (PRIVATE, "http://127.0.0.1:8025/v1/admin/reload", OUTSIDE),
        (PRIVATE, "http://[::1]/", OUTSIDE),
        (PRIVATE, "http://localhost/", OUTSIDE),
        (PRIVATE, "http://metadata.practice.test/", OUTSIDE),
        (PRIVATE, "http://split.practice.test/", OUTSIDE),
        (PRIVATE, "http://mapped.practice.test/", OUTSIDE),
        (PRIVATE, "http://nowhere.practice.test/", UNRESOLVED),
        (LOOPBACK, "http://emr.practice.test/", OUTSIDE),
        (("0.0.0.0/0",), "http://0.0.0.0:8025/", OUTSIDE),  # "this host", whatever is listed
    ],
)
def test_a_callback_that_resolves_outside_the_networks_is_refused(
    client_allowing: Callable[..., TestClient],
    config: Config,
    dns: Resolver,
    networks: tuple[str, ...],
    url: str,
    why: str,
) -> None:
    client = client_allowing(*networks)
    for path, body in (("/v1/check/fax", FAX_TYPO), ("/v1/check/letter", LETTER)):
        msg = _refused(client.post(path, json={**body, "callback_url": url}))
        assert msg == why
        assert METADATA not in msg  # never what a name resolved to
    assert _holds(config) == []


def test_a_resolver_that_does_not_answer_in_time_is_a_refusal(
    client_allowing: Callable[..., TestClient],
    config: Config,
    dns: Resolver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = client_allowing(*PRIVATE)
    monkeypatch.setattr(callbacknet, "RESOLVE_TIMEOUT", 0.05)
    real = dns.real

    def slow(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow.practice.test":
            time.sleep(0.5)
            return dns("emr.practice.test", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    t0 = time.monotonic()
    r = client.post("/v1/check/fax", json={**FAX_TYPO, "callback_url": "http://slow.practice.test"})
    assert _refused(r) == f"{UNRESOLVED} within 0.05 s"
    assert time.monotonic() - t0 < 0.45
    assert _holds(config) == []


# -- when the callback is made -------------------------------------------------


def _nets(*networks: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n) for n in networks]


async def _post(transport: httpx.AsyncBaseTransport, url: str) -> httpx.Response:
    """As review.callbacks posts a decision (one client per attempt)."""
    async with httpx.AsyncClient(timeout=5, transport=transport) as client:
        return await client.post(url, json={"hold_id": "h1", "status": "released"})


@pytest.fixture
def receiver() -> Iterator[CallbackSink]:
    with CallbackSink() as s:
        yield s


async def test_the_transport_delivers_inside_the_networks(receiver: CallbackSink) -> None:
    transport = CallbackTransport(_nets(*LOOPBACK))
    port = receiver.server.server_address[1]
    for url in (receiver.url("/a"), f"http://localhost:{port}/b"):
        r = await _post(transport, url)
        assert r.status_code == 200
    a, b = receiver.wait_for(2)
    assert (a.path, a.body) == ("/a", {"hold_id": "h1", "status": "released"})
    assert (b.path, b.host) == ("/b", f"localhost:{port}")


@pytest.mark.parametrize(
    ("networks", "why"), [((), NOT_ENABLED), (PRIVATE, OUTSIDE), (("::1/128",), OUTSIDE)]
)
async def test_the_transport_refuses_what_the_networks_do_not_allow(
    receiver: CallbackSink, networks: tuple[str, ...], why: str
) -> None:
    """A hold kept before the limit (or with a URL whose DNS changed since)
    is checked again: the attempt fails as an httpx error, which the
    callback outbox records and retries, and nothing is sent."""
    with pytest.raises(CallbackBlocked, match=re.escape(why)) as caught:
        await _post(CallbackTransport(_nets(*networks)), receiver.url())
    assert isinstance(caught.value, httpx.HTTPError)
    assert receiver.calls == []


async def test_a_dns_answer_that_changes_after_the_check_does_not_move_the_callback(
    receiver: CallbackSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name first resolves inside, then outside. The
    transport connects to the address it checked, and never asks again."""
    resolver = Resolver({"rebind.practice.test": [["127.0.0.1"], [METADATA]]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = receiver.server.server_address[1]
    r = await _post(CallbackTransport(_nets(*LOOPBACK)), f"http://rebind.practice.test:{port}/cb")
    assert r.status_code == 200
    (call,) = receiver.wait_for(1)
    assert (call.path, call.host) == ("/cb", f"rebind.practice.test:{port}")
    assert resolver.asked == ["rebind.practice.test"]
    with pytest.raises(CallbackBlocked, match=re.escape(OUTSIDE)):  # the next answer is outside
        await _post(CallbackTransport(_nets(*LOOPBACK)), f"http://rebind.practice.test:{port}/")
    assert len(receiver.calls) == 1
