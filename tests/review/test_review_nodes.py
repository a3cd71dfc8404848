"""Several nodes on one PostgreSQL quarantine: two ReviewServices, each with
its own store object (its own connection pool), as two relay nodes would
have. Every release is delivered exactly once, whoever races."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from reviewkit import events, hold_email, make_service, token_of
from storekit import Clock
from support import Sink

from sendguard.relay.forward import NextHop
from sendguard.review.tokens import TokenUsed
from sendguard.store import HoldStatus
from sendguard.store.sql import SqlStore


async def test_two_nodes_releasing_one_hold_deliver_it_once(
    pg_stores: Callable[[], SqlStore], clock: Clock, next_hop: NextHop, sink: Sink
) -> None:
    a, b = pg_stores(), pg_stores()
    node_a = make_service(a, next_hop, clock, node="node-a")
    node_b = make_service(b, next_hop, clock, node="node-b")
    holds = [hold_email(a) for _ in range(5)]
    outs = await asyncio.gather(
        *(
            svc.release(h, actor=f"reviewer-{svc.settings.node}", reason="ok", reviewer=True)
            for h in holds
            for svc in (node_a, node_b, node_a, node_b)
        )
    )
    assert sum(o.done for o in outs) == len(holds)
    got = await sink.arrived(len(holds))
    await asyncio.sleep(0.3)
    assert len(sink.messages) == len(holds)
    assert sorted(m.data.split(b"\r\n", 1)[0].split()[1].decode() for m in got) == sorted(holds)
    for h in holds:
        assert events(a, h).count("released") == 1


async def test_two_nodes_running_the_jobs_deliver_each_once(
    pg_stores: Callable[[], SqlStore], clock: Clock, down_hop: tuple[NextHop, int]
) -> None:
    """Releases pending while the next hop was down, and delay-and-recall
    holds coming due, are picked up by both nodes' jobs at once."""
    hop, port = down_hop
    a, b = pg_stores(), pg_stores()
    node_a = make_service(a, hop, clock, node="node-a")
    node_b = make_service(b, hop, clock, node="node-b")
    pending = [hold_email(a) for _ in range(4)]
    for h in pending:
        out = await node_a.release(h, actor="rita", reason="ok", reviewer=True)
        assert out.status is HoldStatus.PENDING
    delayed = [hold_email(b, release_at=clock.now + timedelta(minutes=5)) for _ in range(4)]
    sink = Sink(port=port).start()
    try:
        clock.advance(minutes=10)
        counts = await asyncio.gather(*(n.run_due() for n in (node_a, node_b, node_a, node_b)))
        assert sum(c.released for c in counts) == len(pending) + len(delayed)
        await sink.arrived(len(pending) + len(delayed))
        await asyncio.sleep(0.3)
        assert len(sink.messages) == len(pending) + len(delayed)
    finally:
        sink.stop()
    report = a.verify_audit()
    assert report.ok, report.problem


async def test_a_link_is_spent_once_across_nodes(
    pg_stores: Callable[[], SqlStore], clock: Clock, next_hop: NextHop, sink: Sink
) -> None:
    a, b = pg_stores(), pg_stores()
    node_a = make_service(a, next_hop, clock, node="node-a")
    node_b = make_service(b, next_hop, clock, node="node-b")
    hold_id = hold_email(a)
    token = token_of(node_a.links(hold_id)["confirm"])
    results = await asyncio.gather(
        node_a.act_on_token(token, "confirm"),
        node_b.act_on_token(token, "confirm"),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, TokenUsed)) == 1
    assert len(await sink.arrived(1)) == 1
