"""Password hashing for review users (the web UI and `sendguard users`).

Argon2id (argon2-cffi's defaults, RFC 9106's second recommended set) in the
PHC string format, so parameters travel with each hash and can be raised
later: `needs_rehash` says when a hash was made with weaker ones, and the
web UI re-hashes at the next successful sign-in. One module, so that the
CLI and the web UI hash and check alike.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "PasswordPolicyError",
    "check_policy",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12
_MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this bounds the work per attempt
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("sendguard timing equaliser")


class PasswordPolicyError(ValueError):
    """The password is too short or too long; the message says which."""


def check_policy(password: str) -> None:
    """Refuse a new password that is too short (or absurdly long); the CLI
    and the web UI call this when a password is set."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {_MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id PHC string (the policy is `check_policy`'s business)."""
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {_MAX_PASSWORD_LENGTH} characters")
    hashed: str = _HASHER.hash(password)
    return hashed


def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`. With no stored hash (unknown
    user) a dummy hash is checked anyway, so that timing does not tell
    which user names exist."""
    if len(password) > _MAX_PASSWORD_LENGTH:
        return False
    try:
        ok: bool = _HASHER.verify(stored or _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored is not None


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made with other parameters than today's."""
    try:
        stale: bool = _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True
    return stale
