"""The [web] section: defaults, validation, and the sample documents every option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sendguard.api.auth import load_secret
from sendguard.config import ConfigError, WebConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_sample_config_documents_every_web_option() -> None:
    sample = ROOT / "deploy" / "sendguard.toml"
    load_config(sample, environ={})
    body = sample.read_text(encoding="utf-8").split("[web]", 1)[1].split("\n[", 1)[0]
    documented = set(re.findall(r"^#? ?([a-z0-9_]+) = ", body, re.MULTILINE))
    assert set(WebConfig.model_fields) <= documented, set(WebConfig.model_fields) - documented


def test_proxy_sign_in_needs_the_proxies(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[web]\ntrusted_user_header = "X-Remote-User"\n')
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_config(f, environ={})


def test_reason_codes_are_checked(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[web]\nrelease_reasons = ["ok", "bad code!"]\n')
    with pytest.raises(ConfigError, match="reason code"):
        load_config(f, environ={})
    cfg = load_config(None, environ={"SENDGUARD_WEB__CANCEL_REASONS": '["typo", "other"]'})
    assert cfg.web.cancel_reasons == ["typo", "other"]


def test_the_session_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "web-session.key"
    key = load_secret(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret(path) == key
    path.write_text("abcd\n")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        load_secret(path)
    path.write_text("not hex\n")
    with pytest.raises(ValueError, match="hex"):
        load_secret(path)


def test_keys_default_beside_the_config_file_even_without_a_web_section(tmp_path: Path) -> None:
    f = tmp_path / "etc" / "sendguard.toml"
    f.parent.mkdir()
    f.write_text("[relay]\nnotify = false\n")
    cfg = load_config(f, environ={})
    assert cfg.web.session_secret_file == tmp_path / "etc" / "web-session.key"
    assert cfg.review.secret_file == tmp_path / "etc" / "review-secret.key"
