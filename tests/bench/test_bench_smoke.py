"""The benchmarks run end to end on a tiny directory and report numbers in [0, 1].

No quality thresholds and no timings are asserted here: bench/ measures,
and these tests only keep the measuring code working.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench(name: str) -> ModuleType:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"bench.{name}")


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-out")


def test_generator_writes_fhir_ndjson_deterministically(out_dir: Path) -> None:
    generate = _bench("generate")
    world, path = generate.ensure_directory(2000, 7, out_dir, quiet=True)
    lines = path.read_bytes().splitlines()
    types = {json.loads(line)["resourceType"] for line in lines}
    assert types == {"Patient", "Practitioner", "PractitionerRole", "Organization"}
    assert 1900 <= world.entries <= 2100
    for p in world.patients[:200]:
        assert generate.nhs_check_digit(p.nhs[:9]) == int(p.nhs[9])
    again = generate.build_world(2000, 7)
    assert [p.email for p in again.patients] == [p.email for p in world.patients]


def test_quality_scorer_reports_rates_for_every_kind(out_dir: Path) -> None:
    quality = _bench("quality")
    sends = _bench("sends")
    report = quality.run_quality(2000, seed=7, per_kind=3, out_dir=out_dir, quiet=True)
    assert set(report.kinds) == set(sends.KINDS)
    for value in (
        report.recall,
        report.false_hold,
        report.false_warn,
        report.suggestion,
        report.insecure_warned,
    ):
        assert 0.0 <= value <= 1.0
    for k in report.kinds.values():
        assert k.n > 0
        assert 0.0 <= k.caught_rate <= 1.0
        assert 0.0 <= k.warned_rate <= 1.0
        assert 0.0 <= k.suggestion_rate <= 1.0
    quality.print_report(report, examples=1)  # the printing code runs too
    json.dumps(report.as_dict())


def test_latency_measurement_runs_in_process(out_dir: Path) -> None:
    latency = _bench("latency")
    path, queries, emails = latency.prepare_queries(2000, 7, 24, out_dir)
    r = latency.measure(path, queries, emails, baseline=3)
    assert r["entries"] > 0
    assert r["load_s"] > 0
    assert r["all"]["n"] > 0
    assert r["scan"]["n"] == 3
