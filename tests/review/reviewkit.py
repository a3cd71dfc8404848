"""Helpers for the review tests: holds to decide on, a service on a store,
and an HTTP server that records decision callbacks."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sendguard.core.models import Action, Channel, Finding, Verdict
from sendguard.relay.forward import NextHop
from sendguard.review.service import ReviewService
from sendguard.review.settings import ReviewSettings
from sendguard.review.tokens import TokenSigner
from sendguard.store import MailEnvelope
from sendguard.store.base import Store

SECRET = b"k" * 32
BASE_URL = "https://review.test/sg"
RAW = (
    b"From: Dr A Patel <a.patel@nhs.net>\r\n"
    b"To: Jane Smith <jane.smith@gmial.com>\r\n"
    b"Subject: Your results\r\n"
    b"Message-ID: <m1@practice.test>\r\n"
    b"\r\n"
    b"Dear Jane,\r\n\r\nYour results are normal.\r\n"
)
ENV = MailEnvelope(
    mail_from="a.patel@nhs.net",
    recipients=("jane.smith@gmial.com", "gp@nhs.net"),
    mail_options=("BODY=8BITMIME",),
    peer="127.0.0.1",
    helo="practice.test",
)


def verdict(*codes: str, channel: Channel = Channel.EMAIL) -> Verdict:
    return Verdict(
        action=Action.HOLD,
        channel=channel,
        findings=[
            Finding(code=c, message=f"{c} happened", action=Action.HOLD, rule=c) for c in codes
        ],
        recipients={"jane.smith@gmial.com": Action.HOLD},
    )


def hold_email(store: Store, **options: Any) -> str:
    """An email held for its first recipient only (the second was forwarded)."""
    options.setdefault("held_recipients", ["jane.smith@gmial.com"])
    return store.hold(
        RAW,
        ENV,
        verdict("email.domain_typo"),
        message_id="<m1@practice.test>",
        patients=["9434765919"],
        **options,
    )


def make_service(
    store: Store,
    next_hop: NextHop | None,
    clock: Any,
    *,
    node: str = "node-a",
    **settings: Any,
) -> ReviewService:
    settings.setdefault("base_url", BASE_URL)
    settings.setdefault("release_backoff", timedelta(seconds=60))
    settings.setdefault("release_attempts", 3)
    return ReviewService(
        store,
        next_hop,
        TokenSigner([SECRET]),
        ReviewSettings(node=node, **settings),
        clock=clock,
    )


def status_of(store: Store, hold_id: str) -> str:
    held = store.get(hold_id)
    assert held is not None
    return held.status.value


def events(store: Store, hold_id: str) -> list[str]:
    return [e.event for e in store.audit_entries(hold_id=hold_id, limit=1000)]


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@dataclass
class CallbackServer:
    """Records JSON POSTs; answers `fail_first` of them with 503."""

    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/decided"

    def start(self) -> CallbackServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                outer.attempts += 1
                if outer.attempts <= outer.fail_first:
                    self.send_response(503)
                else:
                    outer.received.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def at(clock: Any, **delta: float) -> datetime:
    """Move the test clock on; the new time."""
    result: datetime = clock.advance(**delta)
    return result
