"""The sendguard command: exit codes, JSON output, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common import DEMO
from sendguard.cli import main

D = ["-d", str(DEMO)]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        sys.exit(main(list(argv)))
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_check_email_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check", "email", "--to", "alice.jones@nhs.net", *D)[0] == 0
    code, out, _ = run(
        capsys, "check", "email", "--to", "jane.smith@gmial.com", "--patient", "9434765919", *D
    )
    assert code == 2
    assert "HOLD" in out
    assert "suggestion: jane.smith@gmail.com" in out
    assert run(capsys, "check", "email", "--to", "nobody", *D)[0] == 3
    assert (
        run(
            capsys, "check", "email", "--to", "jane.smith@gmail.com", "--patient", "9434765919", *D
        )[0]
        == 1
    )


def test_check_json_is_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "check", "fax", "0113 496 0010", "--intended", "B82005", "--json", *D
    )
    data = json.loads(out)
    assert code == 2
    assert data["action"] == "hold"
    assert data["channel"] == "fax"
    assert {f["code"] for f in data["findings"]} == {"fax.near_known", "fax.not_on_file"}


def test_check_letter_and_eml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "check",
        "letter",
        "--addressee",
        "Mrs J Smith",
        "--address",
        "3 Park Lane\\nLeeds LS6 2AB",
        "--patient",
        "9434765919",
        *D,
    )
    assert code == 2
    assert "letter.previous_address" in out
    eml = tmp_path / "m.eml"
    eml.write_bytes(
        b"From: gp@example.nhs.net\r\nTo: Jane Smith <david.brown@hotmail.co.uk>\r\n"
        b"Subject: results\r\n\r\nHello\r\n"
    )
    code, out, _ = run(capsys, "check", "email", "--eml", str(eml), *D)
    assert code == 2
    assert "email.display_name_mismatch" in out


def test_bad_directory_exits_65_naming_the_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "d.csv"
    bad.write_text("id,kind\nP1,alien\n")
    code, _, err = run(capsys, "check", "fax", "0113 496 0000", "-d", str(bad))
    assert code == 65
    assert f"{bad}, line 2, kind: unknown kind" in err


def test_rules_lint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "rules", "lint")
    assert code == 0
    assert "rules OK" in out
    (tmp_path / "bad.toml").write_text("[[rule]]\nname='email-near-known'\naction='nope'\n")
    code, _, err = run(capsys, "rules", "lint", "--local-rules", str(tmp_path))
    assert code == 65
    assert "bad.toml, rule 'email-near-known', action" in err


def test_rules_test_explains(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "rules",
        "test",
        "--letter",
        "12 High Street, Leeds LS1 1AE",
        "--addressee",
        "Mrs J Smith",
        "--patient",
        "9434765919",
        *D,
    )
    assert code == 2
    assert "fired        letter-address (letter.address)" in out
    assert "quiet        letter-addressee (letter.addressee)" in out


def test_directory_import_writes_a_snapshot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    snap = tmp_path / "dir.sgd"
    code, out, _ = run(capsys, "directory", "import", str(DEMO), "--snapshot", str(snap))
    assert code == 0
    assert "entries:   14" in out
    assert snap.exists()


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("sendguard")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "check" in out.stdout
    assert "rules" in out.stdout
