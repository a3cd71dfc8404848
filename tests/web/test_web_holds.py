"""The held list, one hold, and release / cancel through the UI."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from support import Sink
from webkit import Clock, csrf_of, hold, login, post_form, raw_message

from sendguard.store.base import Store
from sendguard.store.models import HoldKind, HoldStatus


def _ids(page: str, ids: list[str]) -> set[str]:
    return {i for i in ids if f"/held/{i}" in page}


def test_a_sender_sees_only_their_own_holds(any_client: TestClient, any_store: Store) -> None:
    mine = hold(any_store, sender="a.patel@nhs.net")
    also_mine = hold(any_store, sender="apatel")  # the user name itself
    theirs = hold(any_store, sender="b.jones@nhs.net")
    login(any_client, "apatel")
    page = any_client.get("/held")
    assert _ids(page.text, [mine, also_mine, theirs]) == {mine, also_mine}
    assert "2 holds" in page.text
    assert any_client.get(f"/held/{mine}").status_code == 200
    assert any_client.get(f"/held/{theirs}").status_code == 404
    rows = list(csv.DictReader(io.StringIO(any_client.get("/held.csv").text)))
    assert {r["hold_id"] for r in rows} == {mine, also_mine}
    # an address in [web] sender_addresses matches in any case
    any_client.cookies.clear()
    login(any_client, "bjones")
    assert _ids(any_client.get("/held").text, [mine, also_mine, theirs]) == {theirs}


def test_a_sender_cannot_act_on_someone_elses_hold(client: TestClient, store: Store) -> None:
    theirs = hold(store, sender="b.jones@nhs.net")
    login(client, "apatel")
    for action, reason in (("release", "confirmed-correct"), ("cancel", "duplicate")):
        r = post_form(client, f"/held/{theirs}/{action}", "/held", reason=reason)
        assert r.status_code == 404
    held = store.get(theirs)
    assert held is not None
    assert held.status is HoldStatus.HELD


def test_a_sender_cancels_their_own_hold(client: TestClient, store: Store, sink: Sink) -> None:
    mine = hold(store)
    login(client, "apatel")
    r = post_form(client, f"/held/{mine}/cancel", f"/held/{mine}", reason="wrong-recipient")
    assert r.status_code == 200
    assert "Cancelled" in r.text
    held = store.get(mine)
    assert held is not None
    assert held.status is HoldStatus.CANCELLED
    assert held.decided_by == "apatel"
    assert held.reason == "wrong-recipient"
    assert sink.messages == []


def test_a_sender_releases_their_own_hold_unless_it_needs_a_reviewer(
    client: TestClient, store: Store, sink: Sink
) -> None:
    plain = hold(store)
    strict = hold(store, requires_reviewer=True)
    login(client, "apatel")
    page = client.get(f"/held/{strict}")
    assert "A reviewer must release this message" in page.text
    assert f'action="/held/{strict}/release"' not in page.text
    r = post_form(client, f"/held/{strict}/release", "/held", reason="confirmed-correct")
    assert r.status_code == 403
    r = post_form(client, f"/held/{plain}/release", "/held", reason="confirmed-correct")
    assert r.status_code == 200, r.text
    assert "Released" in r.text
    (msg,) = sink.wait_for(1)
    assert msg.rcpt_tos == ("jane.smith@gmial.com",)
    assert f"X-Sendguard-Released: {plain} by apatel".encode() in msg.data


def test_a_reviewer_releases_any_hold_with_a_reason(
    any_client: TestClient, any_store: Store, sink: Sink
) -> None:
    hold_id = hold(any_store, sender="b.jones@nhs.net", requires_reviewer=True)
    login(any_client, "rita")
    page = any_client.get(f"/held/{hold_id}")
    assert 'name="reason"' in page.text
    assert "confirmed-correct" in page.text
    r = any_client.post(
        f"/held/{hold_id}/release", data={"csrf": csrf_of(page), "reason": "confirmed-correct"}
    )
    assert r.status_code == 200
    assert "Released: the message has been sent on." in r.text
    sink.wait_for(1)
    held = any_store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.RELEASED
    assert held.decided_by == "rita"
    assert held.reason == "confirmed-correct"
    events = [e.event for e in any_store.audit_entries(hold_id=hold_id)]
    assert events == ["hold", "release", "released"]
    again = any_client.post(
        f"/held/{hold_id}/release", data={"csrf": csrf_of(page), "reason": "confirmed-correct"}
    )
    assert again.status_code == 409  # decided already: nothing is sent twice
    assert len(sink.messages) == 1


def test_decisions_need_a_known_reason(client: TestClient, store: Store) -> None:
    hold_id = hold(store)
    login(client, "rita")
    for reason in ("", "because", "wrong-recipient"):  # the last is a cancel reason
        r = post_form(client, f"/held/{hold_id}/release", "/held", reason=reason)
        assert r.status_code == 400
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD


def test_decisions_need_the_sessions_csrf_value(
    client: TestClient, store: Store, sink: Sink
) -> None:
    hold_id = hold(store)
    login(client, "rita")
    for data in ({"reason": "confirmed-correct"}, {"reason": "duplicate", "csrf": "forged"}):
        for action in ("release", "cancel"):
            r = client.post(f"/held/{hold_id}/{action}", data=data)
            assert r.status_code == 403
    # another user's CSRF value does not do either
    other = TestClient(client.app, client=("127.0.0.1", 50001))
    login(other, "adam")
    adams = csrf_of(other.get("/held"))
    r = client.post(f"/held/{hold_id}/cancel", data={"reason": "duplicate", "csrf": adams})
    assert r.status_code == 403
    held = store.get(hold_id)
    assert held is not None
    assert held.status is HoldStatus.HELD
    assert sink.messages == []


def test_the_hold_page_shows_the_message_safely(client: TestClient, store: Store) -> None:
    raw = (
        b"From: a.patel@nhs.net\r\nTo: jane.smith@gmial.com\r\n"
        b"Subject: =?utf-8?q?R=C3=A9sultats_<script>alert(1)</script>?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"RGVhciBKYW5lLCB5b3VyIHJlc3VsdHMgYXJlIG5vcm1hbC4=\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Hello <b>Jane</b></p><script>steal()</script><img src=x onerror=alert(2)>\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="results 9434765919.pdf"\r\n\r\n%PDF-1\r\n'
        b"--b--\r\n"
    )
    hold_id = hold(store, raw=raw, codes=("email.domain_typo", "email.nhs_number"))
    login(client, "rita")
    page = client.get(f"/held/{hold_id}").text
    assert "Dear Jane, your results are normal." in page  # base64 text part decoded
    assert "Hello Jane" in page  # the HTML part as text
    assert "<script>" not in page
    assert "onerror" not in page
    assert "Résultats &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "results 9434765919.pdf" in page
    assert "email.domain_typo" in page
    assert "email.nhs_number" in page
    assert "jane.smith@gmail.com" in page  # the suggestion
    assert "History" in page
    assert ">hold<" in page


def test_a_fax_hold_shows_its_payload(client: TestClient, store: Store) -> None:
    from webkit import verdict

    from sendguard.core.models import Channel

    hold_id = store.hold_send(
        HoldKind.FAX,
        {"number": "0113 496 0001", "intended": "B82005"},
        verdict("fax.near_known", channel=Channel.FAX, recipient="+441134960001"),
        "practice-system",
    )
    login(client, "rita")
    page = client.get(f"/held/{hold_id}").text
    assert "0113 496 0001" in page
    assert "fax.near_known" in page


def test_list_filters_and_pages(client: TestClient, store: Store, clock: Clock) -> None:
    ids: dict[str, str] = {}
    ids["typo"] = hold(store, codes=("email.domain_typo",))
    clock.advance(days=1)
    ids["near"] = hold(store, sender="b.jones@nhs.net", codes=("email.near_known",))
    clock.advance(days=1)
    ids["fax"] = store.hold_send("fax", {"number": "1"}, _fax_verdict(), "practice-system")
    clock.advance(days=1)
    ids["cancelled"] = hold(store, codes=("email.other_patient",))
    store.cancel(ids["cancelled"], "rita", "duplicate")
    login(client, "rita")

    def shown(query: str) -> set[str]:
        r = client.get(f"/held?{query}")
        assert r.status_code == 200, r.text
        return {k for k, v in ids.items() if f"/held/{v}" in r.text}

    assert shown("") == set(ids)
    assert shown("status=held") == {"typo", "near", "fax"}
    assert shown("status=cancelled") == {"cancelled"}
    assert shown("kind=fax") == {"fax"}
    assert shown("code=email.near_known") == {"near"}
    assert shown("code=email.") == {"typo", "near", "cancelled"}
    assert shown("sender=JONES") == {"near"}
    assert shown("since=2026-11-17&until=2026-11-18") == {"near", "fax"}
    assert shown("until=2026-11-16") == {"typo"}
    assert client.get("/held?status=nonsense").status_code == 400
    assert client.get("/held?since=yesterday").status_code == 400
    # pages of 5 (page_size in the test config), newest first
    for _ in range(8):
        hold(store)
    first, second = client.get("/held?page=1").text, client.get("/held?page=2").text
    assert "Page 1 of 3" in first
    assert "Page 2 of 3" in second
    assert f"/held/{ids['typo']}" in client.get("/held?page=3").text
    assert 'href="/held?page=2"' in first


def _fax_verdict() -> object:
    from webkit import verdict

    from sendguard.core.models import Channel

    return verdict("fax.near_known", channel=Channel.FAX, recipient="+441134960001")


def test_the_held_list_exports_as_csv(client: TestClient, store: Store) -> None:
    a = hold(store, codes=("email.domain_typo", "email.nhs_number"))
    b = hold(store, sender="=cmd|'/c calc'!A1", raw=raw_message(sender="x@y.z"))
    login(client, "rita")
    r = client.get("/held.csv?status=held")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    by_id = {row["hold_id"]: row for row in rows}
    assert set(by_id) == {a, b}
    assert by_id[a]["codes"] == "email.domain_typo;email.nhs_number"
    assert by_id[a]["status"] == "held"
    assert by_id[a]["outcome"] == "open"
    assert by_id[b]["sender"].startswith("'=")  # never a formula in a spreadsheet
