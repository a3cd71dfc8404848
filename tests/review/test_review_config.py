"""The [review] section: defaults, durations with units, validation, the
sample configuration documenting every option, and the link-signing key
file created owner-only on first use."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from sendguard.config import ConfigError, ReviewConfig, load_config
from sendguard.review.secret import SecretError, load_or_create_secrets
from sendguard.review.settings import ReviewSettings
from sendguard.store import ExpiryOutcome

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    cfg = load_config(None, environ={}).review
    assert cfg.base_url is None
    assert cfg.token_ttl == timedelta(hours=24)
    assert cfg.retention == timedelta(days=30)
    assert cfg.expire_after == timedelta(days=7)
    assert cfg.expire_to == "cancel"
    settings = ReviewSettings.from_config(cfg)
    assert settings.expire_to is ExpiryOutcome.CANCEL
    assert settings.release_attempts == 5


def test_durations_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[review]\nbase_url = "https://sg.example.nhs.uk/review/"\n'
        'retention = "14d"\ntoken_ttl = 3600\nrelease_backoff = "90s"\nexpire_to = "escalate"\n'
    )
    cfg = load_config(path, environ={"SENDGUARD_REVIEW__EXPIRE_AFTER": "2w"}).review
    assert cfg.base_url == "https://sg.example.nhs.uk/review"
    assert cfg.retention == timedelta(days=14)
    assert cfg.token_ttl == timedelta(hours=1)
    assert cfg.release_backoff == timedelta(seconds=90)
    assert cfg.expire_after == timedelta(weeks=2)
    assert cfg.secret_file == tmp_path / "review-secret.key"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('base_url = "ftp://x"', r"http\(s\) URL"),
        ('retention = "soon"', "duration"),
        ("retention = 0", "positive"),
        ('expire_to = "release"', "cancel"),
        ("release_attempts = 0", "greater than or equal"),
        ("unknown = 1", "Extra inputs"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f"[review]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_sample_config_documents_every_review_option() -> None:
    sample = ROOT / "deploy" / "sendguard.toml"
    load_config(sample, environ={})
    body = sample.read_text(encoding="utf-8").split("[review]", 1)[1].split("\n[", 1)[0]
    documented = set(re.findall(r"^#? ?([a-z0-9_]+) = ", body, re.MULTILINE))
    assert set(ReviewConfig.model_fields) <= documented, set(ReviewConfig.model_fields) - documented


def test_key_file_is_created_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "review.key"
    first = load_or_create_secrets(path)
    assert len(first) == 1
    assert len(first[0]) >= 32
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_secrets(path) == first  # not replaced on the next start


def test_key_rotation_and_bad_keys(tmp_path: Path) -> None:
    path = tmp_path / "review.key"
    path.write_text("n" * 40 + "\n" + "o" * 40 + "\n")
    path.chmod(0o600)
    assert load_or_create_secrets(path) == [b"n" * 40, b"o" * 40]
    path.write_text("short\n")
    with pytest.raises(SecretError, match="at least 32"):
        load_or_create_secrets(path)
    path.write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        load_or_create_secrets(path)
