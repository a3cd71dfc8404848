"""`sendguard held list|show` and `sendguard relay --check-config|--hash-password`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from support import DEMO, write_config

from sendguard.cli import main
from sendguard.core.models import Action, Channel, Finding, Verdict
from sendguard.relay.access import verify_password
from sendguard.store import MailEnvelope, SqliteStore

RAW = b"From: gp@nhs.net\r\nTo: Jane <jane.smith@gmial.com>\r\nSubject: Results\r\n\r\nBody\r\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "sendguard.toml",
        f'[directory]\nsources = ["{DEMO}"]\n[relay]\nlisten = "127.0.0.1:0"\n'
        'hostname = "relay.test"\n[store]\nurl = "sqlite:///var/q.db"\n',
    )


@pytest.fixture
def hold_id(tmp_path: Path, config: Path) -> str:
    v = Verdict(
        action=Action.HOLD,
        channel=Channel.EMAIL,
        findings=[
            Finding(
                code="email.domain_typo",
                recipient="jane.smith@gmial.com",
                message="the domain gmial.com looks like a typing slip for gmail.com",
                suggestion="jane.smith@gmail.com",
                rule="email-domain-typo",
                action=Action.HOLD,
            )
        ],
        recipients={"jane.smith@gmial.com": Action.HOLD},
    )
    with SqliteStore(tmp_path / "var" / "q.db") as store:
        return store.hold(
            RAW,
            MailEnvelope(
                mail_from="gp@nhs.net", recipients=("jane.smith@gmial.com",), peer="127.0.0.1"
            ),
            v,
            message_id="<m1@x>",
        )


def test_held_list(config: Path, hold_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["held", "list", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert hold_id in out
    assert "email.domain_typo" in out
    assert main(["held", "list", "-c", str(config), "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert item["hold_id"] == hold_id
    assert item["codes"] == ["email.domain_typo"]
    assert main(["held", "list", "-c", str(config), "--status", "released"]) == 0
    assert "nothing held" in capsys.readouterr().out
    assert main(["held", "list", "-c", str(config), "--since", "2999-01-01"]) == 0
    assert "nothing held" in capsys.readouterr().out


def test_held_show(config: Path, hold_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(config), "held", "show", hold_id]) == 0
    out = capsys.readouterr().out
    assert f"hold:        {hold_id} (held)" in out
    assert "jane.smith@gmial.com (held)" in out
    assert "suggestion: jane.smith@gmail.com" in out
    assert "Subject" not in out  # the headers shown leave the subject out
    assert main(["held", "show", hold_id, "-c", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"]["action"] == "hold"
    assert data["envelope"]["recipients"] == ["jane.smith@gmial.com"]
    assert data["notification"]["status"] == "pending"


def test_held_show_raw_is_byte_exact(
    config: Path, hold_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    assert main(["held", "show", hold_id, "-c", str(config), "--raw"]) == 0
    assert out.getvalue() == RAW


def test_held_errors(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["held", "list", "-c", str(config)])  # no quarantine yet
    assert exc.value.code == 65
    assert "no quarantine" in capsys.readouterr().err
    SqliteStore(tmp_path / "var" / "q.db").close()
    assert main(["held", "show", "nosuchid", "-c", str(config)]) == 1
    assert "no hold" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["held", "list", "-c", str(config), "--since", "yesterday"])
    assert exc.value.code == 64


def test_relay_check_config(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["relay", "--config", str(config), "--check-config"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_relay_check_config_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_config(tmp_path / "bad.toml", '[relay]\nlisten = "localhost"\n')
    with pytest.raises(SystemExit) as exc:
        main(["relay", "-c", str(bad), "--check-config"])
    assert exc.value.code == 65
    assert "relay.listen" in capsys.readouterr().err
    broken_dir = tmp_path / "d.json"
    broken_dir.write_text("{", encoding="utf-8")
    cfg = write_config(
        tmp_path / "c.toml",
        f'[directory]\nsources = ["{broken_dir}"]\n[relay]\ncheck_workers = 0\n'
        f'[store]\nurl = "sqlite:///q.db"\n',
    )
    with pytest.raises(SystemExit) as exc:
        main(["relay", "-c", str(cfg), "--check-config"])
    assert exc.value.code == 65
    assert "d.json" in capsys.readouterr().err


def test_hash_password(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert main(["relay", "--hash-password", "mx1"]) == 0
    user, encoded = capsys.readouterr().out.strip().split(":", 1)
    assert user == "mx1"
    assert verify_password(b"correct horse", encoded)
