"""The quarantine in PostgreSQL: one store shared by several relay and API
nodes.

    open_store("postgresql://sendguard@db.internal/sendguard?schema=sendguard")

The URL is a libpq URL; sendguard reads two query parameters of its own:
`schema` (created if missing, and put first on the search path, so that one
database can hold several quarantines, e.g. one per test run) and `pool_max`
(connections per process, default 8). Other parameters (`sslmode`,
`connect_timeout`, `options`, ...) go to libpq as they are.

Durability: each hold is one transaction, committed before `hold()` returns;
`synchronous_commit` is turned on for sendguard's sessions if the server has
it off. Concurrency: a pool of autocommit connections, each write an explicit
transaction at READ COMMITTED; a transition locks the hold's row (`SELECT ...
FOR UPDATE`) and then compare-and-sets its status, and an audit append locks
the chain head row, so appends from every node form one chain. Locks are
always taken hold rows first (by id), head row last: no deadlock cycle.

Migrations run under `pg_advisory_xact_lock`, so processes starting together
on an empty database do not race: one migrates, the others wait and find the
schema current.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from sendguard.store.audit import GENESIS
from sendguard.store.conn import Rows
from sendguard.store.models import StoreError
from sendguard.store.sql import SqlStore, utc_now

__all__ = ["MIGRATIONS", "PostgresStore", "parse_url"]

MIGRATIONS: tuple[str, ...] = (
    # 1: holds (message bytes last), audit chain, single-use tokens, users,
    # API tokens (dropped again by 2): the same columns as SQLite's schema version 2
    f"""
    CREATE TABLE holds (
        id text PRIMARY KEY,
        kind text NOT NULL DEFAULT 'email',
        status text NOT NULL,
        created_at timestamptz NOT NULL,
        mail_from text NOT NULL,
        recipients jsonb NOT NULL,
        held_recipients jsonb NOT NULL,
        mail_options jsonb NOT NULL,
        peer text NOT NULL,
        helo text NOT NULL,
        message_id text NOT NULL,
        size bigint NOT NULL,
        action text NOT NULL,
        codes jsonb NOT NULL,
        verdict jsonb NOT NULL,
        sha256 text NOT NULL,
        patients jsonb NOT NULL DEFAULT '[]',
        payload jsonb,
        callback_url text,
        meta jsonb NOT NULL DEFAULT '{{}}',
        requires_reviewer boolean NOT NULL DEFAULT false,
        release_at timestamptz,
        expires_at timestamptz,
        decided_by text,
        decided_at timestamptz,
        reason text,
        lease_owner text,
        lease_token text,
        lease_until timestamptz,
        release_attempts integer NOT NULL DEFAULT 0,
        release_next_at timestamptz,
        release_error text,
        release_reply text,
        released_at timestamptz,
        purged_at timestamptz,
        notify_status text NOT NULL,
        notify_attempts integer NOT NULL DEFAULT 0,
        notify_next_at timestamptz,
        notify_error text,
        notified_at timestamptz,
        message bytea NOT NULL
    );
    CREATE INDEX holds_by_status ON holds (status, created_at);
    CREATE INDEX holds_by_created ON holds (created_at);
    CREATE INDEX holds_to_notify ON holds (notify_status, notify_next_at);
    CREATE INDEX holds_due_release ON holds (status, release_at);
    CREATE INDEX holds_due_retry ON holds (status, release_next_at);
    CREATE INDEX holds_due_expiry ON holds (status, expires_at);
    CREATE INDEX holds_by_lease ON holds (status, lease_until);
    CREATE INDEX holds_by_decided ON holds (status, decided_at);
    CREATE TABLE audit_log (
        seq bigint PRIMARY KEY,
        ts timestamptz NOT NULL,
        event text NOT NULL,
        actor text NOT NULL,
        hold_id text,
        details text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
    );
    CREATE INDEX audit_by_hold ON audit_log (hold_id, seq);
    CREATE INDEX audit_by_ts ON audit_log (ts);
    CREATE TABLE audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL
    );
    INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}');
    CREATE FUNCTION sendguard_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only';
    END $$;
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION sendguard_audit_append_only();
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION sendguard_audit_append_only();
    CREATE TABLE used_tokens (
        id text PRIMARY KEY,
        expires_at timestamptz NOT NULL,
        used_at timestamptz NOT NULL
    );
    CREATE INDEX used_tokens_by_expiry ON used_tokens (expires_at);
    CREATE TABLE users (
        username text PRIMARY KEY,
        role text NOT NULL,
        password_hash text NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE api_tokens (
        id text PRIMARY KEY,
        name text NOT NULL,
        token_sha256 text NOT NULL UNIQUE,
        role text NOT NULL,
        scopes jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        created_by text NOT NULL,
        last_used timestamptz,
        revoked_at timestamptz
    );
    """,
    # 2: API tokens live in the HTTP API's own file (api/tokens.py), so that
    # checks never depend on the database; the table was never used
    """
    DROP TABLE IF EXISTS api_tokens;
    """,
    # 3: claims on hold notices, so that of several nodes sweeping the
    # outbox only one sends each notice
    """
    ALTER TABLE holds ADD COLUMN notify_owner text, ADD COLUMN notify_token text;
    """,
)

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DEFAULT_POOL_MAX = 8


def parse_url(url: str) -> tuple[str, str | None, int, str]:
    """Split a store URL into (libpq URL, schema, pool size, password-free
    label for messages), taking sendguard's own parameters out."""
    parts = urlsplit(url)
    schema: str | None = None
    pool_max = _DEFAULT_POOL_MAX
    options: list[str] = []
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            if not _SCHEMA_NAME.fullmatch(value):
                raise StoreError(
                    f"store URL: schema {value!r} is not a plain lower-case name "
                    "(letters, digits, _)"
                )
            schema = value
        elif key == "pool_max":
            if not value.isdigit() or int(value) < 1:
                raise StoreError(f"store URL: pool_max must be a positive number, not {value!r}")
            pool_max = int(value)
        elif key == "options":
            options.append(value)
        else:
            kept.append((key, value))
    if schema is not None:
        options.append(f"-c search_path={schema}")
    if options:
        kept.append(("options", " ".join(options)))
    if not any(k == "connect_timeout" for k, _ in kept):
        kept.append(("connect_timeout", "10"))
    conninfo = urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote)))
    host = parts.hostname or "localhost"
    where = f"{host}:{parts.port}" if parts.port else host
    label = f"quarantine postgresql://{where}{parts.path}" + (
        f" (schema {schema})" if schema else ""
    )
    return conninfo, schema, pool_max, label


