"""What a fax or letter check keeps in the quarantine, through the ASGI app.

Only a verdict of `hold` is kept, unless the request says `"hold": false`;
`callback_url` must be an http(s) URL with a host (where it may point:
test_api_callbacks.py); reviewer-only holds follow the rules as the
relay's do; a quarantine that fails is a 503 and a shared one is not
closed. The live flow (polling, deciding, callbacks) is in
test_api_holds.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import JANE_NHS, PRACTICE_ODS, auth
from fastapi.testclient import TestClient

from sendguard.api import ApiService, create_app
from sendguard.config import Config, load_config
from sendguard.guard import Guard
from sendguard.store import HoldKind, SqliteStore, StoreError, open_store

FAX_TYPO = {"number": "0113 496 0010", "intended": PRACTICE_ODS}
LETTER_OLD_ADDRESS = {
    "addressee": "Mrs J Smith",
    "address": "3 Park Lane\nLeeds\nLS6 2AB",
    "patient": JANE_NHS,
}
REVIEWER_ONLY_FAX_RULE = '[[rule]]\nname = "fax-near-known"\nrequire_reviewer = true\n'


def _holds(config: Config) -> list[str]:
    with open_store(config.store.url) as store:
        return [h.hold_id for h in store.list()]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://emr.example.org/callback",
        "javascript:alert(1)",
        "http://",
        "http:///callback",
        "https://:8443/callback",
        "https://user:secret@emr.example.org/callback",
        "http://emr.example.org:70000/callback",
        "http://emr.example.org/a b",
        " http://emr.example.org/",
        "http://emr.example.org/\n",
        "mailto:ops@example.org",
        "/relative/callback",
        "",
        "http://" + "a" * 2000 + ".org/",
        42,
    ],
)
def test_a_callback_url_must_be_http_with_a_host(
    client: TestClient, config: Config, url: Any
) -> None:
    r = client.post("/v1/check/fax", json={**FAX_TYPO, "callback_url": url})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "callback_url"]
    r = client.post("/v1/check/letter", json={**LETTER_OLD_ADDRESS, "callback_url": url})
    assert r.status_code == 422, r.text
    assert _holds(config) == []


def test_only_a_hold_is_kept_and_hold_false_keeps_nothing(
    client_allowing: Callable[..., TestClient], config: Config
) -> None:
    client = client_allowing("127.0.0.0/8")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/check/fax", {**FAX_TYPO, "hold": False}, "hold"),
        ("/v1/check/letter", {**LETTER_OLD_ADDRESS, "hold": False}, "hold"),
        ("/v1/check/fax", {"number": "0113 496 0000", "intended": PRACTICE_ODS}, "allow"),
        ("/v1/check/fax", {"number": "0909 123 4567"}, "reject"),
        ("/v1/check/letter", {"addressee": "Mr T Wilson", "address": "1 A St\nZZ99 3AZ"}, "reject"),
    ]
    for path, body, action in cases:
        r = client.post(path, json={**body, "callback_url": "http://127.0.0.1:9/cb"})
        assert r.status_code == 200, r.text
        assert (r.json()["action"], r.json()["hold_id"]) == (action, None), path
        assert "location" not in r.headers
    email = {"recipients": ["jane.smith@gmial.com"], "patient": JANE_NHS}
    r = client.post("/v1/check/email", json=email)
    assert r.json()["action"] == "hold"
    assert "hold_id" not in r.json()  # advice only: the relay holds real mail
    for extra in ({"hold": True}, {"callback_url": "http://127.0.0.1:9/cb"}):
        assert client.post("/v1/check/email", json={**email, **extra}).status_code == 422
    assert _holds(config) == []


def test_what_a_hold_keeps(client: TestClient, config: Config) -> None:
    letter = {
        **LETTER_OLD_ADDRESS,
        "address": ["3 Park Lane", "Leeds", "LS6 2AB"],
        "patient": [JANE_NHS, "9999999999, Patient/jane-smith"],
        "sender": "dr.patel@leedsroad.nhs.uk",
    }
    r = client.post("/v1/check/letter", json=letter)
    assert r.status_code == 200, r.text
    with open_store(config.store.url) as store:
        held = store.get(r.json()["hold_id"])
    assert held is not None
    assert held.kind is HoldKind.LETTER
    assert held.envelope.mail_from == "dr.patel@leedsroad.nhs.uk"
    assert held.payload == {**letter, "intended": None}  # the send, not hold or callback_url
    assert held.callback_url is None
    assert held.patients == ("Patient/jane-smith", "9999999999")  # resolved where known
    assert held.meta["via"] == "http"
    assert held.meta["request_id"] == r.headers["x-request-id"]
    assert held.expires_at is not None
    assert held.verdict.model_dump(mode="json") == {
        k: v for k, v in r.json().items() if k != "hold_id"
    }


def test_reviewer_only_holds_follow_the_rules_and_their_reloads(
    config_path: Path, tokens: dict[str, str]
) -> None:
    config = load_config(config_path, environ={})
    service = ApiService(config, Guard.load(config))
    with TestClient(create_app(service), headers=auth(tokens["check"])) as client:
        plain = client.post("/v1/check/fax", json=FAX_TYPO).json()["hold_id"]
        (config_path.parent / "local.d" / "fax.toml").write_text(REVIEWER_ONLY_FAX_RULE)
        r = client.post("/v1/admin/reload", headers=auth(tokens["admin"]))
        assert r.status_code == 200, r.text
        strict = client.post("/v1/check/fax", json=FAX_TYPO).json()["hold_id"]
        letter = client.post("/v1/check/letter", json=LETTER_OLD_ADDRESS).json()["hold_id"]
    with open_store(config.store.url) as store:
        found = {h: store.get(h) for h in (plain, strict, letter)}
    assert {h: m.requires_reviewer for h, m in found.items() if m is not None} == {
        plain: False,
        strict: True,
        letter: False,
    }


class FailingStore(SqliteStore):
    """A shared quarantine whose writes of HTTP holds fail while `failing`."""

    failing = True

    def hold_send(self, *args: Any, **kwargs: Any) -> str:
        if self.failing:
            raise StoreError("disk I/O error")
        return super().hold_send(*args, **kwargs)


def test_a_shared_quarantine_that_fails_is_503_and_stays_open(
    config: Config, tokens: dict[str, str], tmp_path: Path
) -> None:
    store = FailingStore(tmp_path / "shared.db")
    service = ApiService(config, Guard.load(config), store=store)
    with TestClient(create_app(service), headers=auth(tokens["check"])) as client:
        r = client.post("/v1/check/fax", json=FAX_TYPO)
        assert r.status_code == 503
        assert "nothing is held" in r.json()["detail"]
        store.failing = False
        r = client.post("/v1/check/fax", json=FAX_TYPO)
        assert r.status_code == 200
        assert [h.hold_id for h in store.list()] == [r.json()["hold_id"]]
    store.close()


def test_the_patients_a_check_names_resolve_to_directory_ids(service: ApiService) -> None:
    assert service.patient_ids(None) == []
    assert service.patient_ids(JANE_NHS) == ["Patient/jane-smith"]
    assert service.patient_ids(f"{JANE_NHS}; Patient/jane-smith, x-1") == [
        "Patient/jane-smith",
        "x-1",
    ]
    assert service.patient_ids(["ods:B82005", " "]) == ["ods:B82005"]  # not a patient


def test_the_openapi_document_describes_hold_ids(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "hold_id" in schemas["HeldVerdict"]["properties"]
    assert "hold_id" in schemas["HeldVerdict"]["required"]
    for path in ("/v1/check/fax", "/v1/check/letter"):
        responses = doc["paths"][path]["post"]["responses"]
        assert "HeldVerdict" in str(responses["200"]["content"])
        assert "Location" in responses["200"]["headers"]
        assert "503" in responses
    email = doc["paths"]["/v1/check/email"]["post"]["responses"]
    assert "Verdict" in str(email["200"]["content"])
    assert "HeldVerdict" not in str(email)
    for name in ("FaxCheck", "LetterCheck"):
        props = schemas[name]["properties"]
        assert props["hold"]["type"] == "boolean"
        assert props["callback_url"]["anyOf"][0]["pattern"].startswith("^[Hh][Tt][Tt][Pp]")
