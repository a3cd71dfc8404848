"""`/v1/held`: bearer tokens, roles, list, detail, release and cancel."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from support import Sink
from webkit import Clock, Tokens, api_hold, bearer, hold

from sendguard.api.tokens import add_token
from sendguard.config import Config
from sendguard.store.base import Store
from sendguard.store.models import HoldKind, HoldStatus

ROUTES = [
    ("GET", "/v1/held"),
    ("GET", "/v1/held/abc"),
    ("POST", "/v1/held/abc/release"),
    ("POST", "/v1/held/abc/cancel"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_token(client: TestClient, method: str, path: str) -> None:
    body = {"reason": "other"}
    r = client.request(method, path, json=body if method == "POST" else None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.request(
        method, path, json=body if method == "POST" else None, headers=bearer("sgt_forged")
    )
    assert r.status_code == 401


def test_a_session_cookie_is_not_a_token(client: TestClient, store: Store) -> None:
    from webkit import login

    login(client, "adam")
    assert client.get("/v1/held").status_code == 401


def test_listing_needs_a_reviewer_or_admin_token(
    any_client: TestClient, any_store: Store, tokens: Tokens, clock: Clock
) -> None:
    a = hold(any_store, codes=("email.domain_typo",))
    clock.advance(days=1)
    b = hold(any_store, sender="b.jones@nhs.net", codes=("email.near_known",))
    assert any_client.get("/v1/held", headers=bearer(tokens.check)).status_code == 403
    for token in (tokens.reviewer, tokens.admin):
        r = any_client.get("/v1/held", headers=bearer(token))
        assert r.status_code == 200
        body = r.json()
        assert body["total"] == 2
        assert [i["hold_id"] for i in body["items"]] == [b, a]  # newest first
        assert body["items"][0]["codes"] == ["email.near_known"]
        assert "message" not in body["items"][0]
    r = any_client.get(
        "/v1/held",
        params={"code": "email.domain_typo", "sender": "patel", "limit": 1},
        headers=bearer(tokens.reviewer),
    )
    assert [i["hold_id"] for i in r.json()["items"]] == [a]
    r = any_client.get("/v1/held", params={"limit": 1, "offset": 1}, headers=bearer(tokens.admin))
    assert r.json()["total"] == 2
    assert [i["hold_id"] for i in r.json()["items"]] == [a]
    r = any_client.get("/v1/held", params={"status": "bogus"}, headers=bearer(tokens.admin))
    assert r.status_code == 422


def test_detail_is_what_a_practice_system_polls(
    client: TestClient, store: Store, tokens: Tokens
) -> None:
    hold_id = api_hold(store)
    r = client.get(f"/v1/held/{hold_id}", headers=bearer(tokens.check))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "held"
    assert body["kind"] == "fax"
    assert body["findings"][0]["code"] == "fax.near_known"
    assert body["decided_by"] is None
    assert "payload" not in body
    assert "meta" not in body
    assert "0113 496 0001" not in r.text
    assert r.headers["cache-control"] == "no-store"
    r = client.post(
        f"/v1/held/{hold_id}/release",
        json={"reason": "confirmed-correct"},
        headers=bearer(tokens.reviewer),
    )
    assert r.status_code == 200, r.text
    assert r.json()["done"] is True
    body = client.get(f"/v1/held/{hold_id}", headers=bearer(tokens.check)).json()
    assert body["status"] == "released"
    assert body["decided_by"] == "api:review-tool"
    assert body["decided_at"]
    assert body["reason"] == "confirmed-correct"
    assert client.get("/v1/held/nope", headers=bearer(tokens.check)).status_code == 404


def test_a_check_token_sees_and_decides_only_what_its_own_checks_held(
    client: TestClient, store: Store, tokens: Tokens, config: Config
) -> None:
    """Anything else is "not found", exactly as an unknown id is, so a check
    token that learns or guesses an id can neither read nor decide it, nor
    tell that it exists."""
    own = [api_hold(store), api_hold(store, kind=HoldKind.LETTER)]
    theirs = [
        api_hold(store, token="other-practice"),
        api_hold(store, token=None),  # no token on record: a check token cannot claim it
        hold(store),  # mail the relay held
        hold(store, meta={"token": "practice-system"}),  # mail, whatever its meta says
    ]
    nobody = client.get("/v1/held/nope", headers=bearer(tokens.check))
    assert nobody.status_code == 404
    for hold_id in theirs:
        r = client.get(f"/v1/held/{hold_id}", headers=bearer(tokens.check))
        assert (r.status_code, r.json()) == (404, nobody.json()), hold_id
        for action, reason in (("release", "confirmed-correct"), ("cancel", "duplicate")):
            r = client.post(
                f"/v1/held/{hold_id}/{action}",
                json={"reason": reason},
                headers=bearer(tokens.check),
            )
            assert (r.status_code, r.json()) == (404, nobody.json()), (hold_id, action)
        held = store.get(hold_id)
        assert held is not None
        assert (held.status, held.decided_by) == (HoldStatus.HELD, None)
        for token in (tokens.reviewer, tokens.admin):
            assert client.get(f"/v1/held/{hold_id}", headers=bearer(token)).status_code == 200
    for hold_id in own:
        assert client.get(f"/v1/held/{hold_id}", headers=bearer(tokens.check)).status_code == 200
    # The same, end to end: the check API records which token held the fax.
    other = add_token(config.api.tokens_file, "other-practice")
    r = client.post(
        "/v1/check/fax",
        json={"number": "0113 496 0010", "intended": "B82005"},
        headers=bearer(tokens.check),
    )
    assert r.status_code == 200, r.text
    hold_id = r.json()["hold_id"]
    assert hold_id
    assert client.get(f"/v1/held/{hold_id}", headers=bearer(tokens.check)).status_code == 200
    assert client.get(f"/v1/held/{hold_id}", headers=bearer(other)).status_code == 404
    r = client.post(
        f"/v1/held/{hold_id}/cancel", json={"reason": "duplicate"}, headers=bearer(other)
    )
    assert r.status_code == 404
    r = client.post(
        f"/v1/held/{hold_id}/cancel", json={"reason": "duplicate"}, headers=bearer(tokens.check)
    )
    assert r.status_code == 200, r.text
    assert r.json()["hold"]["decided_by"] == "api:practice-system"


def test_release_and_cancel_by_role(
    any_client: TestClient, any_store: Store, tokens: Tokens, sink: Sink
) -> None:
    plain = api_hold(any_store)
    strict = api_hold(any_store, requires_reviewer=True)
    release = {"reason": "confirmed-correct"}
    r = any_client.post(f"/v1/held/{strict}/release", json=release, headers=bearer(tokens.check))
    assert r.status_code == 403
    r = any_client.post(f"/v1/held/{plain}/release", json=release, headers=bearer(tokens.check))
    assert r.status_code == 200
    assert r.json()["status"] == "released"
    r = any_client.post(
        f"/v1/held/{plain}/cancel", json={"reason": "duplicate"}, headers=bearer(tokens.check)
    )
    assert r.status_code == 409
    assert r.json()["done"] is False
    r = any_client.post(f"/v1/held/{strict}/release", json=release, headers=bearer(tokens.admin))
    assert r.status_code == 200
    assert r.json()["hold"]["decided_by"] == "api:ops"
    third = api_hold(any_store)
    r = any_client.post(
        f"/v1/held/{third}/cancel",
        json={"reason": "wrong-recipient"},
        headers=bearer(tokens.check),
    )
    assert r.status_code == 200
    held = any_store.get(third)
    assert held is not None
    assert held.status is HoldStatus.CANCELLED
    assert held.decided_by == "api:practice-system"
    # Mail is decided by reviewers (and admins): released mail goes to the next hop.
    mail = hold(any_store)
    r = any_client.post(f"/v1/held/{mail}/release", json=release, headers=bearer(tokens.reviewer))
    assert r.status_code == 200
    (sent,) = sink.wait_for(1)
    assert b"by api:review-tool" in sent.data


def test_decisions_need_a_configured_reason(
    client: TestClient, store: Store, tokens: Tokens
) -> None:
    hold_id = hold(store)
    for body in ({}, {"reason": ""}, {"reason": "because"}, {"reason": "duplicate", "x": 1}):
        r = client.post(f"/v1/held/{hold_id}/release", json=body, headers=bearer(tokens.admin))
        assert r.status_code == 422, body
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD


def test_the_held_routes_are_in_the_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/v1/held",
        "/v1/held/{hold_id}",
        "/v1/held/{hold_id}/release",
        "/v1/held/{hold_id}/cancel",
    ):
        assert path in spec["paths"], path
    assert "/held" not in spec["paths"]
    assert "/login" not in spec["paths"]
