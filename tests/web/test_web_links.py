"""The signed links of hold notices: GET shows, POST acts, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from support import Sink
from webkit import BASE_URL, Clock, csrf_of, hold

from sendguard.review.service import ReviewService
from sendguard.store.base import Store
from sendguard.store.models import HoldStatus


def _path(url: str) -> str:
    assert url.startswith(BASE_URL)
    return url[len(BASE_URL) :]


def test_get_shows_the_reasons_and_never_acts(
    client: TestClient, store: Store, review: ReviewService, sink: Sink
) -> None:
    hold_id = hold(store)
    path = _path(review.links(hold_id)["confirm"])
    assert path.startswith("/decide/confirm/")
    for _ in range(3):  # a mail scanner fetching the link, then the person
        r = client.get(path)
        assert r.status_code == 200
        assert "email.domain_typo" in r.text
        assert "jane.smith@gmail.com" in r.text
        assert r.headers["referrer-policy"] == "no-referrer"
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD
    assert [e.event for e in store.audit_entries(hold_id=hold_id)] == ["hold"]
    assert sink.messages == []
    r = client.post(path, data={"csrf": csrf_of(r)})  # the button
    assert r.status_code == 200
    assert "Released" in r.text
    sink.wait_for(1)
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.RELEASED


@pytest.mark.parametrize("action", ["confirm", "cancel", "recall"])
def test_the_short_link_paths_work_too(
    client: TestClient, store: Store, review: ReviewService, action: str
) -> None:
    hold_id = hold(store)
    token = review.links(hold_id, [action])[action].rsplit("/", 1)[1]
    page = client.get(f"/{action}/{token}")
    assert page.status_code == 200
    r = client.post(f"/{action}/{token}", data={"csrf": csrf_of(page)})
    assert r.status_code == 200
    held = store.get(hold_id)
    expected = {"confirm": "released", "cancel": "cancelled", "recall": "recalled"}[action]
    assert held is not None
    assert held.status.value == expected


def test_a_used_link_cannot_be_used_again(
    client: TestClient, store: Store, review: ReviewService
) -> None:
    hold_id = hold(store)
    path = _path(review.links(hold_id)["cancel"])
    page = client.get(path)
    assert client.post(path, data={"csrf": csrf_of(page)}).status_code == 200
    again = client.post(path, data={"csrf": csrf_of(page)})
    assert again.status_code == 409
    assert "already been used" in again.text
    shown = client.get(path)  # the hold is decided: the page says so, without a button
    assert shown.status_code == 409
    assert '<button type="submit" class="stop">' not in shown.text


def test_forged_and_retargeted_links_are_refused(
    client: TestClient, store: Store, review: ReviewService
) -> None:
    hold_id = hold(store)
    token = review.links(hold_id)["confirm"].rsplit("/", 1)[1]
    payload, sig = token.split(".")
    forged = payload + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    for path in (
        f"/decide/confirm/{forged}",
        "/decide/confirm/nonsense",
        f"/decide/cancel/{token}",
    ):
        r = client.get(path)
        assert r.status_code == 400, path
        assert "This link cannot be used" in r.text
        r = client.post(path, data={"csrf": "whatever"})
        assert r.status_code == 403  # the form value is bound to the action and token
    assert client.get(f"/decide/launch/{token}").status_code == 404
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD


def test_an_expired_link_is_refused(
    client: TestClient, store: Store, review: ReviewService, clock: Clock
) -> None:
    hold_id = hold(store)
    path = _path(review.links(hold_id)["confirm"])
    page = client.get(path)
    clock.advance(hours=24, seconds=1)
    r = client.get(path)
    assert r.status_code == 410
    assert "expired" in r.text
    r = client.post(path, data={"csrf": csrf_of(page)})
    assert r.status_code == 410
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD
    assert review.settings.token_ttl == timedelta(hours=24)


def test_the_link_form_needs_its_csrf_value(
    client: TestClient, store: Store, review: ReviewService
) -> None:
    hold_id = hold(store)
    links = review.links(hold_id)
    confirm, cancel = _path(links["confirm"]), _path(links["cancel"])
    cancel_csrf = csrf_of(client.get(cancel))
    assert client.post(confirm).status_code == 403
    assert client.post(confirm, data={"csrf": cancel_csrf}).status_code == 403
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD
    assert client.post(cancel, data={"csrf": cancel_csrf}).status_code == 200


def test_a_confirm_link_cannot_release_a_reviewer_only_hold(
    client: TestClient, store: Store, review: ReviewService, sink: Sink
) -> None:
    hold_id = hold(store, requires_reviewer=True)
    path = _path(review.links(hold_id)["confirm"])
    page = client.get(path)
    r = client.post(path, data={"csrf": csrf_of(page)})
    assert r.status_code == 409
    assert "A reviewer must decide" in r.text
    assert sink.messages == []
