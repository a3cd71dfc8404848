"""Hold notices with two relays' Notifiers on one quarantine (a SQLite file
shared by two processes' store objects; a PostgreSQL schema shared by two
nodes): each notice reaches a real next hop once, and one that a crashed
notifier had claimed is sent by the other once the claim's lease runs out."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from reviewkit import events, hold_email
from storekit import Clock
from support import Sink

from sendguard.relay.forward import NextHop
from sendguard.relay.notify import Notifier
from sendguard.store import NotifyStatus
from sendguard.store.sql import SqlStore
from sendguard.store.sqlite import SqliteStore

SENDER = "a.patel@nhs.net"  # the envelope sender of every hold_email


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two store objects on one quarantine, as two relays have."""
    if request.param == "postgresql":
        make: Callable[[], SqlStore] = request.getfixturevalue("pg_stores")
        yield make(), make()
        return
    path = tmp_path / "shared" / "holds.db"
    a, b = SqliteStore(path, clock=clock), SqliteStore(path, clock=clock)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
async def hops(sink: Sink) -> AsyncIterator[tuple[NextHop, NextHop]]:
    a = NextHop("127.0.0.1", sink.port, local_hostname="relay-a.test", timeout=5)
    b = NextHop("127.0.0.1", sink.port, local_hostname="relay-b.test", timeout=5)
    yield a, b
    await a.close()
    await b.close()


def notifier(store: SqlStore, hop: NextHop, name: str, clock: Clock) -> Notifier:
    """A relay's notifier that looks at the outbox every 0.1 s."""
    return Notifier(
        store,
        hop,
        sender="sendguard@relay.test",
        hostname=f"relay-{name}.test",
        retry=0.1,
        clock=clock,
        lease=60,
    )


def notices(sink: Sink) -> Counter[str]:
    """Hold notices the next hop took, per hold id."""
    found: Counter[str] = Counter()
    for m in sink.to(SENDER):
        hold = re.search(rb"^X-Sendguard-Hold: (\w+)\r?$", m.data, re.MULTILINE)
        if hold is not None:
            found[hold.group(1).decode()] += 1
    return found


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def test_two_notifiers_on_one_outbox_tell_each_sender_once(
    two_stores: tuple[SqlStore, SqlStore], hops: tuple[NextHop, NextHop], sink: Sink, clock: Clock
) -> None:
    a, b = two_stores
    sink.delay = 0.2  # a slow next hop: both notifiers sweep while a notice is in flight
    notifiers = [notifier(a, hops[0], "a", clock), notifier(b, hops[1], "b", clock)]
    holds = [hold_email(s, actor=f"relay@relay-{n}.test") for s, n in [(a, "a"), (b, "b")] * 5]
    tasks = [asyncio.create_task(n.run()) for n in notifiers]
    try:
        await until(lambda: set(notices(sink)) == set(holds), "every sender is told")
        await asyncio.sleep(0.5)  # more sweeps by both: a second copy would show now
    finally:
        for n in notifiers:
            n.close()
        await asyncio.gather(*tasks)
    assert notices(sink) == Counter(dict.fromkeys(holds, 1))
    for hold_id in holds:
        held = a.get(hold_id)
        assert held is not None
        assert (held.notify_status, held.notify_attempts, held.notify_claim) == (
            NotifyStatus.SENT,
            1,
            None,
        )
        [notice] = a.audit_entries(hold_id=hold_id, event="notify")
        assert notice.actor in {"relay@relay-a.test", "relay@relay-b.test"}
    assert b.verify_audit().ok


async def test_a_notice_claimed_by_a_crashed_relay_is_sent_by_the_other(
    two_stores: tuple[SqlStore, SqlStore], hops: tuple[NextHop, NextHop], sink: Sink, clock: Clock
) -> None:
    a, b = two_stores
    hold_id = hold_email(a, actor="relay@relay-a.test")
    (claimed,) = a.claim_notifications(clock.now, "relay@relay-a.test", 60)  # then relay a dies
    assert claimed.hold_id == hold_id
    survivor = notifier(b, hops[1], "b", clock)
    task = asyncio.create_task(survivor.run())
    try:
        await asyncio.sleep(0.4)  # several sweeps: the lease is still relay a's
        assert notices(sink) == Counter()
        clock.advance(seconds=61)
        survivor.poke()
        await until(lambda: notices(sink) == Counter({hold_id: 1}), "the notice is sent")
        await asyncio.sleep(0.3)
    finally:
        survivor.close()
        await task
    assert notices(sink) == Counter({hold_id: 1})
    [notice] = b.audit_entries(hold_id=hold_id, event="notify")
    assert (notice.actor, notice.details) == ("relay@relay-b.test", {"attempt": 1, "links": []})
    assert events(b, hold_id) == ["hold", "notify"]
