"""Test helpers shared across folders: the demo directory, small directories, corpora.

Imported as `common` (pytest puts tests/ on the path, see pyproject.toml);
fixtures live in tests/conftest.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sendguard.core.directory import Directory, RawEntry, build_directory

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "directory.json"
CORPORA = ROOT.parent / "shared" / "corpora"
TODAY = date(2026, 11, 21)


def directory_of(*entries: RawEntry, as_of: date = TODAY) -> Directory:
    return build_directory(entries, as_of=as_of)


def corpus(*parts: str) -> Path:
    """A file of the shared public corpora; skips the test when absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public corpus not available: {path}")
    return path
