"""Roles, the users page, the audit view and the near-miss report."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from webkit import PASSWORD, Clock, csrf_of, hold, login, post_form

from sendguard.store.base import Store


@pytest.mark.parametrize("path", ["/audit", "/admin/users"])
def test_a_reviewer_gets_403_on_admin_pages(client: TestClient, path: str) -> None:
    login(client, "rita")
    r = client.get(path)
    assert r.status_code == 403
    assert "for admins" in r.text


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/admin/users", {"username": "eve", "role": "admin", "password": "x" * 20}),
        ("/admin/users/adam/disable", {}),
        ("/admin/users/adam/password", {"password": "y" * 20}),
    ],
)
def test_a_reviewer_gets_403_on_admin_actions(
    client: TestClient, store: Store, path: str, data: dict[str, str]
) -> None:
    login(client, "rita")
    r = post_form(client, path, "/held", **data)
    assert r.status_code == 403
    assert store.get_user("eve") is None
    adam = store.get_user("adam")
    assert adam is not None
    assert not adam.disabled
    assert login(TestClient(client.app), "adam").status_code == 303  # password unchanged


@pytest.mark.parametrize("path", ["/report", "/report.csv", "/audit", "/admin/users"])
def test_a_sender_gets_403_on_reviewer_and_admin_pages(client: TestClient, path: str) -> None:
    login(client, "apatel")
    assert client.get(path).status_code == 403


def test_an_admin_adds_disables_and_resets_users(client: TestClient, store: Store) -> None:
    login(client, "adam")
    page = client.get("/admin/users")
    assert page.status_code == 200
    assert "rita" in page.text
    token = csrf_of(page)
    for bad in ("a/b", "two words", "<b>", ""):
        r = client.post(
            "/admin/users",
            data={"csrf": token, "username": bad, "role": "reviewer", "password": "p" * 20},
        )
        assert r.status_code == 400, bad
    r = client.post(
        "/admin/users",
        data={"csrf": token, "username": "nina", "role": "reviewer", "password": "short"},
    )
    assert r.status_code == 400
    assert "at least 12 characters" in r.text
    new_password = "a long enough password"
    r = client.post(
        "/admin/users",
        data={"csrf": token, "username": "nina", "role": "reviewer", "password": new_password},
    )
    assert r.status_code == 200
    assert "Added nina (reviewer)" in r.text
    nina = TestClient(client.app, client=("127.0.0.2", 1))
    assert login(nina, "nina", new_password).status_code == 303
    r = client.post(
        "/admin/users",
        data={"csrf": token, "username": "nina", "role": "sender", "password": new_password},
    )
    assert r.status_code == 409
    r = client.post("/admin/users/nina/disable", data={"csrf": token})
    assert r.status_code == 200
    assert "nina is disabled" in r.text
    assert nina.get("/held", follow_redirects=False).status_code == 303
    client.post("/admin/users/nina/enable", data={"csrf": token})
    r = client.post("/admin/users/nina/password", data={"csrf": token, "password": "z" * 14})
    assert "new password" in r.text
    assert login(nina, "nina", new_password).status_code == 401
    assert login(nina, "nina", "z" * 14).status_code == 303
    assert client.post("/admin/users/adam/disable", data={"csrf": token}).status_code == 403
    assert client.post("/admin/users/ghost/disable", data={"csrf": token}).status_code == 404
    events = [(e.event, e.actor) for e in store.audit_entries() if e.event.startswith("user_")]
    assert ("user_add", "adam") in events
    assert ("user_disable", "adam") in events
    assert ("user_password", "adam") in events
    assert all(
        PASSWORD not in str(e.details) and new_password not in str(e.details)
        for e in store.audit_entries()
    )


def test_admin_forms_need_csrf(client: TestClient, store: Store) -> None:
    login(client, "adam")
    r = client.post("/admin/users", data={"username": "eve", "role": "admin", "password": "p" * 20})
    assert r.status_code == 403
    assert store.get_user("eve") is None


def test_the_audit_view_filters_and_pages(client: TestClient, store: Store, clock: Clock) -> None:
    first = hold(store)
    clock.advance(days=2)
    second = hold(store)
    store.cancel(second, "rita", "duplicate")
    login(client, "adam")
    page = client.get("/audit?since=2026-11-18")
    assert page.status_code == 200
    assert second in page.text
    assert f">{first}<" not in page.text
    assert "user_add" in client.get("/audit").text  # chain order: the oldest first
    r = client.get(f"/audit?hold={second}")
    assert second in r.text
    assert f">{first}<" not in r.text
    assert "duplicate" in r.text
    r = client.get("/audit?event=cancel")
    assert second in r.text
    assert f">{first}<" not in r.text
    r = client.get("/audit?until=2026-11-16&event=hold")
    assert first in r.text
    assert f">{second}<" not in r.text
    assert client.get("/audit?since=nope").status_code == 400
    for _ in range(6):
        hold(store)
    r = client.get("/audit?event=hold")
    assert 'rel="next"' in r.text  # 8 entries, 5 a page
    r2 = client.get("/audit?event=hold&page=2")
    assert "Page 2" in r2.text
    assert 'rel="next"' not in r2.text


def _known_holds(store: Store, clock: Clock) -> None:
    """Seven holds over three ISO weeks (2026-W47..W49), every outcome."""
    a = hold(store, codes=("email.domain_typo",))  # W47, released
    store.claim_release(a, "rita", reason="confirmed-correct")
    hold(store, codes=("email.domain_typo", "email.nhs_number"))  # W47, open
    clock.advance(days=7)
    c = hold(store, sender="b.jones@nhs.net", codes=("email.near_known",))  # W48, cancelled
    store.cancel(c, "rita", "wrong-recipient")
    d = hold(store, sender="b.jones@nhs.net", codes=("email.near_known",))  # W48, cancelled
    store.cancel(d, "bjones", "wrong-recipient")
    e = hold(store, codes=("email.other_patient",))  # W48, recalled: counts as cancelled
    store.recall(e, "apatel")
    clock.advance(days=7)
    hold(store, codes=("email.domain_typo",), expires_at=clock.now)  # W49, expired
    from sendguard.store.models import ExpiryOutcome

    for s in store.due_expiries(clock.now):
        store.expire(s.hold_id, ExpiryOutcome.CANCEL)
    hold(store, sender="b.jones@nhs.net", codes=("email.near_known",))  # W49, open


def test_the_near_miss_report_counts_a_known_set(
    client: TestClient, store: Store, clock: Clock
) -> None:
    _known_holds(store, clock)
    login(client, "rita")
    r = client.get("/report?since=2026-11-01")
    assert r.status_code == 200
    total = r.text.split('id="total">', 1)[1].split("·", 1)[0]
    assert " ".join(total.split()) == ("7 holds: 2 open, 1 released, 3 cancelled, 1 expired")
    assert "<svg" in r.text
    assert "2026-W48: 3 holds" in r.text
    rows = list(csv.DictReader(io.StringIO(client.get("/report.csv?since=2026-11-01").text)))
    table = {(x["dimension"], x["key"]): x for x in rows}

    def counts(dim: str, key: str) -> tuple[int, ...]:
        x = table[(dim, key)]
        return tuple(int(x[k]) for k in ("holds", "open", "released", "cancelled", "expired"))

    assert counts("total", "all") == (7, 2, 1, 3, 1)
    assert counts("code", "email.domain_typo") == (3, 1, 1, 0, 1)
    assert counts("code", "email.near_known") == (3, 1, 0, 2, 0)
    assert counts("code", "email.nhs_number") == (1, 1, 0, 0, 0)
    assert counts("code", "email.other_patient") == (1, 0, 0, 1, 0)
    assert counts("sender", "a.patel@nhs.net") == (4, 1, 1, 1, 1)
    assert counts("sender", "b.jones@nhs.net") == (3, 1, 0, 2, 0)
    assert counts("week", "2026-W47") == (2, 1, 1, 0, 0)
    assert counts("week", "2026-W48") == (3, 0, 0, 3, 0)
    assert counts("week", "2026-W49") == (2, 1, 0, 0, 1)
    assert counts("outcome", "cancelled") == (3, 0, 0, 3, 0)
    assert int(table[("cancel_reason", "wrong-recipient")]["holds"]) == 2
    # filters narrow it
    r = client.get("/report.csv?since=2026-11-23&until=2026-11-29")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert next(x for x in rows if x["dimension"] == "total")["holds"] == "3"
