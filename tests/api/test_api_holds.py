"""Held faxes and letters over HTTP, end to end on a live `sendguard serve`.

A practice system checks a fax or letter; when it is held it gets a hold id,
polls `/v1/held/{id}` with the same check token, and a real HTTP receiver on
loopback is called back once a person decides: through `/v1/held`, or with
`sendguard held release|cancel` in another process (the CLI's own store and
review service), whose decision the serve process's background jobs carry
on. The main flow runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import JANE_NHS, PRACTICE_ODS, LiveServer, TcpListener, auth
from hold_support import WAIT, CallbackSink, pg_schema, pg_unreachable, serve_config, wait_until

from sendguard.api.logs import JsonFormatter
from sendguard.api.tokens import Role, add_token
from sendguard.cli import main as cli
from sendguard.config import Config, load_config
from sendguard.core.models import Action, Channel, Verdict
from sendguard.store import HoldKind, HoldStatus, Store, open_store

FAX_TYPO = {"number": "0113 496 0010", "intended": PRACTICE_ODS}  # one digit off the practice's
LETTER_OLD_ADDRESS = {  # Jane's previous address
    "addressee": "Mrs J Smith",
    "address": ["3 Park Lane", "Leeds", "LS6 2AB"],
    "patient": JANE_NHS,
}
CALLBACK_KEYS = {"hold_id", "kind", "status", "decided_by", "decided_at", "reason"}


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and (m.group(2) or "") == want:
            return float(m.group(3))
    return 0.0


class Setup:
    """A config, its tokens and a review user, before the server starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config: Config = load_config(path, environ={})
        f = self.config.api.tokens_file
        self.check = add_token(f, "practice-system")
        self.reviewer = add_token(f, "review-tool", Role.REVIEWER)
        with self.store() as store:
            store.add_user("rita", "reviewer", "not-used-by-the-cli")

    def store(self) -> Store:
        """Another connection to the quarantine the server uses."""
        return open_store(self.config.store.url)


@pytest.fixture
def next_hop() -> Iterator[TcpListener]:
    hop = TcpListener()
    yield hop
    hop.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_setup(
    request: pytest.FixtureRequest, tmp_path: Path, next_hop: TcpListener
) -> Iterator[Setup]:
    if request.param == "sqlite":
        yield Setup(serve_config(tmp_path, next_hop.port))
        return
    reason = pg_unreachable()
    if reason is not None:
        pytest.skip(reason)
    with pg_schema() as url:
        yield Setup(serve_config(tmp_path, next_hop.port, store_url=url))


@pytest.fixture
def setup(tmp_path: Path, next_hop: TcpListener) -> Setup:
    return Setup(serve_config(tmp_path, next_hop.port))


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as s:
        yield s


def _client(live: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=WAIT)


def _audit(setup: Setup, hold_id: str, event: str) -> list[Any]:
    with setup.store() as store:
        return store.audit_entries(hold_id=hold_id, event=event)


def _settled(setup: Setup, hold_id: str) -> bool:
    """The last callback attempt is on record and nothing more is to come."""
    entries = _audit(setup, hold_id, "callback")
    return bool(entries) and (entries[-1].details["ok"] or entries[-1].details["next"] is None)


