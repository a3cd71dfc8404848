"""API tokens: one per practice system, stored as SHA-256 hashes only.

    sendguard api-token add emis-web              # prints the token once
    sendguard api-token add ops --role admin
    sendguard api-token list
    sendguard api-token revoke emis-web

The tokens file (`[api] tokens_file`) is TOML, one `[[token]]` table per
token with its `name`, `role` (`check`, `reviewer` or `admin`), `sha256` and `created`.
A stolen copy of the file gives no working token: a token is 256 random
bits, so its hash cannot be reversed or guessed.

Checking a presented token hashes it and looks the hash up in a dict: the
time taken depends on the hash, which says nothing about the secret, never
on how much of a secret matched (no byte-by-byte comparison).

The server re-reads the file when it changes (its size, mtime or inode), so
`add` and `revoke` take effect on the next request without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

__all__ = [
    "ApiToken",
    "Role",
    "TokenFileError",
    "TokenTable",
    "add_token",
    "hash_token",
    "new_token",
    "read_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "sgt_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEADER = (
    "# sendguard API tokens: managed with `sendguard api-token add|list|revoke`.\n"
    "# Each token is kept as its SHA-256 only; the token itself was shown once, when added.\n"
)


class Role(StrEnum):
    """`check` may call the check endpoints and read, cancel or release
    (when no reviewer is needed) the faxes and letters its own checks held;
    `reviewer` may list holds and decide any; `admin` may do all that and
    reload."""

    CHECK = "check"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class TokenFileError(ValueError):
    """The tokens file cannot be read or is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class ApiToken:
    name: str
    role: Role
    sha256: str
    created: str = ""


def new_token() -> str:
    """A fresh token: a recognisable prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def read_tokens(path: Path) -> list[ApiToken]:
    """The tokens in the file; a missing file holds none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TokenFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"token"}
    if unknown:
        raise TokenFileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    items = data.get("token", [])
    if not isinstance(items, list):
        raise TokenFileError(f"{path}: `token` must be an array of tables ([[token]])")
    out: list[ApiToken] = []
    names: set[str] = set()
    for i, item in enumerate(items, 1):
        where = f"{path}: token {i}"
        if not isinstance(item, dict):
            raise TokenFileError(f"{where}: not a table")
        name, role, digest = item.get("name"), item.get("role"), item.get("sha256")
        if not isinstance(name, str) or not _NAME.match(name):
            raise TokenFileError(f"{where}: `name` missing or not a simple name")
        if name in names:
            raise TokenFileError(f"{where}: the name {name!r} is used twice")
        if role not in tuple(Role):
            raise TokenFileError(f"{where} ({name}): `role` must be check, reviewer or admin")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise TokenFileError(f"{where} ({name}): `sha256` must be 64 lowercase hex digits")
        names.add(name)
        out.append(ApiToken(name, Role(role), digest, str(item.get("created", ""))))
    return out


def _write(path: Path, tokens: list[ApiToken]) -> None:
    """Replace the file atomically, readable by its owner only."""
    parts = [_HEADER]
    for t in tokens:
        parts.append(
            f'\n[[token]]\nname = "{t.name}"\nrole = "{t.role.value}"\n'
            f'sha256 = "{t.sha256}"\ncreated = "{t.created}"\n'
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(parts))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the tokens file between commands."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def add_token(path: Path, name: str, role: Role = Role.CHECK) -> str:
    """Add a token named `name`; returns the token (the only time it is seen)."""
    if not _NAME.match(name):
        raise TokenFileError(
            "a token name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    with _locked(path):
        tokens = read_tokens(path)
        if any(t.name == name for t in tokens):
            raise TokenFileError(f"a token named {name!r} exists; revoke it first")
        token = new_token()
        created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        _write(path, [*tokens, ApiToken(name, role, hash_token(token), created)])
    return token


def revoke_token(path: Path, name: str) -> bool:
    """Remove the token named `name`; False if there is none."""
    with _locked(path):
        tokens = read_tokens(path)
        kept = [t for t in tokens if t.name != name]
        if len(kept) == len(tokens):
            return False
        _write(path, kept)
    return True


class TokenTable:
    """The server's view of the tokens file, re-read whenever it changes.

    A file that turns malformed keeps the last good table (and `error` says
    why), so a bad edit cannot lock every practice system out at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_hash: dict[str, ApiToken] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        self.refresh(strict=True)

    def __len__(self) -> int:
        return len(self._by_hash)

    def _file_stamp(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def refresh(self, *, strict: bool = False) -> bool:
        """Re-read the file if it changed; True if the table was replaced.
        `strict`: raise TokenFileError instead of keeping the last good one."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            try:
                tokens = read_tokens(self.path)
            except TokenFileError as exc:
                if strict:
                    raise
                self.error = str(exc)
                self._stamp = stamp  # retried when the file changes again
                return False
            self._by_hash = {t.sha256: t for t in tokens}
            self._stamp = stamp
            self.error = None
        return True

    def lookup(self, token: str) -> ApiToken | None:
        """The token's entry, or None; hashing first keeps this constant-time."""
        self.refresh()
        return self._by_hash.get(hash_token(token))
