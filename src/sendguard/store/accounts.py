"""Users and API tokens: the account half of the SQL store.

A mixin, so that `SqlStore` stays readable: it runs over the same
`_read()`/`_write()` connections and appends its audit entries (`user_add`,
`token_revoke`, ...) in the same transaction as the change. Password hashes
never go into the audit log.
"""

from __future__ import annotations

import abc
import builtins
import re
import secrets
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import orjson

from sendguard.store.conn import Conn, parse_ts, require_ts
from sendguard.store.models import ApiToken, AuditEntry, Conflict, Role, User

__all__ = ["LAST_USED_EVERY", "AccountMethods"]

LAST_USED_EVERY = timedelta(seconds=60)
"""How stale `last_used` may get: a write per API request would cost more."""

_USER_FIELDS = frozenset({"password_hash", "role", "disabled"})


class AccountMethods(abc.ABC):
    """The Store's user and API-token methods over SQL."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Conn]: ...

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Conn]: ...

    @abc.abstractmethod
    def _now(self) -> datetime: ...

    @abc.abstractmethod
    def _append(
        self,
        db: Conn,
        event: str,
        actor: str,
        hold_id: str | None,
        details: Mapping[str, Any] | None,
    ) -> AuditEntry: ...

    # -- users -------------------------------------------------------------
    def add_user(
        self, username: str, role: Role | str, password_hash: str, *, actor: str = "system"
    ) -> User:
        if not username or username != username.strip():
            raise ValueError("a user name must be non-empty, without surrounding spaces")
        role = Role(role)
        now = self._now()
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO users (username, role, password_hash, disabled, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO NOTHING",
                (username, role.value, password_hash, False, now, now),
            )
            if cur.rowcount != 1:
                raise Conflict(f"there is already a user {username!r}")
            self._append(db, "user_add", actor, None, {"username": username, "role": role.value})
        return User(
            username=username,
            role=role,
            password_hash=password_hash,
            disabled=False,
            created_at=now,
            updated_at=now,
        )

    def get_user(self, username: str) -> User | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).one()
        return None if row is None else _user(row)

    def list_users(self) -> builtins.list[User]:
        with self._read() as db:
            return [_user(r) for r in db.execute("SELECT * FROM users ORDER BY username").all()]

    def _change_user(self, username: str, sets: dict[str, Any], event: str, actor: str) -> bool:
        if set(sets) - _USER_FIELDS:
            raise ValueError(f"not a user field: {sorted(set(sets) - _USER_FIELDS)}")
        assignments = ", ".join(f"{k} = ?" for k in sets)
        with self._write() as db:
            cur = db.execute(
                f"UPDATE users SET {assignments}, updated_at = ? WHERE username = ?",
                (*sets.values(), self._now(), username),
            )
            if cur.rowcount != 1:
                return False
            info = {"username": username} | {k: v for k, v in sets.items() if k != "password_hash"}
            self._append(db, event, actor, None, info)
        return True

    def set_password(self, username: str, password_hash: str, *, actor: str = "system") -> bool:
        return self._change_user(username, {"password_hash": password_hash}, "user_password", actor)

    def set_role(self, username: str, role: Role | str, *, actor: str = "system") -> bool:
        return self._change_user(username, {"role": Role(role).value}, "user_role", actor)

    def disable_user(self, username: str, *, actor: str = "system", disabled: bool = True) -> bool:
        event = "user_disable" if disabled else "user_enable"
        return self._change_user(username, {"disabled": disabled}, event, actor)

    # -- API tokens --------------------------------------------------------
    def add_api_token(
        self,
        name: str,
        token_sha256: str,
        role: Role | str,
        scopes: Sequence[str] = (),
        *,
        actor: str = "system",
    ) -> ApiToken:
        digest = token_sha256.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError("token_sha256 must be a SHA-256 in hex")
        token = ApiToken(
            token_id=secrets.token_hex(6),
            name=name,
            role=Role(role),
            scopes=tuple(scopes),
            created_at=self._now(),
            created_by=actor,
        )
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO api_tokens (id, name, token_sha256, role, scopes, created_at, "
                "created_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token_sha256) DO NOTHING",
                (
                    token.token_id,
                    name,
                    digest,
                    token.role.value,
                    orjson.dumps(list(token.scopes)).decode(),
                    token.created_at,
                    actor,
                ),
            )
            if cur.rowcount != 1:
                raise Conflict("this API token is already recorded")
            info = {"token_id": token.token_id, "name": name, "role": token.role.value}
            self._append(db, "token_add", actor, None, info | {"scopes": list(token.scopes)})
        return token

    def find_api_token(self, token_sha256: str) -> ApiToken | None:
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
                (token_sha256.lower(),),
            ).one()
        if row is None:
            return None
        token = _token(row)
        now = self._now()
        if token.last_used is None or token.last_used < now - LAST_USED_EVERY:
            with self._write() as db:
                db.execute(
                    "UPDATE api_tokens SET last_used = ? WHERE id = ? "
                    "AND (last_used IS NULL OR last_used < ?)",
                    (now, token.token_id, now - LAST_USED_EVERY),
                )
        return token

    def list_api_tokens(self, *, include_revoked: bool = False) -> builtins.list[ApiToken]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with self._read() as db:
            rows = db.execute(f"SELECT * FROM api_tokens{where} ORDER BY created_at, id").all()
        return [_token(r) for r in rows]

    def revoke_api_token(self, token_id: str, *, actor: str = "system") -> bool:
        with self._write() as db:
            cur = db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._now(), token_id),
            )
            if cur.rowcount != 1:
                return False
            self._append(db, "token_revoke", actor, None, {"token_id": token_id})
        return True


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