def test_a_held_fax_is_polled_released_and_called_back(
    any_setup: Setup, sink: CallbackSink
) -> None:
    setup = any_setup
    with LiveServer(setup.config) as live, _client(live) as http:
        before = datetime.now(UTC)
        r = http.post(
            "/v1/check/fax",
            json={**FAX_TYPO, "patient": JANE_NHS, "callback_url": sink.url("/faxes/42")},
            headers=auth(setup.check),
        )
        assert r.status_code == 200, r.text
        answer = r.json()
        hold_id = answer["hold_id"]
        assert answer["action"] == "hold"
        assert "fax.near_known" in {f["code"] for f in answer["findings"]}
        assert isinstance(hold_id, str)
        assert hold_id
        assert r.headers["location"] == f"/v1/held/{hold_id}"

        polled = http.get(r.headers["location"], headers=auth(setup.check))
        assert polled.status_code == 200, polled.text
        detail = polled.json()
        assert detail["status"] == "held"
        assert detail["kind"] == "fax"
        assert detail["sender"] == "api:practice-system"
        assert detail["held_recipients"] == ["+441134960010"]
        assert "fax.near_known" in detail["codes"]
        assert detail["requires_reviewer"] is False
        assert (detail["decided_by"], detail["decided_at"], detail["reason"]) == (None,) * 3
        expires = datetime.fromisoformat(detail["expires_at"])
        assert before + timedelta(days=7) <= expires <= datetime.now(UTC) + timedelta(days=7)
        assert "0113 496 0010" not in polled.text  # never the payload

        with setup.store() as store:
            held = store.get(hold_id)
            assert held is not None
            assert held.kind is HoldKind.FAX
            assert held.payload == {**FAX_TYPO, "patient": JANE_NHS, "sender": ""}
            assert held.callback_url == sink.url("/faxes/42")
            assert held.patients == ("Patient/jane-smith",)  # the NHS number, resolved
            assert held.meta["token"] == "practice-system"
            [entry] = store.audit_entries(hold_id=hold_id, event="hold")
            assert entry.actor == "api:practice-system"

        text = http.get("/metrics").text
        assert metric(text, "sendguard_api_holds_total", channel="fax") == 1
        assert metric(text, "sendguard_api_holds_total", channel="letter") == 0
        assert metric(text, "sendguard_holds_pending") == 1

        decided = http.post(
            f"/v1/held/{hold_id}/release",
            json={"reason": "confirmed-correct"},
            headers=auth(setup.reviewer),
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["done"] is True

        [call] = sink.wait_for(1)
        assert call.path == "/faxes/42"
        assert call.content_type == "application/json"
        assert set(call.body) == CALLBACK_KEYS  # the decision only, never the payload
        assert call.body["hold_id"] == hold_id
        assert call.body["kind"] == "fax"
        assert call.body["status"] == "released"
        assert call.body["decided_by"] == "api:review-tool"
        assert call.body["reason"] == "confirmed-correct"

        wait_until(lambda: _settled(setup, hold_id))
        time.sleep(0.3)  # three more passes of the review jobs: none calls again
        assert len(sink.calls) == 1

        detail = http.get(f"/v1/held/{hold_id}", headers=auth(setup.check)).json()
        assert detail["status"] == "released"
        assert detail["decided_by"] == "api:review-tool"
        assert detail["reason"] == "confirmed-correct"
        assert datetime.fromisoformat(detail["decided_at"]) == datetime.fromisoformat(
            call.body["decided_at"]
        )
        assert metric(http.get("/metrics").text, "sendguard_holds_pending") == 0


def test_a_held_letter_cancelled_by_a_reviewer_is_called_back(
    setup: Setup, sink: CallbackSink
) -> None:
    with LiveServer(setup.config) as live, _client(live) as http:
        r = http.post(
            "/v1/check/letter",
            json={**LETTER_OLD_ADDRESS, "callback_url": sink.url("/letters?id=7")},
            headers=auth(setup.check),
        )
        assert r.status_code == 200, r.text
        hold_id = r.json()["hold_id"]
        assert r.json()["action"] == "hold"
        assert r.headers["location"] == f"/v1/held/{hold_id}"
        detail = http.get(f"/v1/held/{hold_id}", headers=auth(setup.check)).json()
        assert (detail["kind"], detail["status"]) == ("letter", "held")

        decided = http.post(
            f"/v1/held/{hold_id}/cancel",
            json={"reason": "wrong-recipient"},
            headers=auth(setup.reviewer),
        )
        assert decided.status_code == 200, decided.text

        [call] = sink.wait_for(1)
        assert call.path == "/letters?id=7"
        assert call.body["kind"] == "letter"
        assert call.body["status"] == "cancelled"
        assert call.body["decided_by"] == "api:review-tool"
        assert call.body["reason"] == "wrong-recipient"
        detail = http.get(f"/v1/held/{hold_id}", headers=auth(setup.check)).json()
        assert detail["status"] == "cancelled"
        assert detail["reason"] == "wrong-recipient"
        text = http.get("/metrics").text
        assert metric(text, "sendguard_api_holds_total", channel="letter") == 1

        wait_until(lambda: _settled(setup, hold_id))
        time.sleep(0.3)
        assert len(sink.calls) == 1


def test_a_decision_made_with_the_cli_is_called_back_by_the_serve_process(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        CallbackSink(statuses=(503,)) as sink,  # the first call fails: retried later
        LiveServer(setup.config) as live,
        _client(live) as http,
    ):

        def hold(path: str) -> str:
            r = http.post(
                "/v1/check/fax",
                json={**FAX_TYPO, "callback_url": sink.url(path)},
                headers=auth(setup.check),
            )
            assert r.status_code == 200, r.text
            return str(r.json()["hold_id"])

        # Cancelled with the CLI; its callback fails once and is made again
        # by the serve process's jobs.
        first = hold("/first")
        args = ["held", "cancel", first, "--as", "rita", "--reason", "wrong-recipient"]
        assert cli([*args, "-c", str(setup.path)]) == 0
        assert "cancelled" in capsys.readouterr().out.lower()
        calls = sink.wait_for(2)
        assert [c.status for c in calls] == [503, 200]
        assert {c.body["status"] for c in calls} == {"cancelled"}
        assert calls[1].body["decided_by"] == "rita"
        wait_until(lambda: _settled(setup, first))
        attempts = _audit(setup, first, "callback")
        assert [e.details["ok"] for e in attempts] == [False, True]
        assert attempts[-1].actor == socket.gethostname()  # the serve process's jobs
        detail = http.get(f"/v1/held/{first}", headers=auth(setup.check)).json()
        assert (detail["status"], detail["decided_by"]) == ("cancelled", "rita")

        # Released with the CLI; called back once, by whichever process got there first.
        second = hold("/second")
        args = ["held", "release", second, "--as", "rita", "--reason", "confirmed-correct"]
        assert cli([*args, "-c", str(setup.path)]) == 0
        [*_, call] = sink.wait_for(3)
        assert call.path == "/second"
        assert (call.body["status"], call.body["decided_by"]) == ("released", "rita")
        wait_until(lambda: _settled(setup, second))
        time.sleep(0.3)
        assert len(sink.calls) == 3
        detail = http.get(f"/v1/held/{second}", headers=auth(setup.check)).json()
        assert detail["status"] == "released"


def test_a_kept_callback_outside_the_networks_is_not_made(
    tmp_path: Path, next_hop: TcpListener, sink: CallbackSink
) -> None:
    """A hold whose callback URL the API would refuse now (kept before the
    networks were set, or narrowed since) is decided as usual, but the serve
    process's jobs do not call it: the attempt is on record as blocked."""
    setup = Setup(serve_config(tmp_path, next_hop.port, callback_networks=("10.0.0.0/8",)))
    with setup.store() as store:
        hold_id = store.hold_send(
            HoldKind.FAX,
            FAX_TYPO,
            Verdict(action=Action.HOLD, channel=Channel.FAX),
            "api:practice-system",
            sink.url("/old"),
            meta={"via": "http", "token": "practice-system"},
        )
    with LiveServer(setup.config) as live, _client(live) as http:
        r = http.post(
            "/v1/check/fax",
            json={**FAX_TYPO, "callback_url": sink.url("/new")},
            headers=auth(setup.check),
        )
        assert r.status_code == 422, r.text
        decided = http.post(
            f"/v1/held/{hold_id}/cancel",
            json={"reason": "duplicate"},
            headers=auth(setup.reviewer),
        )
        assert decided.status_code == 200, decided.text
        first = wait_until(lambda: _audit(setup, hold_id, "callback"))[0]
        assert first.details["ok"] is False
        assert first.details["error"] == "CallbackBlocked"
    assert sink.calls == []


def test_when_the_quarantine_is_down_a_hold_is_503_and_nothing_claims_a_hold(
    tmp_path: Path, next_hop: TcpListener, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "down"
    blocker.write_text("a file where the quarantine's folder should be")
    path = serve_config(tmp_path, next_hop.port, store_url="sqlite:///down/quarantine.db")
    config = load_config(path, environ={})
    check = add_token(config.api.tokens_file, "practice-system")
    caplog.set_level(logging.INFO, logger="sendguard")
    with LiveServer(config) as live, _client(live) as http:
        fax = {**FAX_TYPO, "patient": JANE_NHS, "callback_url": "http://127.0.0.1:9/cb"}
        r = http.post("/v1/check/fax", json=fax, headers=auth(check))
        assert r.status_code == 503, r.text
        assert r.json() == {"detail": r.json()["detail"]}  # no verdict, no hold id
        assert "nothing is held" in r.json()["detail"]
        assert r.headers["retry-after"] == "5"
        assert "location" not in r.headers
        r = http.post("/v1/check/letter", json=LETTER_OLD_ADDRESS, headers=auth(check))
        assert r.status_code == 503

        # What needs no quarantine still works: advice only, and sends that are fine.
        r = http.post("/v1/check/fax", json={**fax, "hold": False}, headers=auth(check))
        assert r.status_code == 200
        assert (r.json()["action"], r.json()["hold_id"]) == ("hold", None)
        fine = {"number": "0113 496 0000", "intended": PRACTICE_ODS}
        r = http.post("/v1/check/fax", json=fine, headers=auth(check))
        assert (r.status_code, r.json()["action"], r.json()["hold_id"]) == (200, "allow", None)

        text = http.get("/metrics").text
        assert metric(text, "sendguard_api_hold_failures_total", channel="fax") == 1
        assert metric(text, "sendguard_api_hold_failures_total", channel="letter") == 1
        assert metric(text, "sendguard_api_holds_total", channel="fax") == 0

        # The quarantine comes back: the next hold is kept, and it is the only one.
        blocker.unlink()
        blocker.mkdir()
        r = http.post("/v1/check/fax", json=fax, headers=auth(check))
        assert r.status_code == 200, r.text
        hold_id = r.json()["hold_id"]
        assert hold_id
    with open_store(config.store.url) as store:
        assert [h.hold_id for h in store.list()] == [hold_id]
        assert store.count(status=HoldStatus.HELD) == 1

    lines = [JsonFormatter().format(rec) for rec in caplog.records]
    failures = [line for line in lines if '"hold_failed"' in line]
    assert len(failures) == 2
    assert any(hold_id in line for line in lines)  # the hold id is logged
    for data in (JANE_NHS, "496 0010", "4960010", "Park Lane", "LS6 2AB", "127.0.0.1:9/cb"):
        assert not any(data in line for line in lines), data
