"""The key that signs sender links: read it, or make it on first start.

The file holds one secret per line; the first signs new links and every
line verifies, so a key is rotated by putting a new line first and
dropping the old one after `token_ttl`. A missing file is created with one
random 48-byte secret (64 characters, base64url), readable by its owner
only. Every node that serves links or acts on them needs the same file.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

__all__ = ["MIN_SECRET_BYTES", "SecretError", "load_or_create_secrets"]

log = logging.getLogger("sendguard.review")
MIN_SECRET_BYTES = 32


class SecretError(ValueError):
    """The key file cannot be used; the message says why (never its content)."""


def load_or_create_secrets(path: str | os.PathLike[str]) -> list[bytes]:
    """The secrets in `path` (created if missing), first one signing."""
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:  # another process made it just now: read theirs
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
                f.flush()
                os.fsync(f.fileno())
            log.info("created the link-signing key %s", p)
    try:
        text = p.read_bytes()
        mode = p.stat().st_mode
    except OSError as exc:
        raise SecretError(f"{p}: cannot read the link-signing key: {exc.strerror}") from None
    if mode & 0o077:
        log.warning("%s: the link-signing key is readable by others; chmod 600 it", p)
    keys = [line.strip() for line in text.splitlines() if line.strip()]
    if not keys:
        raise SecretError(f"{p}: the link-signing key file is empty")
    short = [n for n, k in enumerate(keys, start=1) if len(k) < MIN_SECRET_BYTES]
    if short:
        raise SecretError(
            f"{p}: line {short[0]}: a link-signing key needs at least {MIN_SECRET_BYTES} "
            "bytes (e.g. `openssl rand -base64 48`)"
        )
    return keys
