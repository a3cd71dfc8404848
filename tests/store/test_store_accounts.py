"""Single-use tokens and users on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storekit import Clock

from sendguard.store import Conflict, Role
from sendguard.store.sql import SqlStore

ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


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
