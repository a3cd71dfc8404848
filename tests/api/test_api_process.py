"""`sendguard serve` as a real process, and the relay beside the API.

The logs test sends checks full of addresses, names, NHS numbers, postal
addresses and fax numbers (good requests, bad ones, refused ones, a broken
reload) and asserts that none of it reaches the JSON log on stderr.
"""

from __future__ import annotations

import signal
import smtplib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import (
    DEMO,
    JANE_NHS,
    PRACTICE_ODS,
    ROOT,
    WAIT,
    LiveServer,
    ServeProcess,
    auth,
    write_config,
)
from test_api_operations import metric

from sendguard.api.tokens import Role, add_token
from sendguard.config import load_config

if str(ROOT / "tests" / "relay") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "relay"))
from support import Sink, message

GP = "a.patel@nhs.net"
PII = [
    "jane.smith",
    "gmial",
    "Jane Smith",
    "Smith",
    "david.brown",
    "hotmail",
    JANE_NHS,
    "943 476 5870",
    "9434765870",
    "9434765773",
    "4010232137",
    "496 0010",
    "4960010",
    "Park Lane",
    "LS6 2AB",
    "Kirkstall",
    "Emily",
    "Taylor",
    "Otley Road",
    "Your results",
    "a.patel",
]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def _smtp(port: int, to: str, marker: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=WAIT) as s:
        try:
            s.sendmail(GP, [to], message(to=to, marker=marker))
        except smtplib.SMTPDataError as exc:
            return int(exc.smtp_code)
    return 250


def test_logs_are_json_lines_that_carry_no_patient_data(tmp_path: Path, sink: Sink) -> None:
    folder = tmp_path / "directory"
    folder.mkdir()
    (folder / "demo.json").write_text(DEMO.read_text())
    cfg = write_config(tmp_path, sink.port, sources=[folder])
    token = add_token(load_config(cfg, environ={}).api.tokens_file, "emis")
    admin = add_token(load_config(cfg, environ={}).api.tokens_file, "ops", Role.ADMIN)
    proc = ServeProcess(cfg, "--with-relay")
    try:
        relay_port = int(proc.started["relay"].rsplit(":", 1)[1])
        with httpx.Client(base_url=proc.url, headers=auth(token), timeout=WAIT) as c:
            email = {
                "recipients": [
                    "To: Jane Smith <jane.smith@gmial.com>",
                    {"address": "david.brown@hotmail.co.uk", "name": "David", "header": "cc"},
                ],
                "patient": JANE_NHS,
                "subject": "Your results",
                "body": "NHS number 943 476 5870, 12 Kirkstall Road",
                "attachments": ["smith-9434765919.pdf"],
            }
            assert c.post("/v1/check/email", json=email).json()["action"] == "hold"
            fax = {"number": "0113 496 0010", "intended": PRACTICE_ODS, "patient": "4010232137"}
            assert c.post("/v1/check/fax", json=fax).json()["action"] == "hold"
            letter = {"addressee": "Mrs J Smith", "address": "3 Park Lane\nLeeds\nLS6 2AB"}
            assert (
                c.post("/v1/check/letter", json={**letter, "patient": JANE_NHS}).status_code == 200
            )
            bad = {**letter, "patinet": "9434765773"}
            assert c.post("/v1/check/letter", json=bad).status_code == 422
            assert (
                c.post("/v1/check/fax", json=fax, headers={"Authorization": ""}).status_code == 401
            )
            big = {**email, "body": "Emily Taylor, 5 Otley Road " * 20_000}
            assert c.post("/v1/check/email", json=big).status_code == 413
            assert c.get("/v1/check/fax/jane.smith@gmial.com?nhs=9434765919").status_code == 404
            assert c.post("/v1/check/fax", content=b"{Jane Smith").status_code == 422
        assert _smtp(relay_port, "Jane Smith <jane.smith@gmial.com>", "m1") == 250
        # a broken directory file that names a patient: refused, and not quoted in the log
        (folder / "broken.csv").write_text(
            "id,kind,given,family,address,nhs_number\n"
            "X1,patient,Emily,Taylor,5 Otley Road,not-a-number-4010232137\n"
        )
        mark = len(proc.lines)
        r = httpx.post(f"{proc.url}/v1/admin/reload", headers=auth(admin), timeout=WAIT)
        assert r.status_code == 409
        assert "broken.csv" in r.json()["detail"]  # the admin is told exactly what is wrong
        failed = proc.wait_event("reload_failed", after=mark)
        assert failed["level"] == "error"
        assert failed["problems"] >= 1
    finally:
        log = proc.stop()

    records = proc.events()
    assert len(records) == len(proc.lines)  # every line is one JSON object
    for rec in records:
        assert {"time", "level", "event"} <= set(rec)
    checks = [r for r in records if r["event"] == "check"]
    assert {r["channel"] for r in checks} == {"email", "fax", "letter"}
    for r in checks:
        assert {"request_id", "action", "codes", "findings", "latency_ms", "status"} <= set(r)
    assert "fax.near_known" in next(r for r in checks if r["channel"] == "fax")["codes"]
    assert {r["status"] for r in records if r["event"] == "request"} >= {401, 404, 413, 422}
    assert any("held as" in r["event"] for r in records if r["logger"] == "sendguard.relay")
    leaked = [p for p in PII if p.lower() in log.lower()]
    assert leaked == [], leaked


