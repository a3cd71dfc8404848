"""Bearer tokens: hashed at rest, 401 without a valid one, 403 for the wrong role."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from api_support import auth
from fastapi.testclient import TestClient

from sendguard.api import ApiService, create_app
from sendguard.api.tokens import (
    Role,
    TokenFileError,
    TokenTable,
    add_token,
    hash_token,
    read_tokens,
    revoke_token,
)
from sendguard.config import Config

FAX = {"number": "0113 496 0000", "intended": "B82005"}


@pytest.fixture
def anon(service: ApiService, tokens: dict[str, str]) -> TestClient:
    """A client that sends no token unless a test gives one."""
    return TestClient(create_app(service))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic cHJhY3RpY2U6c2VjcmV0"},
        {"Authorization": "Bearer sgt_not-a-token-anyone-was-given"},
        {"Authorization": "bearer  "},
    ],
)
@pytest.mark.parametrize("path", ["/v1/check/fax", "/v1/check/email", "/v1/admin/reload"])
def test_no_or_a_wrong_token_is_401_with_a_bearer_challenge(
    anon: TestClient, headers: dict[str, str], path: str
) -> None:
    r = anon.post(path, json=FAX, headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "action" not in r.json()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"numbr": "9434765919"}', "application/json"),
        (b"{not json", "application/json"),
        (b"number=9434765919", "application/x-www-form-urlencoded"),
    ],
)
def test_without_a_token_even_a_bad_body_is_401_and_says_nothing_of_it(
    anon: TestClient, tokens: dict[str, str], body: bytes, content_type: str
) -> None:
    r = anon.post("/v1/check/fax", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "9434765919" not in r.text
    wrong = {"Content-Type": content_type, "Authorization": "Bearer sgt_wrong"}
    assert anon.post("/v1/check/fax", content=body, headers=wrong).status_code == 401
    right = {"Content-Type": content_type, **auth(tokens["check"])}
    assert anon.post("/v1/check/fax", content=body, headers=right).status_code == 422


def test_a_valid_token_is_let_in_whatever_the_scheme_case(
    anon: TestClient, tokens: dict[str, str]
) -> None:
    r = anon.post("/v1/check/fax", json=FAX, headers={"Authorization": f"bearer {tokens['check']}"})
    assert r.status_code == 200
    assert r.json()["action"] == "allow"


def test_a_revoked_token_stops_working_at_once(
    anon: TestClient, config: Config, tokens: dict[str, str]
) -> None:
    assert anon.post("/v1/check/fax", json=FAX, headers=auth(tokens["check"])).status_code == 200
    assert revoke_token(config.api.tokens_file, "practice-system")
    r = anon.post("/v1/check/fax", json=FAX, headers=auth(tokens["check"]))
    assert r.status_code == 401
    # a token added while running works at once too
    fresh = add_token(config.api.tokens_file, "another-system")
    assert anon.post("/v1/check/fax", json=FAX, headers=auth(fresh)).status_code == 200


def test_a_check_token_cannot_reload_but_an_admin_token_can_check(
    anon: TestClient, tokens: dict[str, str]
) -> None:
    r = anon.post("/v1/admin/reload", headers=auth(tokens["check"]))
    assert r.status_code == 403
    assert anon.post("/v1/check/fax", json=FAX, headers=auth(tokens["admin"])).status_code == 200
    assert anon.post("/v1/admin/reload", headers=auth(tokens["admin"])).status_code == 200


def test_health_metrics_and_the_schema_need_no_token(anon: TestClient) -> None:
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/metrics").status_code == 200
    assert anon.get("/openapi.json").status_code == 200


def test_the_tokens_file_holds_hashes_never_tokens(config: Config, tokens: dict[str, str]) -> None:
    path = config.api.tokens_file
    text = path.read_text()
    for token in tokens.values():
        assert token not in text
        assert hash_token(token) in text
        assert token.startswith("sgt_")
        assert len(token) >= 40
    assert path.stat().st_mode & 0o777 == 0o600
    entries = read_tokens(path)
    assert [(t.name, t.role) for t in entries] == [
        ("practice-system", Role.CHECK),
        ("ops", Role.ADMIN),
    ]


def test_token_names_are_unique_and_simple(config: Config, tokens: dict[str, str]) -> None:
    path = config.api.tokens_file
    with pytest.raises(TokenFileError, match="exists"):
        add_token(path, "ops")
    with pytest.raises(TokenFileError, match="token name"):
        add_token(path, 'bad"name\n[[token]]')
    assert not revoke_token(path, "nobody")


def test_a_broken_tokens_file_keeps_the_last_good_table(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    token = add_token(path, "emis")
    table = TokenTable(path)
    assert table.lookup(token) is not None
    path.write_text("[[token]]\nname = 'x'\nrole = 'root'\n")
    assert table.lookup(token) is not None
    assert table.error is not None
    assert "role" in table.error
    with pytest.raises(TokenFileError, match="role"):
        TokenTable(path)  # at startup a broken file is an error, not silence


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from sendguard.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_api_token_command_adds_lists_and_revokes(config_path: Path, config: Config) -> None:
    added = _cli("api-token", "add", "emis-web", "-c", str(config_path))
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("sgt_")
    assert "only time" in added.stderr
    admin = _cli("-c", str(config_path), "api-token", "add", "ops", "--role", "admin")
    assert admin.returncode == 0, admin.stderr
    assert TokenTable(config.api.tokens_file).lookup(token) is not None

    listed = _cli("api-token", "list", "-c", str(config_path))
    assert listed.returncode == 0
    assert "emis-web" in listed.stdout
    assert "admin" in listed.stdout
    assert token not in listed.stdout
    assert hash_token(token)[:12] in listed.stdout

    assert _cli("api-token", "revoke", "emis-web", "-c", str(config_path)).returncode == 0
    assert TokenTable(config.api.tokens_file).lookup(token) is None
    again = _cli("api-token", "revoke", "emis-web", "-c", str(config_path))
    assert again.returncode == 1
    assert "no token named" in again.stderr
    dup = _cli("api-token", "add", "ops", "--file", str(config.api.tokens_file))
    assert dup.returncode == 65
