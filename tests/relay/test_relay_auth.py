"""Never an open relay: client networks, or AUTH, and AUTH only over TLS."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import aiosmtplib
import pytest
from support import MakeRelay, Sink, message, smtp_send

from sendguard.relay.access import (
    AccessPolicy,
    PasswordFile,
    hash_password,
    verify_password,
)

GP = "a.patel@nhs.net"
CLEAN = "jane.smith@gmail.com"


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=relay.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
def users(tmp_path: Path) -> Path:
    f = tmp_path / "users"
    f.write_text(f"# relay users\nmx1:{hash_password('s3cret pass')}\n", encoding="utf-8")
    f.chmod(0o600)
    return f


def client(port: int, source: str) -> aiosmtplib.SMTP:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=port,
        source_address=(source, 0),
        start_tls=False,
        tls_context=ctx,
        local_hostname="client.test",
    )


async def test_authenticated_client_may_send_from_anywhere_over_tls_only(
    make_relay: MakeRelay, sink: Sink, tls_files: tuple[Path, Path], users: Path
) -> None:
    cert, key = tls_files
    relay = await make_relay(
        client_networks=["127.0.0.1/32"],
        tls_cert=str(cert),
        tls_key=str(key),
        auth_users=str(users),
    )
    smtp = client(relay.address[1], "127.0.0.2")
    await smtp.connect()
    await smtp.ehlo()
    assert "starttls" in smtp.esmtp_extensions
    assert "auth" not in smtp.esmtp_extensions  # never in clear text
    refused = await smtp_send(0, GP, [CLEAN], message(), client=smtp)
    assert refused.mail[0] == 550
    assert refused.mail[1].startswith("5.7.1")
    await smtp.starttls()
    await smtp.ehlo()
    assert "auth" in smtp.esmtp_extensions
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        await smtp.login("mx1", "wrong")
    await smtp.login("mx1", "s3cret pass")
    ok = await smtp_send(0, GP, [CLEAN], message(subject="[secure] x"), client=smtp)
    assert ok.code == 250
    await smtp.quit()
    await sink.arrived(1)


async def test_without_users_auth_is_never_offered(
    make_relay: MakeRelay, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    relay = await make_relay(tls_cert=str(cert), tls_key=str(key))
    smtp = client(relay.address[1], "127.0.0.1")
    await smtp.connect()
    await smtp.starttls()
    await smtp.ehlo()
    assert "auth" not in smtp.esmtp_extensions
    await smtp.quit()


async def test_require_starttls(
    make_relay: MakeRelay, sink: Sink, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    relay = await make_relay(tls_cert=str(cert), tls_key=str(key), require_starttls=True)
    smtp = client(relay.address[1], "127.0.0.1")
    await smtp.connect()
    await smtp.ehlo()
    r = await smtp_send(0, GP, [CLEAN], message(), client=smtp)
    assert r.mail[0] == 530
    await smtp.starttls()
    assert (await smtp_send(0, GP, [CLEAN], message(), client=smtp)).code == 250
    await smtp.quit()


def test_access_policy() -> None:
    import ipaddress

    p = AccessPolicy([ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128")])
    assert p.network_allows(("127.0.0.1", 25))
    assert p.network_allows(("::ffff:127.0.0.1", 25, 0, 0))  # IPv4 on a dual-stack socket
    assert p.network_allows(("::1", 25, 0, 0))
    assert not p.network_allows(("127.0.0.2", 25))
    assert not p.network_allows(("10.0.0.1", 25))
    assert not p.network_allows("/run/sendguard.sock")
    assert not p.network_allows(None)


def test_password_hashes() -> None:
    line = hash_password("pw")
    assert line.startswith("scrypt$")
    assert "pw" not in line
    assert verify_password(b"pw", line)
    assert not verify_password(b"pW", line)
    assert not verify_password(b"pw", "md5$abc")
    assert not verify_password(b"pw", "scrypt$x$y")


def test_password_file_errors_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "users"
    f.write_text("ok:" + hash_password("a") + "\nbroken line\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"users:2"):
        PasswordFile(f)
    with pytest.raises(ValueError, match="cannot read"):
        PasswordFile(tmp_path / "missing")


def test_password_file_checks(users: Path) -> None:
    pf = PasswordFile(users)
    assert pf.check(b"mx1", b"s3cret pass")
    assert pf.check(b"mx1", b"s3cret pass")  # remembered
    assert not pf.check(b"mx1", b"other")
    assert not pf.check(b"nobody", b"s3cret pass")
