"""Fixtures for the web UI and /v1/held: a config in tmp_path, a real store
(SQLite, and PostgreSQL where it answers), a real ReviewService whose next
hop is a real aiosmtpd sink, users of every role, API tokens, and the app."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent / "store", HERE.parent / "relay"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from fastapi.testclient import TestClient  # noqa: E402
from storekit import drop_schema, new_schema, pg_unreachable, pg_url  # noqa: E402
from support import DEMO, Sink  # noqa: E402
from webkit import SENDER_ADDRESSES, Clock, Tokens, add_users  # noqa: E402

from sendguard.api import ApiService, create_app  # noqa: E402
from sendguard.api.tokens import Role, TokenTable, add_token  # noqa: E402
from sendguard.api.webapp import WebContext  # noqa: E402
from sendguard.config import Config, load_config  # noqa: E402
from sendguard.guard import Guard  # noqa: E402
from sendguard.relay.forward import NextHop  # noqa: E402
from sendguard.review.service import ReviewService  # noqa: E402
from sendguard.review.settings import ReviewSettings  # noqa: E402
from sendguard.review.tokens import TokenSigner  # noqa: E402
from sendguard.store.base import Store  # noqa: E402
from sendguard.store.sqlite import SqliteStore  # noqa: E402

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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def config(tmp_path: Path, sink: Sink) -> Config:
    return write_config(tmp_path, sink.port)


@pytest.fixture
def store(config: Config, clock: Clock) -> Iterator[Store]:
    """The quarantine (tests that also want PostgreSQL use `any_store`)."""
    s = SqliteStore(config.store.url.removeprefix("sqlite:///"), clock=clock)
    add_users(s)
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, config: Config, clock: Clock) -> Iterator[Store]:
    """The quarantine on SQLite, then on PostgreSQL (skipped if unreachable)."""
    if request.param == "sqlite":
        s: Store = SqliteStore(config.store.url.removeprefix("sqlite:///"), clock=clock)
        add_users(s)
        yield s
        s.close()
        return
    reason = pg_unreachable()
    if reason is not None:
        pytest.skip(reason)
    from sendguard.store.postgres import PostgresStore

    schema = new_schema()
    pg = PostgresStore(pg_url(schema), clock=clock, pool_min=1)
    try:
        add_users(pg)
        yield pg
    finally:
        pg.close()
        drop_schema(schema)


def make_review(store: Store, sink: Sink, clock: Clock) -> ReviewService:
    hop = NextHop("127.0.0.1", sink.port, local_hostname="relay.test", connections=2, timeout=10)
    return ReviewService(
        store,
        hop,
        TokenSigner([LINK_SECRET]),
        ReviewSettings(base_url=BASE_URL, node="test"),
        clock=clock,
    )


@pytest.fixture
def tokens(config: Config) -> Tokens:
    f = config.api.tokens_file
    return Tokens(
        check=add_token(f, "practice-system"),
        reviewer=add_token(f, "review-tool", Role.REVIEWER),
        admin=add_token(f, "ops", Role.ADMIN),
    )


@pytest.fixture(scope="session")
def guard() -> Guard:
    return Guard.load(directory=DEMO)


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


@pytest.fixture
def review(store: Store, sink: Sink, clock: Clock) -> ReviewService:
    return make_review(store, sink, clock)


@pytest.fixture
def client(
    config: Config, store: Store, review: ReviewService, guard: Guard, tokens: Tokens
) -> Iterator[TestClient]:
    with make_client(config, store, review, guard) as c:
        yield c
        close_hop(c, review)


@pytest.fixture
def any_client(
    config: Config, any_store: Store, sink: Sink, clock: Clock, guard: Guard, tokens: Tokens
) -> Iterator[TestClient]:
    """A client over `any_store` (SQLite, then PostgreSQL)."""
    review = make_review(any_store, sink, clock)
    with make_client(config, any_store, review, guard) as c:
        yield c
        close_hop(c, review)


def close_hop(client: TestClient, review: ReviewService) -> None:
    """Close the next hop's pooled connections on the client's event loop."""
    if review.next_hop is not None:
        client.portal.call(review.next_hop.close)  # type: ignore[union-attr]
