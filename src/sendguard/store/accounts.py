"""Users and API tokens over SQL: the statements behind `SqlStore`'s account
methods, each run inside the caller's connection or transaction (which also
appends the audit entry)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

from sendguard.store.conn import Conn, parse_ts, require_ts
from sendguard.store.models import ApiToken, Conflict, Role, User

__all__ = [
    "LAST_USED_EVERY",
    "add_api_token",
    "add_user",
    "find_api_token",
    "get_user",
    "list_api_tokens",
    "list_users",
    "revoke_api_token",
    "touch_api_token",
    "update_user",
]

LAST_USED_EVERY = timedelta(seconds=60)
"""How stale `last_used` may get: a write per API request would cost more."""

_USER_FIELDS = frozenset({"password_hash", "role", "disabled"})


def _user(r: Mapping[str, Any]) -> User:
    return User(
        username=r["username"],
        role=Role(r["role"]),
        password_hash=r["password_hash"],
        disabled=bool(r["disabled"]),
        created_at=require_ts(r["created_at"]),
        updated_at=require_ts(r["updated_at"]),
    )


def _token(r: Mapping[str, Any]) -> ApiToken:
    scopes = r["scopes"]
    return ApiToken(
        token_id=r["id"],
        name=r["name"],
        role=Role(r["role"]),
        scopes=tuple(orjson.loads(scopes) if isinstance(scopes, str) else scopes),
        created_at=require_ts(r["created_at"]),
        created_by=r["created_by"],
        last_used=parse_ts(r["last_used"]),
        revoked_at=parse_ts(r["revoked_at"]),
    )


def add_user(db: Conn, now: datetime, username: str, role: Role, password_hash: str) -> User:
    if not username or username != username.strip():
        raise ValueError("a user name must be non-empty, without surrounding spaces")
    cur = db.execute(
        "INSERT INTO users (username, role, password_hash, disabled, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
        (username, role.value, password_hash, False, now, now),
    )
    if cur.rowcount != 1:
        raise Conflict(f"there is already a user {username!r}")
    return User(
        username=username,
        role=role,
        password_hash=password_hash,
        disabled=False,
        created_at=now,
        updated_at=now,
    )


def get_user(db: Conn, username: str) -> User | None:
    row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).one()
    return None if row is None else _user(row)


def list_users(db: Conn) -> list[User]:
    return [_user(r) for r in db.execute("SELECT * FROM users ORDER BY username").all()]


def update_user(db: Conn, now: datetime, username: str, sets: Mapping[str, Any]) -> bool:
    unknown = set(sets) - _USER_FIELDS
    if unknown:
        raise ValueError(f"not a user field: {sorted(unknown)}")
    assignments = ", ".join(f"{k} = ?" for k in sets)
    cur = db.execute(
        f"UPDATE users SET {assignments}, updated_at = ? WHERE username = ?",
        (*sets.values(), now, username),
    )
    return cur.rowcount == 1


def add_api_token(
    db: Conn,
    now: datetime,
    token_id: str,
    name: str,
    token_sha256: str,
    role: Role,
    scopes: tuple[str, ...],
    actor: str,
) -> ApiToken:
    cur = db.execute(
        "INSERT INTO api_tokens (id, name, token_sha256, role, scopes, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token_sha256) DO NOTHING",
        (token_id, name, token_sha256, role.value, orjson.dumps(list(scopes)).decode(), now, actor),
    )
    if cur.rowcount != 1:
        raise Conflict("this API token is already recorded")
    return ApiToken(
        token_id=token_id, name=name, role=role, scopes=scopes, created_at=now, created_by=actor
    )


def find_api_token(db: Conn, token_sha256: str) -> ApiToken | None:
    row = db.execute(
        "SELECT * FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL", (token_sha256,)
    ).one()
    return None if row is None else _token(row)


def touch_api_token(db: Conn, token_id: str, now: datetime) -> None:
    db.execute(
        "UPDATE api_tokens SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)",
        (now, token_id, now - LAST_USED_EVERY),
    )


def list_api_tokens(db: Conn, include_revoked: bool) -> list[ApiToken]:
    where = "" if include_revoked else " WHERE revoked_at IS NULL"
    rows = db.execute(f"SELECT * FROM api_tokens{where} ORDER BY created_at, id").all()
    return [_token(r) for r in rows]


def revoke_api_token(db: Conn, token_id: str, now: datetime) -> bool:
    cur = db.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (now, token_id),
    )
    return cur.rowcount == 1