@lru_cache(maxsize=256)
def _pg_sql(statement: str) -> str:
    return statement.replace("%", "%%").replace("?", "%s")


class _Conn:
    """`Conn` over psycopg: `?` placeholders become `%s`."""

    def __init__(self, conn: psycopg.Connection[DictRow]) -> None:
        self._conn = conn

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Rows:
        if params:
            cur = self._conn.execute(_pg_sql(statement), list(params))
        else:
            cur = self._conn.execute(statement)
        found = cur.fetchall() if cur.description is not None else []
        return Rows(found, cur.rowcount)


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Per new connection: never acknowledge a hold before its WAL is flushed."""
    row = conn.execute("SHOW synchronous_commit").fetchone()
    if (
        row is not None
        and str(row[0] if not isinstance(row, dict) else row["synchronous_commit"]) == "off"
    ):
        conn.execute("SET synchronous_commit = on")


class PostgresStore(SqlStore):
    """A quarantine in a PostgreSQL database (optionally in its own schema)."""

    _for_update = " FOR UPDATE"
    _skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        clock: Callable[[], datetime] = utc_now,
        pool_min: int = 1,
    ) -> None:
        super().__init__(clock=clock)
        conninfo, self.schema, pool_max, self.label = parse_url(url)
        try:  # one direct connection first: a wrong URL fails at once, with libpq's reason
            with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row) as conn:
                self._migrate(conn, create)
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            conninfo,
            connection_class=psycopg.Connection[DictRow],
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=min(pool_min, pool_max),
            max_size=pool_max,
            configure=_configure,
            check=ConnectionPool.check_connection,
            open=False,
            name="sendguard-store",
        )
        try:
            self._pool.open(wait=True, timeout=15.0)
        except psycopg.Error as exc:
            self._pool.close()
            raise self._error(exc) from exc

    def _error(self, exc: psycopg.Error) -> StoreError:
        """A StoreError without the server's DETAIL line (it can quote values)."""
        diag = getattr(exc, "diag", None)
        primary = diag.message_primary if diag is not None else None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return StoreError(f"{self.label}: {primary or first_line or type(exc).__name__}")

    # -- schema ------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection[DictRow], create: bool) -> None:
        key = f"sendguard-migrate:{self.schema or ''}"
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            if self.schema is not None:
                exists = conn.execute(
                    "SELECT 1 AS x FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if exists is None and not create:
                    raise StoreError(f"{self.label}: there is no quarantine in this schema")
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                conn.execute(
                    sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(self.schema))
                )
            found = conn.execute(
                "SELECT 1 AS x FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename = 'schema_version'"
            ).fetchone()
            if found is None and not create:
                raise StoreError(f"{self.label}: there is no quarantine here (has the relay run?)")
            self._apply_migrations(
                _Conn(conn), MIGRATIONS, lambda script: conn.execute(script.encode())
            )

    # -- connections -------------------------------------------------------
    @contextmanager
    def _read(self) -> Iterator[_Conn]:
        try:
            with self._pool.connection() as conn:
                yield _Conn(conn)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    @contextmanager
    def _write(self) -> Iterator[_Conn]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _Conn(conn)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        self._pool.close()
