"""Shared fixtures: the demo directory, small hand-built directories, corpora."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sendguard import Guard
from sendguard.core.directory import Directory, RawEntry, build_directory

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "directory.json"
CORPORA = ROOT.parent / "shared" / "corpora"
TODAY = date(2026, 11, 21)


@pytest.fixture(scope="session")
def demo_guard() -> Guard:
    """A Guard on the bundled demo directory with the shipped rules."""
    return Guard.load(directory=DEMO, as_of=TODAY)


def directory_of(*entries: RawEntry, as_of: date = TODAY) -> Directory:
    return build_directory(entries, as_of=as_of)


def corpus(*parts: str) -> Path:
    """A file of the shared public corpora; skips the test when absent."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public corpus not available: {path}")
    return path
