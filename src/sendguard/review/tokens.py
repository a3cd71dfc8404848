"""Signed, expiring, single-use links for a sender's decision on a hold.

A token names one hold and one action and carries its expiry; it is signed
with HMAC-SHA256 under a server secret, so it cannot be forged or turned
into a token for another hold or another action. The token itself is not
single-use: the store's ledger (`Store.use_token`) is, keyed by the token's
`token_id`, which the decision path spends in the same step as it acts.

    signer = TokenSigner([secret])
    token = signer.issue("r5hurgwkk9ht", "confirm", now)
    claims = signer.verify(token, "confirm", now)   # or raises TokenError

Format: `<payload>.<signature>`, both base64url without padding; the payload
is `v1|hold id|action|expiry (unix seconds)|nonce`. Several secrets may be
given: the first signs, all verify, so a secret can be rotated without
breaking links already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "ACTIONS",
    "TokenClaims",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenSigner",
    "TokenUsed",
]

ACTIONS = frozenset({"confirm", "cancel", "recall"})
_VERSION = "v1"
_MIN_SECRET = 16  # bytes


class TokenError(ValueError):
    """The link cannot be used; the message is safe to show to its holder."""


class TokenInvalid(TokenError):
    """Malformed, forged, or for another hold or action."""


class TokenExpired(TokenError):
    """Genuine but past its expiry."""


class TokenUsed(TokenError):
    """Genuine, but already spent (`Store.use_token` said so): links are single-use."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenClaims:
    hold_id: str
    action: str
    expires_at: datetime
    token_id: str
    """What the single-use ledger records: a digest of the token, never the token."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies decision tokens under one or more secrets."""

    def __init__(self, secrets_: Sequence[bytes], *, ttl: timedelta = timedelta(hours=24)) -> None:
        if not secrets_:
            raise ValueError("a token signer needs at least one secret")
        for s in secrets_:
            if len(s) < _MIN_SECRET:
                raise ValueError(f"a token secret must be at least {_MIN_SECRET} bytes")
        if ttl <= timedelta(0):
            raise ValueError("a token's lifetime must be positive")
        self._secrets = tuple(secrets_)
        self.ttl = ttl

    def issue(
        self, hold_id: str, action: str, now: datetime, *, ttl: timedelta | None = None
    ) -> str:
        """A token for `action` on `hold_id`, valid until now + ttl."""
        if action not in ACTIONS:
            raise ValueError(f"unknown token action {action!r}")
        if not hold_id or "|" in hold_id:
            raise ValueError("a hold id is required and may not contain '|'")
        expires = int((now + (ttl or self.ttl)).timestamp())
        payload = "|".join((_VERSION, hold_id, action, str(expires), secrets.token_hex(8)))
        raw = payload.encode("utf-8")
        return f"{_b64(raw)}.{_b64(self._sign(self._secrets[0], raw))}"

    def verify(self, token: str, action: str, now: datetime) -> TokenClaims:
        """The token's claims if it is genuine, for `action` and not expired."""
        raw = self._genuine(token)
        try:
            version, hold_id, token_action, expires_s, _nonce = raw.decode("utf-8").split("|")
            expires_at = datetime.fromtimestamp(int(expires_s), UTC)
        except (UnicodeDecodeError, ValueError, OverflowError, OSError):
            raise TokenInvalid("this link is not valid") from None
        if version != _VERSION or not hold_id:
            raise TokenInvalid("this link is not valid")
        if token_action != action:
            raise TokenInvalid(f"this link is not a {action} link")
        if now >= expires_at:
            raise TokenExpired("this link has expired")
        token_id = hashlib.sha256(raw).hexdigest()
        return TokenClaims(
            hold_id=hold_id, action=token_action, expires_at=expires_at, token_id=token_id
        )

    def _genuine(self, token: str) -> bytes:
        """The payload bytes of a token signed under one of the secrets."""
        payload, sep, signature = token.strip().partition(".")
        if not sep or not payload or not signature or len(token) > 512:
            raise TokenInvalid("this link is not valid")
        try:
            raw, sig = _unb64(payload), _unb64(signature)
        except (binascii.Error, ValueError):
            raise TokenInvalid("this link is not valid") from None
        if _b64(raw) != payload or _b64(sig) != signature:  # one spelling per token
            raise TokenInvalid("this link is not valid")
        if not any(hmac.compare_digest(sig, self._sign(s, raw)) for s in self._secrets):
            raise TokenInvalid("this link is not valid")
        return raw

    @staticmethod
    def _sign(secret: bytes, raw: bytes) -> bytes:
        return hmac.new(secret, raw, hashlib.sha256).digest()
