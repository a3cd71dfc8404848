"""Fixtures for the review workflow: a settable clock shared by store and
service, real stores (SQLite; PostgreSQL where it answers), a real aiosmtpd
sink as the next hop, and a small HTTP server for decision callbacks.

The store helpers come from tests/store (storekit) and the SMTP sink from
tests/relay (support), so every folder tests against the same real parts.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent / "store", HERE.parent / "relay"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from reviewkit import (  # noqa: E402
    SECRET,
    CallbackServer,
    make_service,
)
from storekit import (  # noqa: E402
    Clock,
    drop_schema,
    new_schema,
    pg_unreachable,
    pg_url,
)
from support import Sink, free_port  # noqa: E402

from sendguard.relay.forward import NextHop  # noqa: E402
from sendguard.review.service import ReviewService  # noqa: E402
from sendguard.store.sql import SqlStore  # noqa: E402
from sendguard.store.sqlite import SqliteStore  # noqa: E402

__all__ = ["SECRET"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SqlStore]:
    s = SqliteStore(tmp_path / "q" / "holds.db", clock=clock)
    yield s
    s.close()


@pytest.fixture(scope="session")
def pg_available() -> None:
    reason = pg_unreachable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def pg_stores(pg_available: None, clock: Clock) -> Iterator[Callable[[], SqlStore]]:
    """Opens store objects on one fresh PostgreSQL schema: one per "node"."""
    from sendguard.store.postgres import PostgresStore

    schema = new_schema()
    opened: list[SqlStore] = []

    def make() -> SqlStore:
        s = PostgresStore(pg_url(schema), clock=clock, pool_min=1)
        opened.append(s)
        return s

    try:
        yield make
    finally:
        for s in opened:
            s.close()
        drop_schema(schema)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
async def next_hop(sink: Sink) -> AsyncIterator[NextHop]:
    hop = NextHop("127.0.0.1", sink.port, local_hostname="relay.test", timeout=5)
    yield hop
    await hop.close()


@pytest.fixture
async def down_hop() -> AsyncIterator[tuple[NextHop, int]]:
    """A next hop with nothing listening yet: (hop, the port to start a sink on)."""
    port = free_port()
    hop = NextHop("127.0.0.1", port, local_hostname="relay.test", timeout=5)
    yield hop, port
    await hop.close()


@pytest.fixture
def service(store: SqlStore, next_hop: NextHop, clock: Clock) -> ReviewService:
    return make_service(store, next_hop, clock)


@pytest.fixture
def callback_server() -> Iterator[CallbackServer]:
    server = CallbackServer().start()
    yield server
    server.stop()
