"""Single-use tokens, users and API tokens on both backends."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from storekit import Clock

from sendguard.store import Conflict, Role
from sendguard.store.sql import SqlStore

ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def test_a_token_is_used_once(store: SqlStore, clock: Clock) -> None:
    expires = clock.now + timedelta(hours=1)
    assert store.use_token("tok-1", expires)
    assert not store.use_token("tok-1", expires)
    assert store.use_token("tok-2", expires)
    assert store.purge_tokens(clock.now) == 0  # not expired yet: still spent
    assert not store.use_token("tok-1", expires)
    assert store.purge_tokens(expires + timedelta(seconds=1)) == 2


def test_two_nodes_spending_one_token(backend_stores: tuple[SqlStore, SqlStore]) -> None:
    one, two = backend_stores
    expires = one._now() + timedelta(hours=1)
    results = [one.use_token(f"t{i}", expires) for i in range(5)]
    results += [two.use_token(f"t{i}", expires) for i in range(5)]
    assert results == [True] * 5 + [False] * 5


def test_users(store: SqlStore, clock: Clock) -> None:
    alice = store.add_user("alice", "reviewer", ARGON)
    assert (alice.username, alice.role, alice.disabled, alice.created_at) == (
        "alice",
        Role.REVIEWER,
        False,
        clock.now,
    )
    store.add_user("bob", Role.ADMIN, ARGON, actor="alice")
    with pytest.raises(Conflict):
        store.add_user("alice", Role.SENDER, ARGON)
    with pytest.raises(ValueError, match="owner"):
        store.add_user("carol", "owner", ARGON)
    assert store.get_user("alice") == alice
    assert store.get_user("nobody") is None
    assert [u.username for u in store.list_users()] == ["alice", "bob"]
    clock.advance(minutes=1)
    assert store.set_password("alice", "$argon2id$new", actor="alice")
    assert store.set_role("alice", "admin", actor="bob")
    assert store.disable_user("alice", actor="bob")
    got = store.get_user("alice")
    assert got is not None
    assert (got.password_hash, got.role, got.disabled, got.updated_at) == (
        "$argon2id$new",
        Role.ADMIN,
        True,
        clock.now,
    )
    assert store.disable_user("alice", actor="bob", disabled=False)
    assert not store.get_user("alice").disabled  # type: ignore[union-attr]
    assert not store.set_password("nobody", ARGON)
    assert not store.disable_user("nobody")
    audit = store.audit_entries()
    assert [e.event for e in audit] == [
        "user_add",
        "user_add",
        "user_password",
        "user_role",
        "user_disable",
        "user_enable",
    ]
    assert audit[1].actor == "alice"
    assert all("argon2" not in str(e.details) for e in audit)  # no password hashes


def test_api_tokens(store: SqlStore, clock: Clock) -> None:
    token = store.add_api_token("practice system", sha("s3cret"), "sender", ["check", "hold"])
    assert (token.name, token.role, token.scopes, token.last_used) == (
        "practice system",
        Role.SENDER,
        ("check", "hold"),
        None,
    )
    with pytest.raises(Conflict):
        store.add_api_token("again", sha("s3cret"), "sender")
    with pytest.raises(ValueError, match="SHA-256"):
        store.add_api_token("bad", "s3cret", "sender")
    found = store.find_api_token(sha("s3cret"))
    assert found is not None
    assert found.token_id == token.token_id
    assert found.scopes == ("check", "hold")
    assert store.find_api_token(sha("wrong")) is None
    assert store.list_api_tokens()[0].last_used == clock.now  # recorded by the lookup
    first_use = clock.now
    clock.advance(seconds=30)
    store.find_api_token(sha("s3cret"))
    assert store.list_api_tokens()[0].last_used == first_use  # at most once a minute
    clock.advance(seconds=31)
    store.find_api_token(sha("s3cret").upper())
    assert store.list_api_tokens()[0].last_used == clock.now
    other = store.add_api_token("ui", sha("other"), Role.ADMIN, actor="bob")
    assert other.created_by == "bob"
    assert store.revoke_api_token(token.token_id, actor="bob")
    assert not store.revoke_api_token(token.token_id)
    assert not store.revoke_api_token("nosuchtoken")
    assert store.find_api_token(sha("s3cret")) is None
    assert [t.token_id for t in store.list_api_tokens()] == [other.token_id]
    revoked = [t for t in store.list_api_tokens(include_revoked=True) if t.revoked_at]
    assert [t.token_id for t in revoked] == [token.token_id]
    events = [(e.event, e.details.get("token_id")) for e in store.audit_entries()]
    assert events == [
        ("token_add", token.token_id),
        ("token_add", other.token_id),
        ("token_revoke", token.token_id),
    ]
