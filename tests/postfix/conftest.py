"""The real-Postfix test reuses the relay test helpers and the bench's
private-Postfix builder (bench/relay_postfix.py, built from deploy/postfix)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT, ROOT / "tests" / "relay"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
