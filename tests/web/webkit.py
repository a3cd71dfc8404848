"""Helpers for the web UI and /v1/held tests: configs, the app, users,
holds, sign-in, forms.

Everything runs against a real store (SQLite; PostgreSQL where it answers),
a real ReviewService and a real SMTP sink as the next hop. Tests import
these from here, never from `conftest` (which name is ambiguous once other
test folders run in the same pytest call). `support` (tests/relay) is on
sys.path by the time this is imported: conftest.py puts it there.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from support import DEMO, Sink

from sendguard.api import ApiService, create_app
from sendguard.api.tokens import TokenTable
from sendguard.api.webapp import WebContext
from sendguard.config import Config, load_config
from sendguard.core.models import Action, Channel, Finding, Verdict
from sendguard.guard import Guard
from sendguard.relay.forward import NextHop
from sendguard.review.service import ReviewService
from sendguard.review.settings import ReviewSettings
from sendguard.review.tokens import TokenSigner
from sendguard.store import HoldKind, MailEnvelope
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


def api_hold(
    store: Store,
    *,
    token: str | None = "practice-system",
    kind: HoldKind = HoldKind.FAX,
    requires_reviewer: bool = False,
) -> str:
    """A fax (or letter) held as `POST /v1/check/fax|letter` holds it: the
    check token's name in `meta` (none with `token=None`, as a hold made
    before the API recorded it)."""
    meta = {"via": "http"} | ({"token": token} if token is not None else {})
    if kind is HoldKind.LETTER:
        payload: dict[str, Any] = {"addressee": "Mrs J Smith", "address": "3 Park Lane\nLS6 2AB"}
        why = verdict("letter.address_mismatch", channel=Channel.LETTER, recipient="Mrs J Smith")
    else:
        payload = {"number": "0113 496 0001", "intended": "B82005"}
        why = verdict("fax.near_known", channel=Channel.FAX, recipient="+441134960001")
    return store.hold_send(
        kind,
        payload,
        why,
        f"api:{token}",
        meta=meta,
        requires_reviewer=requires_reviewer,
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


LINK_SECRET = b"l" * 32
BASE_URL = "https://sendguard.test"


def write_config(folder: Path, next_hop_port: int, web_extra: str = "") -> Config:
    addresses = "{ " + ", ".join(f"{k} = {v!r}" for k, v in SENDER_ADDRESSES.items()) + " }"
    text = f"""
[directory]
sources = ["{DEMO}"]

[relay]
next_hop = "127.0.0.1:{next_hop_port}"
hostname = "relay.test"
notify = false

[store]
url = "sqlite:///var/quarantine.db"

[api]
tokens_file = "api-tokens.toml"

[review]
secret_file = "review.key"
base_url = "{BASE_URL}"

[web]
session_secret_file = "web-session.key"
sender_addresses = {addresses}
page_size = 5
{web_extra}
""".replace("'", '"')
    (folder / "var").mkdir(exist_ok=True)
    path = folder / "sendguard.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def make_review(store: Store, sink: Sink, clock: Clock) -> ReviewService:
    hop = NextHop("127.0.0.1", sink.port, local_hostname="relay.test", connections=2, timeout=10)
    return ReviewService(
        store,
        hop,
        TokenSigner([LINK_SECRET]),
        ReviewSettings(base_url=BASE_URL, node="test"),
        clock=clock,
    )


def make_client(
    config: Config,
    store: Store,
    review: ReviewService,
    guard: Guard,
    *,
    clock: Callable[[], float] | None = None,
    peer: tuple[str, int] = ("127.0.0.1", 50000),
) -> TestClient:
    """The whole app (check API, UI, /v1/held) as `sendguard serve` builds it."""
    tokens = TokenTable(config.api.tokens_file)
    service = ApiService(config, guard, tokens=tokens, store=store)
    web = WebContext.create(config, store, review, clock=clock)
    return TestClient(create_app(service, web=web), base_url="http://testserver", client=peer)


def close_hop(client: TestClient, review: ReviewService) -> None:
    """Close the next hop's pooled connections on the client's event loop."""
    if review.next_hop is not None:
        client.portal.call(review.next_hop.close)  # type: ignore[union-attr]
