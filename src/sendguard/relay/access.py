"""Who may send through the relay: client networks, or AUTH over TLS.

The relay is never an open relay: a client must connect from one of the
configured networks, or authenticate (PLAIN or LOGIN, offered only after
STARTTLS) as a user in the `auth_users` file. Passwords there are scrypt
hashes, one `user:hash` line each, made by `sendguard relay --hash-password`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["AccessPolicy", "PasswordFile", "hash_password", "verify_password"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
log = logging.getLogger("sendguard.relay.access")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AccessPolicy:
    """Decides whether a connected client may relay mail."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self.networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def network_allows(self, peer: Any) -> bool:
        """Is the peer (an asyncio peername) inside a client network?"""
        host = peer[0] if isinstance(peer, tuple) and peer else str(peer or "")
        known = self._cache.get(host)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            allowed = False  # a Unix socket or something odd: no network identity
        else:
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            allowed = any(ip.version == n.version and ip in n for n in self.networks)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[host] = allowed
        return allowed

    def allows(self, session: Any) -> bool:
        """A session may relay if its network allows it or it authenticated."""
        return bool(session.authenticated) or self.network_allows(session.peer)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An scrypt hash line for the users file: `scrypt$n$r$p$salt$hash`."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: bytes, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password,
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=128 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


class PasswordFile:
    """Users allowed to AUTH, read from a `user:hash` file.

    Also the aiosmtpd `authenticator`. aiosmtpd calls it synchronously, so a
    successful check is remembered (as a keyed hash, never the password) to
    keep the costly scrypt off the event loop for clients that log in again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, str] = {}
        self._ok: set[bytes] = set()
        self._key = secrets.token_bytes(32)
        self.load()

    def load(self) -> int:
        """(Re)read the file; raises ValueError naming the bad line."""
        users: dict[str, str] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, encoded = line.partition(":")
            if not sep or not user or not encoded.startswith("scrypt$"):
                raise ValueError(f"{self.path}:{number}: expected user:scrypt$... ")
            users[user] = encoded
        if os.name == "posix" and self.path.stat().st_mode & 0o077:
            # a readable hash file is an offline guessing target; say so, but run
            log.warning("%s is readable by group or others; chmod 600 it", self.path)
        self._users = users
        self._ok.clear()
        return len(users)

    def check(self, login: bytes, password: bytes) -> bool:
        user = login.decode("utf-8", "replace")
        encoded = self._users.get(user)
        if encoded is None:
            return False
        token = hmac.new(self._key, login + b"\0" + password + encoded.encode(), "sha256").digest()
        if token in self._ok:
            return True
        if verify_password(password, encoded):
            self._ok.add(token)
            return True
        return False

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.check(auth_data.login, auth_data.password):
            return AuthResult(success=True, auth_data=auth_data.login.decode("utf-8", "replace"))
        return AuthResult(success=False, handled=False)
