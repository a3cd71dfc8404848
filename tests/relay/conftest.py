"""Fixtures for relay tests: a real sink as next hop and relays built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import DEMO, MakeRelay, Sink

from sendguard.config import Config
from sendguard.relay import Relay


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def relay_config(tmp_path: Path, next_hop_port: int, **relay: Any) -> Config:
    """A config on the demo directory, listening on a free port, in tmp_path."""
    rules_local = relay.pop("rules_local", None)
    directory = relay.pop("directory", [str(DEMO)])
    data: dict[str, Any] = {
        "directory": {"sources": directory},
        "relay": {
            "listen": "127.0.0.1:0",
            "hostname": "relay.test",
            "next_hop": f"127.0.0.1:{next_hop_port}",
            "check_workers": 0,
            "notify_from": "sendguard@relay.test",
            "notify_retry": 0.2,
            **relay,
        },
        "store": {"url": "sqlite:///quarantine.db"},
    }
    if rules_local is not None:
        data["rules"] = {"local": rules_local}
    return Config.model_validate(data, context={"base_dir": tmp_path})


@pytest.fixture
async def make_relay(tmp_path: Path, sink: Sink) -> AsyncIterator[MakeRelay]:
    """Start in-process relays (checks in threads unless check_workers is set)."""
    relays: list[Relay] = []

    async def make(**relay: Any) -> Relay:
        r = Relay(relay_config(tmp_path, sink.port, **relay))
        await r.start()
        relays.append(r)
        return r

    yield make
    for r in relays:
        await r.stop(timeout=5)
