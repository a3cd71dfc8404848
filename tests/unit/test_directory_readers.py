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


def test_roles_borrow_names_through_chains_and_survive_loops() -> None:
    """A role linked to another role is named after that role's practitioner
    and organisation; a loop of links ends instead of recursing forever."""
    from sendguard.core.directory import Kind, LinkKind, RawEntry, RawLink, build_directory

    def role(id: str, to: str) -> RawEntry:
        links = (RawLink(LinkKind.PRACTITIONER, to), RawLink(LinkKind.ORGANIZATION, to))
        return RawEntry(id=id, kind=Kind.ROLE, links=links)

    d = build_directory(
        [
            RawEntry(
                id="P", kind=Kind.PRACTITIONER, given=("Jane",), family="Smith", prefix=("Dr",)
            ),
            RawEntry(id="O", kind=Kind.ORGANIZATION, org_name="Leeds Clinic"),
            RawEntry(
                id="R2",
                kind=Kind.ROLE,
                links=(RawLink(LinkKind.PRACTITIONER, "P"), RawLink(LinkKind.ORGANIZATION, "O")),
            ),
            role("R1", "R2"),
            role("LOOP", "LOOP"),
        ],
        as_of=date(2024, 1, 1),
    )
    (r1,) = d.find("R1")
    assert d.entry(r1).label == "Dr Jane Smith (Leeds Clinic)"
    assert d.names_of(r1) == Names(Kind.ROLE, ("Jane",), "Smith", "Leeds Clinic")
    (loop,) = d.find("LOOP")
    assert d.entry(loop).label == "LOOP"
    d._cache.clear()
    assert d.names_of(loop) == Names(Kind.ROLE, (), "", "")
