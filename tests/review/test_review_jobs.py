"""The background jobs: delay-and-recall, expiry (cancel or escalate, never
release), and decision callbacks for fax and letter holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from reviewkit import (
    CallbackServer,
    events,
    hold_email,
    make_service,
    status_of,
    token_of,
    verdict,
)
from storekit import Clock
from support import Sink

from sendguard.core.models import Channel
from sendguard.relay.forward import NextHop
from sendguard.review.service import ReviewService
from sendguard.store import ExpiryOutcome, HoldStatus
from sendguard.store.sql import SqlStore

# -- delay and recall ---------------------------------------------------------


async def test_delayed_hold_is_released_when_its_time_comes(
    store: SqlStore, service: ReviewService, clock: Clock, sink: Sink
) -> None:
    hold_id = hold_email(store, release_at=clock.now + timedelta(minutes=10))
    clock.advance(minutes=9)
    assert (await service.run_due()).released == 0
    clock.advance(minutes=1)
    assert (await service.run_due()).released == 1
    [got] = await sink.arrived(1)
    assert got.data.startswith(f"X-Sendguard-Released: {hold_id} by node-a\r\n".encode())
    held = store.get(hold_id)
    assert held is not None
    assert (held.status, held.decided_by, held.reason) == (
        HoldStatus.RELEASED,
        "node-a",
        "delay_elapsed",
    )


async def test_recalled_before_its_time_is_never_sent(
    store: SqlStore, service: ReviewService, clock: Clock, sink: Sink
) -> None:
    hold_id = hold_email(store, release_at=clock.now + timedelta(minutes=10))
    recall = token_of(service.notice_links(store.get(hold_id))["recall"])  # type: ignore[arg-type]
    clock.advance(minutes=5)
    out = await service.act_on_token(recall, "recall")
    assert out.done
    assert out.status is HoldStatus.RECALLED
    clock.advance(minutes=10)
    assert (await service.run_due()).released == 0
    await asyncio.sleep(0.1)
    assert sink.messages == []
    assert events(store, hold_id) == ["hold", "token_use", "recall"]
    clock.advance(days=31)
    assert (await service.run_due()).purged == 1  # recalled mail is purged like cancelled


async def test_recall_after_release_is_too_late(
    store: SqlStore, service: ReviewService, clock: Clock, sink: Sink
) -> None:
    hold_id = hold_email(store, release_at=clock.now + timedelta(minutes=10))
    recall = service.links(hold_id, ["recall"])["recall"]
    clock.advance(minutes=11)
    await service.run_due()
    out = await service.act_on_token(token_of(recall), "recall")
    assert not out.done
    assert out.status is HoldStatus.RELEASED
    assert len(await sink.arrived(1)) == 1


async def test_delayed_hold_needing_a_reviewer_waits_for_one(
    store: SqlStore, service: ReviewService, clock: Clock, sink: Sink
) -> None:
    hold_id = hold_email(
        store, release_at=clock.now + timedelta(minutes=10), requires_reviewer=True
    )
    clock.advance(hours=1)
    assert (await service.run_due()).released == 0
    assert status_of(store, hold_id) == "held"


# -- expiry -------------------------------------------------------------------


async def test_undecided_hold_expires_into_cancel(
    store: SqlStore, service: ReviewService, clock: Clock, sink: Sink
) -> None:
    hold_id = hold_email(store, expires_at=service.settings.expires_at(clock.now))
    clock.advance(days=7, seconds=-1)
    assert (await service.run_due()).expired == 0
    clock.advance(seconds=1)
    assert (await service.run_due()).expired == 1
    assert status_of(store, hold_id) == "expired"
    assert (await service.release(hold_id, actor="r", reason="ok", reviewer=True)).done is False
    clock.advance(days=30, seconds=1)
    assert (await service.run_due()).purged == 1
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_expiry_can_escalate_once_then_cancel(
    store: SqlStore, clock: Clock, next_hop: NextHop, sink: Sink
) -> None:
    service = make_service(store, next_hop, clock, expire_to=ExpiryOutcome.ESCALATE)
    hold_id = hold_email(store, expires_at=service.settings.expires_at(clock.now))
    clock.advance(days=7)
    assert (await service.run_due()).escalated == 1
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.ESCALATED
    assert held.requires_reviewer  # a sender's link no longer releases it
    assert held.expires_at == clock.now + timedelta(days=7)
    clock.advance(days=7)
    assert (await service.run_due()).expired == 1
    assert status_of(store, hold_id) == "expired"
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_escalated_hold_can_still_be_released_by_a_reviewer(
    store: SqlStore, clock: Clock, next_hop: NextHop, sink: Sink
) -> None:
    service = make_service(store, next_hop, clock, expire_to=ExpiryOutcome.ESCALATE)
    hold_id = hold_email(store, expires_at=clock.now)
    await service.run_due()
    token = service.signer.issue(hold_id, "confirm", clock.now)
    assert not (await service.act_on_token(token, "confirm")).done
    out = await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    assert out.status is HoldStatus.RELEASED
    assert len(await sink.arrived(1)) == 1


# -- fax and letter decisions, called back --------------------------------------


def hold_fax(store: SqlStore, url: str | None) -> str:
    return store.hold_send(
        "fax",
        {"number": "0113 496 0000", "intended": "B82005"},
        verdict("fax.near_known", channel=Channel.FAX),
        "a.patel@nhs.net",
        callback_url=url,
        patients=["9434765919"],
    )


async def test_fax_release_is_recorded_and_called_back(
    store: SqlStore, service: ReviewService, callback_server: CallbackServer, sink: Sink
) -> None:
    hold_id = hold_fax(store, callback_server.url)
    out = await service.release(hold_id, actor="rita", reason="checked", reviewer=True)
    assert out.done
    assert out.status is HoldStatus.RELEASED
    assert (await service.run_due()).callbacks == 1
    [body] = callback_server.received
    assert body["hold_id"] == hold_id
    assert body["kind"] == "fax"
    assert body["status"] == "released"
    assert body["decided_by"] == "rita"
    assert body["reason"] == "checked"
    assert body["decided_at"]
    assert "number" not in body  # the decision only, never the send
    assert sink.messages == []  # no next hop for a fax
    assert events(store, hold_id)[-2:] == ["callback_queued", "callback"]
    assert (await service.run_due()).callbacks == 0  # delivered once


async def test_callback_is_retried_with_backoff_until_2xx(
    store: SqlStore, service: ReviewService, callback_server: CallbackServer, clock: Clock
) -> None:
    callback_server.fail_first = 2
    hold_id = hold_fax(store, callback_server.url)
    await service.cancel(hold_id, actor="rita", reason="wrong-number")
    first = await service.run_due()
    assert (first.callbacks, first.callbacks_failed) == (0, 1)
    assert (await service.run_due()).callbacks_failed == 0  # not due yet
    clock.advance(seconds=60)
    assert (await service.run_due()).callbacks_failed == 1
    clock.advance(seconds=119)
    assert (await service.run_due()).total == 0
    clock.advance(seconds=1)
    assert (await service.run_due()).callbacks == 1
    [body] = callback_server.received
    assert body["status"] == "cancelled"
    attempts = store.audit_entries(hold_id=hold_id, event="callback")
    assert [a.details["attempt"] for a in attempts] == [1, 2, 3]
    assert [a.details["ok"] for a in attempts] == [False, False, True]
    assert attempts[0].details["http_status"] == 503


async def test_callback_gives_up_after_the_attempts(
    store: SqlStore, service: ReviewService, callback_server: CallbackServer, clock: Clock
) -> None:
    callback_server.fail_first = 100
    hold_id = hold_fax(store, callback_server.url)
    await service.cancel(hold_id, actor="rita", reason="wrong-number")
    for _ in range(6):
        await service.run_due()
        clock.advance(minutes=10)
    assert callback_server.attempts == 3  # release_attempts
    last = store.audit_entries(hold_id=hold_id, event="callback")[-1]
    assert last.details["next"] is None


async def test_callback_to_a_non_http_url_is_not_made(
    store: SqlStore, service: ReviewService
) -> None:
    hold_id = hold_fax(store, "file:///etc/passwd")
    await service.cancel(hold_id, actor="rita", reason="wrong-number")
    counts = await service.run_due()
    assert counts.callbacks_failed == 1
    [entry] = store.audit_entries(hold_id=hold_id, event="callback")
    assert entry.details["error"] == "not an http(s) URL"


async def test_callback_does_not_block_the_decision(
    store: SqlStore, service: ReviewService
) -> None:
    hold_id = hold_fax(store, "http://127.0.0.1:9/unreachable")
    out = await asyncio.wait_for(service.cancel(hold_id, actor="r", reason="x"), 2)
    assert out.done


async def test_fax_without_callback(store: SqlStore, service: ReviewService) -> None:
    hold_id = hold_fax(store, None)
    out = await service.release(hold_id, actor="rita", reason="checked", reviewer=True)
    assert out.status is HoldStatus.RELEASED
    assert "callback_queued" not in events(store, hold_id)


async def test_a_new_node_finds_queued_callbacks(
    store: SqlStore, clock: Clock, callback_server: CallbackServer
) -> None:
    """The outbox is in the store: a node that did not make the decision delivers it."""
    decider = make_service(store, None, clock, node="web")
    hold_id = hold_fax(store, callback_server.url)
    await decider.cancel(hold_id, actor="rita", reason="x")
    relay = make_service(store, None, clock, node="relay")
    assert (await relay.run_due()).callbacks == 1
    assert (await decider.run_due()).callbacks == 0
    assert len(callback_server.received) == 1


async def test_expired_fax_is_called_back(
    store: SqlStore, clock: Clock, callback_server: CallbackServer
) -> None:
    service = make_service(store, None, clock)
    hold_id = store.hold_send(
        "letter",
        {"addressee": "Mrs J Smith"},
        verdict("letter.address", channel=Channel.LETTER),
        "a.patel@nhs.net",
        callback_url=callback_server.url,
        expires_at=clock.now,
    )
    counts = await service.run_due()
    assert counts.expired == 1
    assert counts.callbacks == 1
    assert callback_server.received[0]["status"] == "expired"
    assert callback_server.received[0]["hold_id"] == hold_id
