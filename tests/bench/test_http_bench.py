"""bench/http_check.py runs end to end on a small directory: numbers in range only.

A real `sendguard serve` process answers a few hundred checks over HTTP;
no timing is asserted, only that the measuring code works and that every
HTTP verdict (emails, faxes and letters) equals the library's, with no
fax or letter held.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _bench(name: str) -> ModuleType:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"bench.{name}")


def test_http_benchmark_measures_library_and_http(tmp_path: Path) -> None:
    http_check = _bench("http_check")
    r = http_check.run(2000, seed=7, requests=300, connections=4, out_dir=tmp_path)
    assert r["entries"] > 1000
    assert r["requests"] == 300
    for s in (r["library"], r["http"]["single"], r["http"]["loaded"]):
        assert s["checks_per_s"] > 0
        assert 0 < s["p50_us"] <= s["p99_us"]
    assert r["http"]["loaded"]["n"] == 300
    assert r["ratio"] > 0
    assert r["http"]["server_cpu_us"] > 0
    assert r["compared"] == 300
    assert set(r["compared_by_channel"]) == {"email", "fax", "letter"}  # a mixed prefix
    assert r["differ"] == 0
    assert r["held"] == 0  # hold=false: advice only, nothing kept
    http_check.print_report(r)  # the printing code runs too
