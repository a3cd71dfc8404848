"""Fixtures for the web UI and /v1/held: a config in tmp_path, a real store
(SQLite, and PostgreSQL where it answers), a real ReviewService whose next
hop is a real aiosmtpd sink, users of every role, API tokens, and the app.

Helpers that tests call themselves (write_config, make_client, ...) live in
webkit.py: a test module that imports `conftest` by name gets whichever
conftest.py pytest imported first when several folders run together."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent / "store", HERE.parent / "relay"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from fastapi.testclient import TestClient  # noqa: E402
from storekit import drop_schema, new_schema, pg_unreachable, pg_url  # noqa: E402
from support import DEMO, Sink  # noqa: E402
from webkit import (  # noqa: E402
    Clock,
    Tokens,
    add_users,
    close_hop,
    make_client,
    make_review,
    write_config,
)

from sendguard.api.tokens import Role, add_token  # noqa: E402
from sendguard.config import Config  # noqa: E402
from sendguard.guard import Guard  # noqa: E402
from sendguard.review.service import ReviewService  # noqa: E402
from sendguard.store.base import Store  # noqa: E402
from sendguard.store.sqlite import SqliteStore  # noqa: E402


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
