"""Helpers for the web UI and /v1/held tests: users, holds, sign-in, forms.

Everything runs against a real store (SQLite; PostgreSQL where it answers),
a real ReviewService and a real SMTP sink as the next hop.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from sendguard.core.models import Action, Channel, Finding, Verdict
from sendguard.store import MailEnvelope
from sendguard.store.base import Store

PASSWORD = "correct horse battery staple"
START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday: ISO week 2026-W47

# user name -> (role, the mail address of their holds)
USERS = {
    "apatel": ("sender", "a.patel@nhs.net"),
    "bjones": ("sender", "b.jones@nhs.net"),
    "rita": ("reviewer", "rita@nhs.net"),
    "adam": ("admin", "adam@nhs.net"),
}
SENDER_ADDRESSES = {"apatel": ["a.patel@nhs.net"], "bjones": ["B.Jones@nhs.net"]}


class Clock:
    """A clock the test moves by hand (the store stamps holds with it)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    """argon2 is slow on purpose: hash each test password once per run."""
    from sendguard.review.passwords import hash_password

    return hash_password(password)


def add_users(store: Store) -> None:
    for name, (role, _) in USERS.items():
        store.add_user(name, role, password_hash())


def raw_message(
    *,
    sender: str = "a.patel@nhs.net",
    to: str = "Jane Smith <jane.smith@gmial.com>",
    subject: str = "Your results",
    body: str = "Dear Jane,\r\n\r\nYour results are normal.\r\n",
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <m{abs(hash(subject + body)) % 10**9}@practice.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def verdict(*codes: str, channel: Channel = Channel.EMAIL, recipient: str = "") -> Verdict:
    return Verdict(
        action=Action.HOLD,
        channel=channel,
        findings=[
            Finding(
                code=c,
                message=f"{c} about {recipient or 'the recipient'}",
                suggestion="jane.smith@gmail.com" if c == "email.domain_typo" else None,
                recipient=recipient or None,
                action=Action.HOLD,
                rule=c,
            )
            for c in codes
        ],
        recipients={recipient or "jane.smith@gmial.com": Action.HOLD},
    )


def hold(
    store: Store,
    *,
    sender: str = "a.patel@nhs.net",
    codes: tuple[str, ...] = ("email.domain_typo",),
    recipient: str = "jane.smith@gmial.com",
    raw: bytes | None = None,
    **options: Any,
) -> str:
    """An email held for `recipient`, from `sender`, for `codes`."""
    env = MailEnvelope(mail_from=sender, recipients=(recipient,), peer="127.0.0.1", helo="t")
    return store.hold(
        raw or raw_message(sender=sender, to=recipient),
        env,
        verdict(*codes, recipient=recipient),
        message_id="<m@practice.test>",
        notify=False,
        **options,
    )


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: Response | str) -> str:
    text = page if isinstance(page, str) else page.text
    m = _CSRF.search(text)
    assert m is not None, "no CSRF value in the page"
    return m.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> Response:
    """Sign in through the form, as a browser does; the final response."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_of(form)},
        follow_redirects=False,
    )


def post_form(client: TestClient, path: str, page: str, **data: str) -> Response:
    """POST a form with the CSRF value of the page it was on (a GET of `page`)."""
    csrf = csrf_of(client.get(page))
    return client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)


@dataclass
class Tokens:
    check: str
    reviewer: str
    admin: str


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