def test_sighup_reloads_and_sigterm_stops(tmp_path: Path, sink: Sink) -> None:
    cfg = write_config(tmp_path, sink.port)
    token = add_token(load_config(cfg, environ={}).api.tokens_file, "emis")
    proc = ServeProcess(cfg)
    body = {"recipients": ["jane.smith@gmail.com"], "patient": JANE_NHS}
    try:
        with httpx.Client(base_url=proc.url, headers=auth(token), timeout=WAIT) as c:
            assert c.post("/v1/check/email", json=body).json()["action"] == "warn"
            (tmp_path / "local.d" / "hold.toml").write_text(
                '[[rule]]\nname = "email-insecure-domain"\naction = "hold"\n'
            )
            mark = len(proc.lines)
            proc.signal(signal.SIGHUP)
            assert proc.wait_event("reloaded", after=mark)["reason"] == "SIGHUP"
            assert c.post("/v1/check/email", json=body).json()["action"] == "hold"

            (tmp_path / "local.d" / "broken.toml").write_text("[[rule]\n")
            mark = len(proc.lines)
            proc.signal(signal.SIGHUP)
            proc.wait_event("reload_failed", after=mark)
            assert c.post("/v1/check/email", json=body).json()["action"] == "hold"  # kept
            text = c.get("/metrics").text
            assert metric(text, "sendguard_reloads_total", result="ok") == 1
            assert metric(text, "sendguard_reloads_total", result="failed") == 1
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(WAIT) == 0
    finally:
        proc.stop()
    assert proc.events()[-1]["event"] == "stopped"


def test_serve_refuses_to_start_on_bad_input(tmp_path: Path, sink: Sink) -> None:
    import subprocess

    cfg = write_config(tmp_path, sink.port, sources=[str(tmp_path / "missing.json")])
    cmd = [sys.executable, "-c", "import sys; from sendguard.cli import main; sys.exit(main())"]
    r = subprocess.run(
        [*cmd, "serve", "-c", str(cfg)], capture_output=True, text=True, timeout=WAIT, check=False
    )
    assert r.returncode == 65
    assert "cannot load directory and rules" in r.stderr
    r = subprocess.run(
        [*cmd, "serve", "-c", str(write_config(tmp_path, sink.port)), "--listen", "nowhere"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert r.returncode == 2  # argparse: bad usage
    assert "host:port" in r.stderr


def test_the_relay_and_the_api_share_one_directory(tmp_path: Path, sink: Sink) -> None:
    cfg = load_config(write_config(tmp_path, sink.port), environ={})
    token = add_token(cfg.api.tokens_file, "emis")
    with LiveServer(cfg, relay=True) as live:
        assert live.server.relay is not None
        relay_guard = live.server.relay.checker.guard  # type: ignore[union-attr]
        assert relay_guard is live.server.guard
        port = live.server.relay.address[1]
        assert _smtp(port, "Jane Smith <jane.smith@gmail.com>", "ok1") == 250
        assert _smtp(port, "Jane Smith <jane.smith@gmial.com>", "typo1") == 250
        sink.wait_for(1)
        with httpx.Client(base_url=live.url, headers=auth(token), timeout=WAIT) as c:
            text = c.get("/metrics").text
            assert metric(text, "sendguard_relay_messages_total", action="forwarded") == 1
            assert metric(text, "sendguard_relay_messages_total", action="held") == 1
            assert (
                metric(text, "sendguard_relay_message_duration_seconds_count", action="held") == 1
            )
            assert metric(text, "sendguard_holds_pending") == 1

            # one reload changes what both the relay and the API decide
            (tmp_path / "local.d" / "hold.toml").write_text(
                '[[rule]]\nname = "email-insecure-domain"\naction = "hold"\n'
            )
            live.call(live.server.service.reload("test"))  # type: ignore[union-attr]
            body = {"recipients": ["jane.smith@gmail.com"], "patient": JANE_NHS}
            assert c.post("/v1/check/email", json=body).json()["action"] == "hold"
            assert _smtp(port, "Jane Smith <jane.smith@gmail.com>", "ok2") == 250
            assert len(sink.messages) == 1  # held this time
            assert metric(c.get("/metrics").text, "sendguard_holds_pending") == 2
            assert c.get("/healthz").json()["status"] == "ok"
