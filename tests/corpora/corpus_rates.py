"""Pass-rate bookkeeping for the corpus tests.

Each corpus test scores sendguard against the expectations a public source
asserts, prints the pass rate (run pytest with `-s` to see it; the rates are
also recorded as test properties for the JUnit report) and asserts a floor
set just under the measured rate, so a regression fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

SHOWN = 12


@dataclass
class Tally:
    """Passes and failures of one corpus file, suite or source."""

    name: str
    passed: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, ok: bool, case: str) -> None:
        self.total += 1
        if ok:
            self.passed += 1
        else:
            self.failures.append(case)

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 1.0

    def line(self) -> str:
        return f"{self.name}: {self.passed}/{self.total} = {self.rate:.1%}"


class Tallies(dict[str, Tally]):
    """Tallies by key, created on first use."""

    def __missing__(self, key: str) -> Tally:
        t = self[key] = Tally(key)
        return t


def report(title: str, tallies: dict[str, Tally], record: Callable[[str, object], None]) -> None:
    """Print the pass rates and record them as test properties."""
    print(f"\n[{title}]")
    for key in sorted(tallies):
        t = tallies[key]
        print(f"  {t.line()}")
        record(f"{title}: {key}", f"{t.passed}/{t.total}")


def assert_floor(t: Tally, floor: float) -> None:
    """The pass rate is at least `floor` (set just under the measured rate)."""
    assert t.total > 0, f"{t.name}: no rows scored (has the corpus changed?)"
    shown = "\n  ".join(t.failures[:SHOWN])
    assert t.rate >= floor, f"{t.line()} is below the floor {floor:.1%}; failures:\n  {shown}" + (
        f"\n  ... and {len(t.failures) - SHOWN} more" if len(t.failures) > SHOWN else ""
    )


def assert_all(t: Tally) -> None:
    """Every row passes: the product promises this exactly."""
    assert_floor(t, 1.0)
