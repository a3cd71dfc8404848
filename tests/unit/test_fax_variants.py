"""The arithmetic keying-slip variants equal the straightforward string ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sendguard.core.checks.fax import digit_variants


def by_strings(key: int, cc: int) -> list[int]:
    digits, c = str(key), str(cc)
    nat = digits[len(c) :]
    out: set[str] = set()
    for i in range(len(nat)):
        out.update(nat[:i] + ch + nat[i + 1 :] for ch in "0123456789")
        out.add(nat[:i] + nat[i + 1 :])
        if i + 1 < len(nat):
            out.add(nat[:i] + nat[i + 1] + nat[i] + nat[i + 2 :])
    for i in range(len(nat) + 1):
        out.update(nat[:i] + ch + nat[i:] for ch in "0123456789")
    out.discard(nat)
    return sorted(int(c + v) for v in out if v and v[0] != "0")


@settings(max_examples=300, deadline=None)
@given(
    national=st.text(alphabet="0123456789", min_size=3, max_size=11).filter(lambda s: s[0] != "0"),
    cc=st.sampled_from([44, 1, 353]),
)
def test_variants_match_string_edits(national: str, cc: int) -> None:
    key = int(f"{cc}{national}")
    assert digit_variants(key, cc).tolist() == by_strings(key, cc)


def test_other_country_or_short_numbers_have_no_variants() -> None:
    assert digit_variants(33142685300, 44).tolist() == []
    assert digit_variants(441, 44).tolist() == []
