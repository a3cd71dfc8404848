"""The shape of the code: a pure core and a guarded public surface."""

from __future__ import annotations

import subprocess
import sys

import sendguard

PUBLIC = {
    "Action",
    "Channel",
    "Config",
    "ConfigError",
    "Directory",
    "DirectoryError",
    "EmailRecipient",
    "Finding",
    "Guard",
    "Header",
    "RulesError",
    "Severity",
    "Verdict",
    "load_config",
}


def test_public_surface() -> None:
    assert set(sendguard.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(sendguard, name) is not None


def test_core_does_no_io() -> None:
    """Importing and using the core loads no I/O or framework module."""
    code = (
        "import sys\n"
        "import sendguard.core.engine, sendguard.core.directory.snapshot, "
        "sendguard.core.message\n"
        "banned = ['asyncio', 'aiosmtpd', 'aiosmtplib', 'sqlite3', 'psycopg', 'fastapi', "
        "'sendguard.guard', 'sendguard.sources', 'sendguard.relay', 'sendguard.store']\n"
        "print(sorted(m for m in banned if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
