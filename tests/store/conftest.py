"""Every store test runs against SQLite and PostgreSQL alike.

PostgreSQL tests use a fresh schema per test (dropped afterwards) in the
database of SENDGUARD_TEST_PG_URL (default postgresql://postgres@127.0.0.1
:5432/test); they are skipped, saying why, only when no server answers
there, and fail on any other problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storekit import (
    Backend,
    Clock,
    drop_schema,
    drop_stale_schemas,
    new_schema,
    pg_raw,
    pg_unreachable,
    pg_url,
    sqlite_raw,
)

from sendguard.store.sql import SqlStore
from sendguard.store.sqlite import SqliteStore


@pytest.fixture(scope="session")
def pg_available() -> None:
    reason = pg_unreachable()
    if reason is not None:
        pytest.skip(reason)
    drop_stale_schemas()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _sqlite_backend(tmp_path: Path, clock: Clock) -> Iterator[Backend]:
    path = tmp_path / "q" / "holds.db"
    backend = Backend(
        name="sqlite",
        url=f"sqlite:///{path}",
        clock=clock,
        opener=lambda c: SqliteStore(path, clock=c),
        raw_runner=sqlite_raw(path),
    )
    yield backend
    backend.close_all()


def _pg_backend(clock: Clock) -> Iterator[Backend]:
    from sendguard.store.postgres import PostgresStore

    schema = new_schema()
    backend = Backend(
        name="postgresql",
        url=pg_url(schema),
        clock=clock,
        opener=lambda c: PostgresStore(pg_url(schema), clock=c, pool_min=1),
        raw_runner=pg_raw(schema),
    )
    try:
        yield backend
    finally:
        backend.close_all()
        drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield from _sqlite_backend(tmp_path, clock)
    else:
        request.getfixturevalue("pg_available")
        yield from _pg_backend(clock)


@pytest.fixture
def pg_backend(pg_available: None, clock: Clock) -> Iterator[Backend]:
    yield from _pg_backend(clock)


@pytest.fixture
def store(backend: Backend) -> SqlStore:
    return backend.make()


@pytest.fixture
def backend_stores(backend: Backend) -> tuple[SqlStore, SqlStore]:
    """Two store objects on one database: two processes, or two nodes."""
    return backend.make(), backend.make()
