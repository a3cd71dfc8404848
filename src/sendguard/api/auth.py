"""Who is asking: signed session cookies, proxy sign-in, CSRF values, login limits.

Sessions are stateless signed cookies (HMAC-SHA256 under the `[web]
session_secret_file` key): `payload.signature`, the payload a small JSON
object with the user name, a random session id, when it was issued and when
it was last used. A session ends after `session_idle_timeout` without a
request, after `session_max_age` in any case, on sign-out (the id is
remembered as revoked until it would have expired), and when the user's
password changes (the cookie carries a keyed fingerprint of the password
hash). The user's role is read from the store on every request, so that
disabling a user or changing a role takes effect at once.

With `[web] trusted_user_header`, a request from one of `trusted_proxies`
carrying that header is signed in as the named user (who must exist and be
enabled here); the header is ignored from any other address.

CSRF: every form carries a value derived from the session (or, for the
sign-in form, from a pre-session cookie; for a signed link, from the link's
token) with the same key under its own purpose; a POST without the right
one is refused with 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from sendguard.config import WebConfig
from sendguard.store.models import HeldMessage, HoldSummary, Role, User

__all__ = [
    "SESSION_COOKIE",
    "LoginLimiter",
    "Principal",
    "Sessions",
    "Signer",
    "load_secret",
]

SESSION_COOKIE = "sg_session"
LOGIN_COOKIE = "sg_login"
_REFRESH_AFTER = 60.0  # seconds: re-issue a used cookie at most this often
_SECRET_BYTES = 32


def load_secret(path: Path) -> bytes:
    """The key in `path` (hex); created, random and owner-only, if missing."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(_SECRET_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return load_secret(path)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        return key
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: the session key must be hex") from None
    if len(key) < 16:
        raise ValueError(f"{path}: the session key must be at least 16 bytes (32 hex digits)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 under one key, each use under its own purpose."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def mac(self, purpose: str, data: str) -> str:
        msg = purpose.encode() + b"\x00" + data.encode("utf-8")
        return _b64(hmac.new(self._key, msg, hashlib.sha256).digest())

    def check(self, purpose: str, data: str, mac: str | None) -> bool:
        # compare bytes: compare_digest raises on non-ASCII text, which a client controls
        return mac is not None and hmac.compare_digest(
            self.mac(purpose, data).encode(), mac.encode("utf-8", "surrogateescape")
        )

    def dumps(self, purpose: str, obj: dict[str, Any]) -> str:
        payload = _b64(orjson.dumps(obj))
        return f"{payload}.{self.mac(purpose, payload)}"

    def loads(self, purpose: str, text: str | None) -> dict[str, Any] | None:
        """The signed object, or None if `text` is missing, malformed or forged."""
        if not text or len(text) > 2048:
            return None
        payload, sep, mac = text.partition(".")
        if not sep or not self.check(purpose, payload, mac):
            return None
        try:
            obj = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return obj if isinstance(obj, dict) else None


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user: their role from the store, the sender addresses
    that are theirs, and the id their CSRF values are bound to."""

    username: str
    role: Role
    addresses: frozenset[str]
    binding: str
    via: str  # "session" or "proxy"

    @property
    def reviewer(self) -> bool:
        """Reviewers and admins see and decide every hold."""
        return self.role in (Role.REVIEWER, Role.ADMIN)

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN

    def owns(self, mail_from: str) -> bool:
        return mail_from.strip().lower() in self.addresses

    def may_view(self, hold: HoldSummary | HeldMessage) -> bool:
        return self.reviewer or self.owns(_sender(hold))

    def may_cancel(self, hold: HoldSummary | HeldMessage) -> bool:
        return self.may_view(hold)

    def may_release(self, hold: HoldSummary | HeldMessage) -> bool:
        """Reviewers release anything; a sender their own holds that do not
        need a reviewer."""
        return self.reviewer or (self.owns(_sender(hold)) and not hold.requires_reviewer)


def _sender(hold: HoldSummary | HeldMessage) -> str:
    return hold.mail_from if isinstance(hold, HoldSummary) else hold.envelope.mail_from


class LoginLimiter:
    """Failed sign-ins counted per user name and per client address over a
    sliding window; once either reaches its limit, attempts are refused
    (without checking the password) until old failures leave the window."""

    MAX_KEYS = 100_000  # memory bound: the oldest keys are dropped beyond it

    def __init__(
        self,
        max_failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_per_address: int | None = None,
    ) -> None:
        self.max_failures = max_failures
        self.max_per_address = max_per_address or max_failures
        self.window = window
        self._clock = clock
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"u:{username.strip().lower()}", f"a:{address}"

    def blocked(self, username: str, address: str) -> bool:
        now = self._clock()
        user, addr = self._keys(username, address)
        with self._lock:
            return (
                len(self._recent(user, now)) >= self.max_failures
                or len(self._recent(addr, now)) >= self.max_per_address
            )

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for k in self._keys(username, address):
                self._recent(k, now)
                self._fails.setdefault(k, deque()).append(now)
            while len(self._fails) > self.MAX_KEYS:
                del self._fails[next(iter(self._fails))]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(self._keys(username, "")[0], None)


@dataclass(frozen=True, slots=True)
class SessionState:
    """A verified session cookie: the user (as the store has them now), the
    session id, and a refreshed cookie value to send back (None when the
    current one is fresh enough)."""

    user: User
    sid: str
    refreshed: str | None


class Sessions:
    """Issues and checks session cookies and CSRF values (see module doc)."""

    def __init__(
        self, config: WebConfig, signer: Signer, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.signer = signer
        self._clock = clock
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()
        self._proxies = [ipaddress.ip_network(n) for n in config.trusted_proxies]

    # -- cookies -----------------------------------------------------------
    def _fingerprint(self, user: User) -> str:
        return self.signer.mac("password", user.password_hash)[:16]

    def issue(self, user: User) -> str:
        now = int(self._clock())
        sid = secrets.token_urlsafe(16)
        body = {"u": user.username, "s": sid, "i": now, "t": now, "p": self._fingerprint(user)}
        return self.signer.dumps("session", body)

    def read(self, cookie: str | None) -> dict[str, Any] | None:
        """The cookie's contents if genuine, not expired and not revoked."""
        body = self.signer.loads("session", cookie)
        if body is None:
            return None
        try:
            username, sid = str(body["u"]), str(body["s"])
            issued, seen = float(body["i"]), float(body["t"])
        except (KeyError, TypeError, ValueError):
            return None
        now = self._clock()
        if now - seen > self.config.session_idle_timeout:
            return None
        if now - issued > self.config.session_max_age:
            return None
        with self._lock:
            if sid in self._revoked:
                return None
        return body | {"u": username, "s": sid}

    def verify(
        self, cookie: str | None, user_of: Callable[[str], User | None]
    ) -> SessionState | None:
        """Check a cookie against the user it names (who must exist, be
        enabled and have the same password as when it was issued)."""
        body = self.read(cookie)
        if body is None:
            return None
        user = user_of(body["u"])
        if user is None or user.disabled:
            return None
        fingerprint = str(body.get("p", "")).encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(fingerprint, self._fingerprint(user).encode()):
            return None
        now = int(self._clock())
        refreshed = None
        if now - float(body["t"]) >= _REFRESH_AFTER:
            refreshed = self.signer.dumps("session", body | {"t": now})
        return SessionState(user=user, sid=body["s"], refreshed=refreshed)

    def revoke(self, cookie: str | None) -> None:
        """Sign out: the session id stays refused until it would have expired."""
        body = self.read(cookie)
        if body is None:
            return
        now = self._clock()
        until = float(body["i"]) + self.config.session_max_age
        with self._lock:
            self._revoked = {s: t for s, t in self._revoked.items() if t > now}
            self._revoked[body["s"]] = until

    # -- proxy sign-in -----------------------------------------------------
    def trusted_proxy(self, client: str | None) -> bool:
        if client is None or not self._proxies:
            return False
        try:
            addr = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(addr in net for net in self._proxies)

    def proxy_user(self, client: str | None, header_value: str | None) -> str | None:
        """The user name a trusted proxy vouches for, or None."""
        if self.config.trusted_user_header is None or not header_value:
            return None
        if not self.trusted_proxy(client):
            return None
        name = header_value.strip()
        return name if 0 < len(name) <= 200 else None

    def client_address(self, client: str | None, forwarded_for: str | None) -> str:
        """Who is signing in, for the per-address limit and the audit log:
        behind a trusted proxy the last address it added to X-Forwarded-For."""
        if forwarded_for and self.trusted_proxy(client):
            last = forwarded_for.split(",")[-1].strip()
            try:
                return str(ipaddress.ip_address(last))
            except ValueError:
                pass
        return client or "unknown"

    # -- principals and CSRF -----------------------------------------------
    def principal(self, user: User, binding: str, via: str) -> Principal:
        own = {user.username, *self.config.sender_addresses.get(user.username, [])}
        return Principal(
            username=user.username,
            role=user.role,
            addresses=frozenset(a.strip().lower() for a in own),
            binding=binding,
            via=via,
        )

    def csrf(self, principal: Principal) -> str:
        return self.signer.mac("csrf", principal.binding)

    def check_csrf(self, principal: Principal, value: str | None) -> bool:
        return self.signer.check("csrf", principal.binding, value)

    def login_csrf(self, nonce: str) -> str:
        return self.signer.mac("csrf-login", nonce)

    def link_csrf(self, action: str, token: str) -> str:
        return self.signer.mac("csrf-link", f"{action}|{token}")
