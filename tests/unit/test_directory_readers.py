"""The record readers give what a decoded entry says.

`names_of`, `emails_of` and `numbers_of` read an entry's record without
building the entry (the fuzzy lookups touch many); on a generated directory
with every kind of entry, borrowed role names, ended numbers and addresses,
they must agree with `entry` for every entry, from a cold cache and a warm
one, before and after the directory is judged as of another day.
"""

from __future__ import annotations

import importlib
import sys
from datetime import date
from pathlib import Path

import pytest

from sendguard.core.directory import Directory, Names
from sendguard.sources import load_directory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Directory:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    generate = importlib.import_module("bench.generate")
    _, path = generate.ensure_directory(3000, 11, tmp_path_factory.mktemp("dir"), quiet=True)
    return load_directory([path], as_of=generate.AS_OF)


def _agree(d: Directory, i: int) -> None:
    e = d.entry(i)
    assert d.names_of(i) == Names(e.kind, e.given, e.family, e.org_name), i
    assert d.emails_of(i) == [m.address for m in e.emails], i
    assert d.numbers_of(i) == list(e.numbers), i


def test_readers_agree_with_entry_cold_and_warm(generated: Directory) -> None:
    d = generated
    kinds = set()
    for i in range(len(d)):
        d._cache.clear()
        names, emails, numbers = d.names_of(i), d.emails_of(i), d.numbers_of(i)  # cold
        _agree(d, i)  # the entry is now cached: the readers answer from it
        assert (names, emails, numbers) == (d.names_of(i), d.emails_of(i), d.numbers_of(i))
        kinds.add(names.kind)
    assert len(kinds) == 5
    borrowed = [i for i in range(len(d)) if d.names_of(i).family and not d._record(i)[4]]
    assert borrowed, "the generated directory should have roles named after a practitioner"


def test_readers_follow_the_day_the_directory_is_judged_on(generated: Directory) -> None:
    later = generated.on(date(2100, 1, 1).toordinal())
    ended = [i for i in range(len(later)) if any(not n.current for n in later.numbers_of(i))]
    assert ended
    for i in ended[:200]:
        _agree(later, i)
