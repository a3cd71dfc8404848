"""`one_slip` agrees with the keying-slip variants spelt out as strings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sendguard.core.checks.fax import one_slip


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


NATIONAL = st.text(alphabet="0123456789", min_size=3, max_size=11).filter(lambda s: s[0] != "0")


@settings(max_examples=300, deadline=None)
@given(national=NATIONAL, cc=st.sampled_from([44, 1, 353]), data=st.data())
def test_one_slip_is_exactly_the_string_variants(
    national: str, cc: int, data: st.DataObject
) -> None:
    key = int(f"{cc}{national}")
    variants = by_strings(key, cc)
    assert all(one_slip(key, v, cc) for v in variants)
    # and nothing else: other numbers of the same country, near and far
    others = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from(by_strings(variants[0], cc)) if variants else st.nothing(),
                NATIONAL.map(lambda s: int(f"{cc}{s}")),
                st.integers(0, 10**14),
            ),
            max_size=20,
        )
    )
    chosen = set(variants)
    for other in others:
        assert one_slip(key, other, cc) is (other in chosen), other


def test_other_country_or_short_numbers_are_never_a_slip() -> None:
    assert not one_slip(33142685300, 33142685301, 44)
    assert not one_slip(441, 442, 44)
    assert not one_slip(441134960000, 441134960000, 44)
    assert one_slip(441134960000, 441134960001, 44)
    assert not one_slip(441134960000, 441134961100, 44)  # two digits changed
    assert one_slip(441134960000, 441143960000, 44)  # adjacent swap
