"""A sender's signed links through the ReviewService: preview never acts,
acting spends the link once; forged, expired, reused and misdirected links
are refused; a reviewer-only hold is not released by its sender."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from reviewkit import BASE_URL, events, hold_email, make_service, status_of, token_of
from storekit import Clock
from support import Sink

from sendguard.relay.forward import NextHop
from sendguard.review.service import ReviewService
from sendguard.review.tokens import TokenExpired, TokenInvalid, TokenSigner, TokenUsed
from sendguard.store import HoldStatus
from sendguard.store.sql import SqlStore


def test_links_are_absolute_and_bound_to_hold_and_action(
    store: SqlStore, service: ReviewService
) -> None:
    hold_id = hold_email(store)
    links = service.links(hold_id)
    assert set(links) == {"confirm", "cancel", "recall"}
    for action, url in links.items():
        assert url.startswith(f"{BASE_URL}/decide/{action}/")
        assert service.signer.verify(token_of(url), action, service._clock()).hold_id == hold_id


def test_no_links_without_base_url(store: SqlStore, clock: Clock) -> None:
    service = make_service(store, None, clock, base_url=None)
    assert service.links(hold_email(store)) == {}


def test_notice_offers_the_links_that_fit(store: SqlStore, service: ReviewService) -> None:
    plain = store.get(hold_email(store))
    reviewer_only = store.get(hold_email(store, requires_reviewer=True))
    delayed = store.get(hold_email(store, release_at=service._clock() + timedelta(minutes=10)))
    assert plain is not None
    assert reviewer_only is not None
    assert delayed is not None
    assert set(service.notice_links(plain)) == {"confirm", "cancel"}
    assert set(service.notice_links(reviewer_only)) == {"cancel"}
    assert set(service.notice_links(delayed)) == {"confirm", "recall"}


async def test_preview_never_spends_or_acts(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store)
    token = token_of(service.links(hold_id)["confirm"])
    for _ in range(3):  # mail scanners open links; nothing may happen
        held = service.preview_token(token, "confirm")
        assert held.hold_id == hold_id
        assert held.verdict.findings[0].code == "email.domain_typo"
    assert status_of(store, hold_id) == "held"
    out = await service.act_on_token(token, "confirm")
    assert out.done
    assert out.status is HoldStatus.RELEASED
    [got] = await sink.arrived(1)
    assert got.data.startswith(
        f"X-Sendguard-Released: {hold_id} by sender:a.patel@nhs.net\r\n".encode()
    )
    assert events(store, hold_id) == ["hold", "token_use", "release", "released"]
    [use] = store.audit_entries(hold_id=hold_id, event="token_use")
    assert use.details["action"] == "confirm"
    assert token not in str(use.details)  # the ledger keeps a digest, never the link


async def test_reused_link_is_refused(store: SqlStore, service: ReviewService) -> None:
    hold_id = hold_email(store)
    token = token_of(service.links(hold_id)["cancel"])
    out = await service.act_on_token(token, "cancel")
    assert out.done
    assert out.status is HoldStatus.CANCELLED
    with pytest.raises(TokenUsed, match="already been used"):
        await service.act_on_token(token, "cancel")
    assert events(store, hold_id).count("token_use") == 1


async def test_double_click_on_a_confirm_link_sends_once(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store)
    token = token_of(service.links(hold_id)["confirm"])
    results = await asyncio.gather(
        *(service.act_on_token(token, "confirm") for _ in range(4)), return_exceptions=True
    )
    assert sum(1 for r in results if not isinstance(r, BaseException) and r.done) == 1
    assert sum(1 for r in results if isinstance(r, TokenUsed)) == 3
    await asyncio.sleep(0.2)
    assert len(sink.messages) == 1


async def test_forged_link_is_refused(store: SqlStore, service: ReviewService) -> None:
    hold_id = hold_email(store)
    forged = TokenSigner([b"f" * 32]).issue(hold_id, "confirm", service._clock())
    with pytest.raises(TokenInvalid):
        service.preview_token(forged, "confirm")
    with pytest.raises(TokenInvalid):
        await service.act_on_token(forged, "confirm")
    assert status_of(store, hold_id) == "held"


async def test_link_for_another_action_is_refused(store: SqlStore, service: ReviewService) -> None:
    hold_id = hold_email(store)
    cancel = token_of(service.links(hold_id)["cancel"])
    with pytest.raises(TokenInvalid, match="not a confirm link"):
        await service.act_on_token(cancel, "confirm")
    assert status_of(store, hold_id) == "held"


async def test_expired_link_is_refused(
    store: SqlStore, service: ReviewService, clock: Clock
) -> None:
    hold_id = hold_email(store)
    token = token_of(service.links(hold_id)["confirm"])
    clock.advance(hours=24)
    with pytest.raises(TokenExpired):
        service.preview_token(token, "confirm")
    with pytest.raises(TokenExpired):
        await service.act_on_token(token, "confirm")
    assert status_of(store, hold_id) == "held"


async def test_link_to_a_hold_that_is_gone(store: SqlStore, service: ReviewService) -> None:
    token = service.signer.issue("nosuchhold", "confirm", service._clock())
    with pytest.raises(TokenInvalid):
        service.preview_token(token, "confirm")
    with pytest.raises(TokenInvalid):
        await service.act_on_token(token, "confirm")


async def test_sender_cannot_confirm_a_reviewer_only_hold(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store, requires_reviewer=True)
    token = service.signer.issue(hold_id, "confirm", service._clock())
    out = await service.act_on_token(token, "confirm")
    assert not out.done
    assert out.status is HoldStatus.HELD
    assert "reviewer" in out.message
    [refused] = store.audit_entries(hold_id=hold_id, event="refused")
    assert refused.actor == "sender:a.patel@nhs.net"
    assert refused.details["via"] == "link"
    assert status_of(store, hold_id) == "held"
    # a reviewer still can, and the sender may still cancel instead
    cancel = token_of(service.links(hold_id)["cancel"])
    assert (await service.act_on_token(cancel, "cancel")).status is HoldStatus.CANCELLED
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_cancel_link_after_release_is_too_late(
    store: SqlStore, service: ReviewService, sink: Sink
) -> None:
    hold_id = hold_email(store)
    cancel = token_of(service.links(hold_id)["cancel"])
    await service.release(hold_id, actor="rita", reason="ok", reviewer=True)
    out = await service.act_on_token(cancel, "cancel")
    assert not out.done
    assert out.status is HoldStatus.RELEASED
    assert "already been released" in out.message


async def test_links_work_on_another_node_with_the_same_key(
    store: SqlStore, service: ReviewService, clock: Clock, next_hop: NextHop, sink: Sink
) -> None:
    hold_id = hold_email(store)
    other = make_service(store, next_hop, clock, node="node-b")
    token = token_of(service.links(hold_id)["confirm"])
    assert (await other.act_on_token(token, "confirm")).done
    with pytest.raises(TokenUsed):
        await service.act_on_token(token, "confirm")
    assert len(await sink.arrived(1)) == 1
