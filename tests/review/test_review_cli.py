"""`sendguard held release|cancel`, `sendguard users ...` and `sendguard audit
verify|export`, end to end through `main()` (and once as a real process),
on a real SQLite quarantine with a real SMTP sink as the next hop."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reviewkit import RAW, hold_email, verdict
from support import Sink

from sendguard.cli import main
from sendguard.core.models import Channel
from sendguard.store import SqliteStore

PASSWORD = "correct horse battery"
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def config(tmp_path: Path, sink: Sink) -> Path:
    path = tmp_path / "sendguard.toml"
    path.write_text(
        f"""
[relay]
next_hop = "127.0.0.1:{sink.port}"
hostname = "relay.test"
[store]
url = "sqlite:///var/q.db"
[review]
secret_file = "var/review.key"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "var" / "q.db")
    yield store
    store.close()


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config: Path) -> Cli:
    def call(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        return run(monkeypatch, capsys, *argv, "-c", str(config), stdin=stdin)

    return call


def add_users(cli: Cli, db: SqliteStore) -> None:
    for name, role in (("rita", "reviewer"), ("sam", "sender"), ("ada", "admin")):
        code, _, err = cli("users", "add", name, "--role", role, stdin=PASSWORD + "\n")
        assert code == 0, err


def test_users_add_list_passwd_disable(cli: Cli, db: SqliteStore) -> None:
    add_users(cli, db)
    code, out, _ = cli("users", "list", "--json")
    assert code == 0
    users = {u["username"]: u for u in json.loads(out)}
    assert users["rita"]["role"] == "reviewer"
    assert not users["rita"]["disabled"]
    rita = db.get_user("rita")
    assert rita is not None
    assert rita.password_hash.startswith("$argon2id$")
    assert PASSWORD not in rita.password_hash
    code, _, err = cli("users", "add", "rita", "--role", "admin", stdin=PASSWORD + "\n")
    assert code == 65
    assert "already" in err
    code, _, err = cli("users", "add", "bob", "--role", "admin", stdin="short\n")
    assert code == 64
    assert "at least 12" in err
    assert cli("users", "passwd", "rita", stdin="another long password\n")[0] == 0
    changed = db.get_user("rita")
    assert changed is not None
    assert changed.password_hash != rita.password_hash
    assert cli("users", "passwd", "nobody", stdin="another long password\n")[0] == 1
    assert cli("users", "disable", "sam")[0] == 0
    code, out, _ = cli("users", "list")
    assert "sam" in out
    assert "disabled" in out
    events = [e.event for e in db.audit_entries(limit=100)]
    assert events.count("user_add") == 3
    assert "user_password" in events
    assert "user_disable" in events


def test_held_release_as_a_reviewer(cli: Cli, db: SqliteStore, sink: Sink) -> None:
    add_users(cli, db)
    hold_id = hold_email(db)
    code, out, err = cli(
        "held", "release", hold_id, "--as", "rita", "--reason", "confirmed-correct"
    )
    assert code == 0, err
    assert f"{hold_id}: released" in out
    [got] = sink.wait_for(1)
    assert got.data == f"X-Sendguard-Released: {hold_id} by rita\r\n".encode() + RAW
    code, out, _ = cli("held", "release", hold_id, "--as", "rita", "--reason", "other")
    assert code == 3
    assert "already been released" in out
    code, out, _ = cli("held", "list", "--status", "released")
    assert hold_id in out
    code, out, _ = cli("held", "show", hold_id)
    assert "decided:" in out
    assert "by rita (confirmed-correct)" in out
    assert "next hop said: 250" in out


def test_held_release_refusals(cli: Cli, db: SqliteStore, sink: Sink) -> None:
    add_users(cli, db)
    guarded = hold_email(db, requires_reviewer=True)
    code, out, _ = cli("held", "release", guarded, "--as", "sam", "--reason", "other", "--json")
    assert code == 3
    result = json.loads(out)
    assert result["done"] is False
    assert "reviewer" in result["message"]
    assert [e.event for e in db.audit_entries(hold_id=guarded)] == ["hold", "refused"]
    code, _, err = cli("held", "release", guarded, "--as", "mallory", "--reason", "other")
    assert code == 77
    assert "not a review user" in err
    cli("users", "disable", "rita")
    assert cli("held", "release", guarded, "--as", "rita", "--reason", "other")[0] == 77
    assert cli("held", "release", "nosuchhold", "--as", "ada", "--reason", "other")[0] == 1
    code, _, err = cli("held", "release", guarded, "--as", "ada", "--reason", "because")
    assert code == 64
    assert "confirmed-correct" in err
    assert sink.messages == []
    assert cli("held", "release", guarded, "--as", "ada", "--reason", "other")[0] == 0


def test_held_cancel_and_list_filters(cli: Cli, db: SqliteStore) -> None:
    add_users(cli, db)
    email = hold_email(db)
    fax = db.hold_send(
        "fax", {"number": "01134960000"}, verdict("fax.near_known", channel=Channel.FAX), "gp@x"
    )
    code, out, _ = cli("held", "cancel", email, "--as", "sam", "--reason", "wrong-recipient")
    assert code == 0
    assert "cancelled" in out
    code, out, _ = cli("held", "list", "--status", "cancelled")
    assert email in out
    assert fax not in out
    code, out, _ = cli("held", "list", "--kind", "fax", "--json")
    [item] = json.loads(out)
    assert (item["hold_id"], item["kind"], item["status"]) == (fax, "fax", "held")
    code, out, _ = cli("held", "list", "--status", "pending")
    assert "nothing held" in out
    assert cli("held", "cancel", email, "--as", "sam", "--reason", "wrong-recipient")[0] == 3


def test_audit_verify_and_a_tampered_log(cli: Cli, db: SqliteStore, tmp_path: Path) -> None:
    hold_email(db)
    hold_email(db)
    code, out, _ = cli("audit", "verify")
    assert code == 0
    assert "audit log OK: 2 entries" in out
    head = out.strip().rsplit(" ", 1)[1]
    assert cli("audit", "verify", "--anchor", head)[0] == 0
    raw = sqlite3.connect(tmp_path / "var" / "q.db", isolation_level=None)
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
    raw.close()
    code, _, err = cli("audit", "verify")
    assert code == 65
    assert "BROKEN at seq 2" in err
    code, out, _ = cli("audit", "verify", "--json")
    assert json.loads(out)["first_bad_seq"] == 2


def test_audit_export_for_a_breach_report(cli: Cli, db: SqliteStore, tmp_path: Path) -> None:
    add_users(cli, db)
    hold_id = hold_email(db)
    cli("held", "cancel", hold_id, "--as", "rita", "--reason", "wrong-patient")
    code, out, _ = cli("audit", "export", "--since", "2000-01-01")
    assert code == 0
    report = json.loads(out)
    assert report["audit_chain"]["ok"]
    [h] = report["holds"]
    assert h["hold_id"] == hold_id
    assert h["sender"] == "a.patel@nhs.net"
    assert h["message_id"] == "<m1@practice.test>"
    assert h["patients"] == ["9434765919"]
    assert h["held_recipients"] == ["jane.smith@gmial.com"]
    assert h["forwarded_recipients"] == ["gp@nhs.net"]
    assert h["codes"] == ["email.domain_typo"]
    assert (h["status"], h["decided_by"], h["reason"]) == ("cancelled", "rita", "wrong-patient")
    assert [e["event"] for e in h["trail"]] == ["hold", "cancel"]
    assert {e["event"] for e in report["other_events"]} == {"user_add"}
    assert "Your results" not in out  # never the subject or the text
    assert "Dear Jane" not in out
    target = tmp_path / "report.csv"
    target.write_text("an older, readable file")
    target.chmod(0o644)
    code, _, err = cli(
        "audit", "export", "--since", "2000-01-01", "--format", "csv", "--output", str(target)
    )
    assert code == 0
    assert "1 hold(s)" in err
    assert os.stat(target).st_mode & 0o077 == 0
    [row] = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert row["hold_id"] == hold_id
    assert row["held_recipients"] == "jane.smith@gmial.com"
    assert "cancel rita (wrong-patient)" in row["trail"]
    code, out, _ = cli("audit", "export", "--since", "2999-01-01")
    assert json.loads(out)["holds"] == []
    assert cli("audit", "export", "--since", "yesterday")[0] == 64


def test_audit_verify_as_a_process(config: Path, db: SqliteStore) -> None:
    hold_email(db)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from sendguard.cli import main; sys.exit(main())",
            "audit",
            "verify",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "audit log OK: 1 entries" in proc.stdout
