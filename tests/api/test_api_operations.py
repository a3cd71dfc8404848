"""Health, metrics and reload, through the ASGI app (TestClient)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from api_support import DEMO, TcpListener, auth, free_port, write_config
from fastapi.testclient import TestClient

from sendguard.api import ApiService, create_app
from sendguard.api.tokens import Role, add_token
from sendguard.config import Config, load_config
from sendguard.core.models import Action, Channel, Verdict
from sendguard.guard import Guard
from sendguard.store import MailEnvelope, open_store

HEADER = "id,kind,given,family,email,fax,nhs_number\n"
ROW_A = "P1,patient,Amy,Archer,amy.archer@example.org,,9434765919\n"
ROW_B = "P2,patient,Ben,Baker,ben.baker@example.org,,9434765870\n"


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return 0.0


def app_for(config: Config, **kwargs: bool) -> tuple[TestClient, ApiService]:
    service = ApiService(config, Guard.load(config))
    return TestClient(create_app(service, **kwargs)), service


# -- health -----------------------------------------------------------------
def test_healthz_is_200_when_everything_is_reachable(client: TestClient) -> None:
    r = client.get("/healthz", headers={"Authorization": ""})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["directory"] == {"ok": True, "entries": 14}
    assert body["checks"]["store"] == {"ok": True}
    assert body["checks"]["next_hop"] == {"ok": True}


def test_healthz_says_when_the_next_hop_is_down(tmp_path: Path) -> None:
    c, _ = app_for(load_config(write_config(tmp_path, free_port()), environ={}))
    with c:
        r = c.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "failing"
    assert body["checks"]["next_hop"] == {"ok": False, "error": "unreachable"}
    assert body["checks"]["store"]["ok"]
    assert body["checks"]["directory"]["ok"]


def test_healthz_says_when_the_store_is_unreachable(tmp_path: Path, next_hop: TcpListener) -> None:
    (tmp_path / "not-a-folder").write_text("")
    path = write_config(
        tmp_path, next_hop.port, extra='[store]\nurl = "sqlite:///not-a-folder/q.db"\n'
    )
    text = path.read_text().replace('[store]\nurl = "sqlite:///var/quarantine.db"\n', "")
    path.write_text(text)
    c, _ = app_for(load_config(path, environ={}))
    with c:
        r = c.get("/healthz")
        assert r.status_code == 503
        assert r.json()["checks"]["store"] == {"ok": False, "error": "unreachable"}
        assert r.json()["checks"]["next_hop"]["ok"]
        assert "not-a-folder" not in r.text  # the kind of failure, not the details
        assert metric(c.get("/metrics").text, "sendguard_store_up") == 0


def test_healthz_says_when_the_directory_is_empty(tmp_path: Path, next_hop: TcpListener) -> None:
    csv = tmp_path / "empty.csv"
    csv.write_text(HEADER)
    c, _ = app_for(load_config(write_config(tmp_path, next_hop.port, sources=[csv]), environ={}))
    with c:
        r = c.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["directory"] == {"ok": False, "entries": 0, "error": "empty"}


# -- metrics ----------------------------------------------------------------
def test_metrics_count_checks_findings_and_latency(client: TestClient) -> None:
    fax = {"number": "0113 496 0010", "intended": "B82005"}
    for _ in range(3):
        assert client.post("/v1/check/fax", json=fax).status_code == 200
    client.post("/v1/check/letter", json={"addressee": "A", "address": "ZZ99 3AZ"})
    client.post("/v1/check/email", json={"recipients": ["jane.smith@gmail.com"]})
    client.post("/v1/check/fax", json={})  # 422: not a check
    text = client.get("/metrics").text
    assert metric(text, "sendguard_checks_total", channel="fax", action="hold") == 3
    assert metric(text, "sendguard_checks_total", channel="letter", action="reject") == 1
    assert metric(text, "sendguard_checks_total", channel="email", action="allow") == 1
    assert metric(text, "sendguard_checks_total", channel="email", action="reject") == 0
    assert metric(text, "sendguard_findings_total", channel="fax", code="fax.near_known") == 3
    assert (
        metric(text, "sendguard_findings_total", channel="letter", code="letter.pseudo_postcode")
        == 1
    )
    assert metric(text, "sendguard_check_duration_seconds_count", channel="fax") == 3
    assert metric(text, "sendguard_check_duration_seconds_sum", channel="fax") > 0
    assert metric(text, "sendguard_directory_entries") == 14
    assert metric(text, "sendguard_rules") > 0
    assert metric(text, "sendguard_directory_loaded_timestamp_seconds") > time.time() - 600
    assert metric(text, "sendguard_http_requests_total", route="/v1/check/fax", status="422") == 1
    assert metric(text, "sendguard_store_up") == 1
    assert "jane" not in text


def test_metrics_report_holds_pending_from_the_store(client: TestClient, config: Config) -> None:
    assert metric(client.get("/metrics").text, "sendguard_holds_pending") == 0
    verdict = Verdict(action=Action.HOLD, channel=Channel.EMAIL)
    with open_store(config.store.url) as store:
        for i in range(2):
            store.hold(
                b"Subject: x\r\n\r\nx\r\n",
                MailEnvelope(mail_from="a@b.org", recipients=(f"c{i}@d.org",)),
                verdict,
                notify=False,
            )
    assert metric(client.get("/metrics").text, "sendguard_holds_pending") == 2


# -- reload -----------------------------------------------------------------
@pytest.fixture
def csv_config(tmp_path: Path, next_hop: TcpListener) -> Config:
    folder = tmp_path / "directory"
    folder.mkdir()
    (folder / "patients.csv").write_text(HEADER + ROW_A)
    return load_config(write_config(tmp_path, next_hop.port, sources=[folder]), environ={})


def _email(c: TestClient, token: str, address: str, patient: str = "") -> dict[str, object]:
    body = {"recipients": [address], "patient": patient or None}
    r = c.post("/v1/check/email", json=body, headers=auth(token))
    assert r.status_code == 200
    return dict(r.json())


def test_reload_puts_a_changed_directory_in_use(csv_config: Config) -> None:
    admin = add_token(csv_config.api.tokens_file, "ops", Role.ADMIN)
    c, _ = app_for(csv_config)
    with c:
        before = _email(c, admin, "ben.baker@example.org", "9434765870")
        (csv_config.directory.sources[0] / "patients.csv").write_text(HEADER + ROW_A + ROW_B)
        r = c.post("/v1/admin/reload", headers=auth(admin))
        assert r.status_code == 200, r.text
        assert r.json()["entries"] == 2
        assert r.json()["status"] == "reloaded"
        rules = r.json()["rules"]
        after = _email(c, admin, "ben.baker@example.org", "9434765870")
        text = c.get("/metrics").text
    assert "send.unknown_patient" in str(before["findings"])
    assert "send.unknown_patient" not in str(after["findings"])  # Ben is known now
    assert metric(text, "sendguard_reloads_total", result="ok") == 1
    assert metric(text, "sendguard_directory_entries") == 2
    assert _reload_audit(csv_config) == [
        {"via": "admin request", "ok": True, "entries": 2, "rules": rules}
    ]


def test_a_bad_reload_is_refused_and_the_old_directory_stays(csv_config: Config) -> None:
    admin = add_token(csv_config.api.tokens_file, "ops", Role.ADMIN)
    c, service = app_for(csv_config)
    with c:
        before = _email(c, admin, "amy.archer@exmaple.org")
        (csv_config.directory.sources[0] / "patients.csv").write_text(
            HEADER + ROW_A + "P3,patient,Cy,Cole,cy@example.org,,not-a-number,extra\n"
        )
        r = c.post("/v1/admin/reload", headers=auth(admin))
        assert r.status_code == 409
        assert "patients.csv" in r.json()["detail"]
        assert r.json()["kept"] == "the directory and rules in use"
        assert _email(c, admin, "amy.archer@exmaple.org") == before
        assert len(service.guard.directory) == 1
        text = c.get("/metrics").text
    assert metric(text, "sendguard_reloads_total", result="failed") == 1
    assert metric(text, "sendguard_reloads_total", result="ok") == 0
    assert _reload_audit(csv_config) == [
        {"via": "admin request", "ok": False, "error": "DirectoryError"}
    ]


def _reload_audit(config: Config) -> list[dict[str, object]]:
    """The details of the `rules_reload` audit entries: counts, never contents."""
    from sendguard.store import open_store

    with open_store(config.store.url) as store:
        return [e.details for e in store.audit_entries() if e.event == "rules_reload"]


def test_a_bad_rule_file_is_refused_too(
    client: TestClient, config: Config, tokens: dict[str, str]
) -> None:
    local = config.rules.local[0]
    (local / "broken.toml").write_text("[[rule]\n")
    r = client.post("/v1/admin/reload", headers=auth(tokens["admin"]))
    assert r.status_code == 409
    assert "broken.toml" in r.json()["detail"]


def test_watching_reloads_when_the_files_change(csv_config: Config) -> None:
    csv_config.api.watch_interval = 0.05
    token = add_token(csv_config.api.tokens_file, "emis")
    c, service = app_for(csv_config, watch=True)
    with c:
        assert len(service.guard.directory) == 1
        (csv_config.directory.sources[0] / "patients.csv").write_text(HEADER + ROW_A + ROW_B)
        deadline = time.monotonic() + 10
        while len(service.guard.directory) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(service.guard.directory) == 2
        # a broken edit is refused once, and the directory in use stays
        (csv_config.directory.sources[0] / "patients.csv").write_text(HEADER + "P9,alien\n")
        deadline = time.monotonic() + 10
        while (
            metric(c.get("/metrics").text, "sendguard_reloads_total", result="failed") < 1
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        time.sleep(0.2)  # several more polls: not retried while the files stay the same
        text = c.get("/metrics").text
        assert metric(text, "sendguard_reloads_total", result="failed") == 1
        assert len(service.guard.directory) == 2
        assert _email(c, token, "ben.baker@example.org")["action"] == "allow"


def test_the_watched_files_are_the_directory_and_rule_files(config: Config) -> None:
    service = ApiService(config, Guard.load(config))
    (config.rules.local[0] / "mine.toml").write_text("")
    files = {p.name for p in service.watched_files()}
    assert DEMO.name in files
    assert "mine.toml" in files
    assert "email.toml" in files  # a shipped rule file
