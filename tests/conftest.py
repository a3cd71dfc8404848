"""Fixtures shared by every test folder (helpers are in tests/common.py)."""

from __future__ import annotations

import pytest

from common import DEMO, TODAY
from sendguard import Guard


@pytest.fixture(scope="session")
def demo_guard() -> Guard:
    """A Guard on the bundled demo directory with the shipped rules."""
    return Guard.load(directory=DEMO, as_of=TODAY)
