"""Decision tokens: forged, altered, expired, misdirected and rotated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendguard.review.tokens import TokenExpired, TokenInvalid, TokenSigner

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = b"s" * 32


def test_round_trip() -> None:
    signer = TokenSigner([SECRET])
    token = signer.issue("abc123", "confirm", NOW)
    claims = signer.verify(token, "confirm", NOW + timedelta(hours=23))
    assert claims.hold_id == "abc123"
    assert claims.action == "confirm"
    assert claims.expires_at == NOW + timedelta(hours=24)
    assert len(claims.token_id) == 64
    assert "abc123" not in claims.token_id


def test_each_token_is_distinct() -> None:
    signer = TokenSigner([SECRET])
    a, b = signer.issue("h", "cancel", NOW), signer.issue("h", "cancel", NOW)
    assert a != b
    assert signer.verify(a, "cancel", NOW).token_id != signer.verify(b, "cancel", NOW).token_id


def test_expired() -> None:
    signer = TokenSigner([SECRET], ttl=timedelta(minutes=5))
    token = signer.issue("h", "confirm", NOW)
    signer.verify(token, "confirm", NOW + timedelta(minutes=4, seconds=59))
    with pytest.raises(TokenExpired):
        signer.verify(token, "confirm", NOW + timedelta(minutes=5))


def test_bound_to_action() -> None:
    signer = TokenSigner([SECRET])
    token = signer.issue("h", "cancel", NOW)
    with pytest.raises(TokenInvalid, match="not a confirm link"):
        signer.verify(token, "confirm", NOW)


def test_forged_with_another_secret() -> None:
    token = TokenSigner([b"x" * 32]).issue("h", "confirm", NOW)
    with pytest.raises(TokenInvalid):
        TokenSigner([SECRET]).verify(token, "confirm", NOW)


def test_payload_swapped_between_tokens() -> None:
    """Another hold's payload under this token's signature does not verify."""
    signer = TokenSigner([SECRET])
    mine = signer.issue("mine", "confirm", NOW)
    theirs = signer.issue("theirs", "confirm", NOW)
    forged = theirs.split(".")[0] + "." + mine.split(".")[1]
    with pytest.raises(TokenInvalid):
        signer.verify(forged, "confirm", NOW)


def test_rotation_keeps_old_links() -> None:
    old = TokenSigner([b"o" * 32]).issue("h", "confirm", NOW)
    rotated = TokenSigner([SECRET, b"o" * 32])
    assert rotated.verify(old, "confirm", NOW).hold_id == "h"
    assert TokenSigner([SECRET]).verify(rotated.issue("h", "confirm", NOW), "confirm", NOW)


@pytest.mark.parametrize("bad_secret", [b"", b"short"])
def test_weak_secrets_are_refused(bad_secret: bytes) -> None:
    with pytest.raises(ValueError, match="secret"):
        TokenSigner([bad_secret])


def test_unknown_action_is_not_issued() -> None:
    with pytest.raises(ValueError, match="action"):
        TokenSigner([SECRET]).issue("h", "release-everything", NOW)


@given(st.text(max_size=600))
def test_any_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(TokenInvalid):
        TokenSigner([SECRET]).verify(text, "confirm", NOW)


@given(st.integers(min_value=0, max_value=200), st.sampled_from("AZaz09-_."))
def test_any_single_change_is_refused(pos: int, ch: str) -> None:
    signer = TokenSigner([SECRET])
    token = signer.issue("h", "confirm", NOW)
    pos %= len(token)
    if token[pos] == ch:
        return
    altered = token[:pos] + ch + token[pos + 1 :]
    with pytest.raises((TokenInvalid, TokenExpired)):
        signer.verify(altered, "confirm", NOW)
