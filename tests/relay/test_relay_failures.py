"""Fail safe: what the relay does when checking, storing or itself fails.

A message that cannot be checked is held; a hold that cannot be stored is
answered 451; an internal error is answered 451, never 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from support import MakeRelay, Sink, message, open_quarantine, smtp_send

from sendguard.core.models import Verdict
from sendguard.relay import CheckFailed
from sendguard.relay.checker import InlineChecker, RecipientDecision
from sendguard.store import StoreError

CLEAN = "jane.smith@gmail.com"
GP = "a.patel@nhs.net"


class Exploding(InlineChecker):
    """A checker whose message check raises what it is given."""

    def __init__(self, base: InlineChecker, error: BaseException) -> None:
        self.base, self.error = base, error

    async def check_recipient(self, address: str, sender: str) -> RecipientDecision:
        return await self.base.check_recipient(address, sender)

    async def check_message(self, raw: bytes, recipients: Sequence[str], sender: str) -> Verdict:
        raise self.error


async def test_a_message_that_cannot_be_checked_is_held(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    relay = await make_relay(check_timeout=0.2)
    assert relay.handler is not None
    assert isinstance(relay.checker, InlineChecker)
    guard = relay.checker.guard

    def slow(*args: Any, **kwargs: Any) -> Verdict:
        time.sleep(1.0)
        raise AssertionError("too late to matter")

    guard.check_message = slow  # type: ignore[method-assign]
    r = await smtp_send(relay.address[1], GP, [CLEAN], message(subject="[secure] x"))
    assert r.code == 250
    assert "Held for review" in r.text
    with open_quarantine(tmp_path) as store:
        held = store.get(r.text.split()[-1])
        assert held is not None
        assert held.codes == ("relay.not_checked",)
        assert "no verdict within" in held.verdict.findings[0].message
    await sink.arrived(1)  # only the notice to the sender
    assert sink.to(CLEAN) == []


async def test_a_check_that_crashes_holds_too(make_relay: MakeRelay, tmp_path: Path) -> None:
    relay = await make_relay()
    assert relay.handler is not None
    assert isinstance(relay.checker, InlineChecker)
    relay.handler.checker = Exploding(relay.checker, CheckFailed("the check failed (KeyError)"))
    r = await smtp_send(relay.address[1], GP, [CLEAN], message())
    assert r.code == 250
    assert "Held" in r.text


async def test_an_internal_error_answers_451_never_500(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay()
    assert relay.handler is not None
    assert isinstance(relay.checker, InlineChecker)
    relay.handler.checker = Exploding(relay.checker, RuntimeError("bug"))
    r = await smtp_send(relay.address[1], GP, [CLEAN], message())
    assert r.code == 451
    assert r.text.startswith("4.3.0")
    assert relay.stats()["internal_error"] == 1
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_a_hold_that_cannot_be_stored_answers_451(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay()
    assert relay.handler is not None

    class Broken:
        def hold(self, *args: Any, **kwargs: Any) -> str:
            raise StoreError("quarantine x: disk I/O error")

    relay.handler.store = Broken()  # type: ignore[assignment]
    r = await smtp_send(
        relay.address[1], GP, ["jane.smith@gmial.com"], message(to="jane.smith@gmial.com")
    )
    assert r.code == 451
    assert "cannot be stored" in r.text
    await asyncio.sleep(0.1)
    assert sink.messages == []


async def test_an_error_in_rcpt_answers_451(make_relay: MakeRelay) -> None:
    relay = await make_relay()
    assert relay.handler is not None

    class Broken(InlineChecker):
        def __init__(self) -> None:
            pass

        async def check_recipient(self, address: str, sender: str) -> RecipientDecision:
            raise ZeroDivisionError

    relay.handler.checker = Broken()
    r = await smtp_send(relay.address[1], GP, [CLEAN], message())
    assert r.rcpt[CLEAN][0] == 451


async def test_a_failed_recipient_check_accepts_and_data_decides(
    make_relay: MakeRelay, sink: Sink
) -> None:
    relay = await make_relay()
    assert relay.handler is not None
    assert isinstance(relay.checker, InlineChecker)
    base = relay.checker

    class Flaky(InlineChecker):
        def __init__(self) -> None:
            pass

        async def check_recipient(self, address: str, sender: str) -> RecipientDecision:
            raise CheckFailed("no verdict within 10 s")

        async def check_message(
            self, raw: bytes, recipients: Sequence[str], sender: str
        ) -> Verdict:
            return await base.check_message(raw, recipients, sender)

    relay.handler.checker = Flaky()
    r = await smtp_send(relay.address[1], GP, [CLEAN], message(subject="[secure] ok"))
    assert r.code == 250
    assert "Forwarded" in r.text
    await sink.arrived(1)


async def test_stop_finishes_the_message_in_flight(make_relay: MakeRelay, sink: Sink) -> None:
    relay = await make_relay()
    port = relay.address[1]
    idle = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await idle.connect()
    sink.delay = 1.0
    sending = asyncio.create_task(
        smtp_send(relay.address[1], GP, [CLEAN], message(subject="[secure] in flight"))
    )
    assert await asyncio.to_thread(sink.data_started.wait, 10)
    await relay.stop(timeout=10)
    r = await sending
    assert r.code == 250
    assert "Forwarded" in r.text
    assert len(sink.messages) == 1
    with pytest.raises(aiosmtplib.SMTPException):
        await idle.noop()  # told 421 and disconnected
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_reload_applies_new_rules_and_keeps_them_when_broken(
    make_relay: MakeRelay, sink: Sink, tmp_path: Path
) -> None:
    local = tmp_path / "local.d"
    local.mkdir()
    relay = await make_relay(rules_local=[str(local)])
    raw = message()
    assert (await smtp_send(relay.address[1], GP, [CLEAN], raw)).text.startswith("2.0.0 Forwarded")
    (local / "hold.toml").write_text(
        '[[rule]]\nname = "email-insecure-domain"\naction = "hold"\n', encoding="utf-8"
    )
    assert await relay.reload()
    assert "Held" in (await smtp_send(relay.address[1], GP, [CLEAN], raw)).text
    (local / "broken.toml").write_text(
        "[[rule]]\nname = 'x'\ncheck = 'no.such'\n", encoding="utf-8"
    )
    assert not await relay.reload()
    assert "Held" in (await smtp_send(relay.address[1], GP, [CLEAN], raw)).text
