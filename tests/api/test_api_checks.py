"""The check endpoints answer exactly what the library answers (fax and letter:
plus the `hold_id` of a held send); bad input is a 422."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import JANE_NHS, PRACTICE_ODS
from fastapi.testclient import TestClient

from sendguard.api import ApiService

EMAILS: list[dict[str, Any]] = [
    {"recipients": ["To: Jane Smith <jane.smith@gmial.com>"], "patient": JANE_NHS},
    {"recipients": ["jane.smith@gmail.com"], "patient": JANE_NHS, "subject": "[secure] results"},
    {
        "recipients": [
            {"address": "jane.smith@gmail.com", "name": "Jane Smith", "header": "To"},
            {"address": "david.brown@hotmail.co.uk", "header": "cc"},
        ],
        "sender": "reception@leedsroad.nhs.uk",
        "subject": "Clinic letters",
        "body": f"Re: NHS number {JANE_NHS}",
        "attachments": ["letter-9434765870.pdf"],
    },
    {"recipients": ["ravi.patel@nhs.net", "Bcc: jane.smith@gmail.com"], "patient": [JANE_NHS]},
    {"recipients": ["not an address"], "history": ["a@b.org"], "secure": True},
    {"recipients": ["alice.jones@nhs.net"], "patient": int(JANE_NHS), "body": ["one", "two"]},
]
FAXES: list[dict[str, Any]] = [
    {"number": "0113 496 0010", "intended": PRACTICE_ODS},
    {"number": "0113 496 0000", "intended": PRACTICE_ODS, "patient": JANE_NHS},
    {"number": 1134960100, "intended": "RR813"},
    {"number": "0909 123 4567"},
    {"number": "07700 900123", "sender": "gp@nhs.net"},
]
LETTERS: list[dict[str, Any]] = [
    {"addressee": "Mrs J Smith", "address": "3 Park Lane\nLeeds\nLS6 2AB", "patient": JANE_NHS},
    {
        "addressee": "Mrs J Smith",
        "address": ["12 High Street", "Leeds", "LS1 1AA"],
        "patient": JANE_NHS,
    },
    {"addressee": "Dr R Patel", "address": "Beckett Street, Leeds LS9 7TF", "intended": "RR813"},
    {"addressee": "Mr T Wilson", "address": "12 High Street\nLeeds\nZZ99 3AZ"},
]


def _library_email(service: ApiService, req: dict[str, Any]) -> dict[str, Any]:
    args = dict(req)
    recipients = args.pop("recipients", [])
    v = service.guard.check_email(recipients, **args)
    return v.model_dump(mode="json")


def _without_hold_id(body: dict[str, Any], action: str) -> dict[str, Any]:
    """The verdict part of a fax or letter answer; a hold id exactly when it holds."""
    hold_id = body.pop("hold_id")
    assert (hold_id is not None) == (action == "hold"), (hold_id, action)
    return body


@pytest.mark.parametrize("req", EMAILS)
def test_email_verdict_is_the_librarys(
    client: TestClient, service: ApiService, req: dict[str, Any]
) -> None:
    r = client.post("/v1/check/email", json=req)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == _library_email(service, req)


@pytest.mark.parametrize("req", FAXES)
def test_fax_verdict_is_the_librarys(
    client: TestClient, service: ApiService, req: dict[str, Any]
) -> None:
    r = client.post("/v1/check/fax", json=req)
    assert r.status_code == 200, r.text
    args = dict(req)
    expected = service.guard.check_fax(args.pop("number"), **args).model_dump(mode="json")
    assert _without_hold_id(r.json(), expected["action"]) == expected


@pytest.mark.parametrize("req", LETTERS)
def test_letter_verdict_is_the_librarys(
    client: TestClient, service: ApiService, req: dict[str, Any]
) -> None:
    r = client.post("/v1/check/letter", json=req)
    assert r.status_code == 200, r.text
    expected = service.guard.check_letter(**req).model_dump(mode="json")
    assert _without_hold_id(r.json(), expected["action"]) == expected


def test_the_verdicts_say_what_the_readme_says(client: TestClient) -> None:
    email = client.post("/v1/check/email", json=EMAILS[0]).json()
    assert email["action"] == "hold"
    assert email["findings"][0]["code"] == "email.domain_typo"
    assert email["findings"][0]["suggestion"] == "jane.smith@gmail.com"
    fax = client.post("/v1/check/fax", json=FAXES[0]).json()
    assert fax["action"] == "hold"
    assert "fax.near_known" in {f["code"] for f in fax["findings"]}
    ok = client.post("/v1/check/fax", json=FAXES[1]).json()
    assert ok["action"] == "allow"
    letter = client.post("/v1/check/letter", json=LETTERS[0]).json()
    assert letter["action"] == "hold"


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/check/fax", {}, ["body", "number"]),
        ("/v1/check/fax", {"number": "0113 496 0000", "intnded": "B82005"}, ["body", "intnded"]),
        ("/v1/check/fax", {"number": {"x": 1}}, ["body", "number"]),
        ("/v1/check/letter", {"addressee": "Mrs J Smith"}, ["body", "address"]),
        (
            "/v1/check/email",
            {"recipients": [{"name": "Jane Smith"}]},
            ["body", "recipients", 0, "Recipient", "address"],
        ),
        (
            "/v1/check/email",
            {"recipients": [{"address": "a@b.org", "header": "reply-to"}]},
            ["body", "recipients", 0, "Recipient", "header"],
        ),
        ("/v1/check/email", {"recipients": []}, ["body", "recipients"]),
        ("/v1/check/email", {"to": ["a@b.org"]}, ["body", "recipients"]),
        ("/v1/check/email", {"recipients": "jane.smith@gmail.com"}, ["body", "recipients"]),
    ],
)
def test_bad_requests_get_422_with_field_paths(
    client: TestClient, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert loc in locs, locs


def test_a_body_that_is_not_json_is_a_422(client: TestClient) -> None:
    r = client.post(
        "/v1/check/fax", content=b"number=01134960000", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 422
    r = client.post("/v1/check/fax", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_too_many_recipients_is_a_422(client: TestClient) -> None:
    r = client.post("/v1/check/email", json={"recipients": ["a@b.org"] * 1001})
    assert r.status_code == 422


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    a = client.post("/v1/check/fax", json=FAXES[0]).headers["x-request-id"]
    b = client.post("/v1/check/fax", json={}).headers["x-request-id"]
    assert len(a) == 16
    assert a != b


def test_the_openapi_document_lists_the_endpoints(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert {"/v1/check/email", "/v1/check/fax", "/v1/check/letter", "/v1/admin/reload"} <= set(
        doc["paths"]
    )
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    ok = doc["paths"]["/v1/check/fax"]["post"]["responses"]["200"]
    assert "Verdict" in str(ok["content"]["application/json"]["schema"])
