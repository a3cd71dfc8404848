"""Property tests: normalisers and indexes against simple references.

The normalisers must never fail on odd input and must not care how the same
address, number or postcode is written. The indexes must return, on small
directories, exactly what a brute-force scan returns.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from itertools import chain

import numpy as np
import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from common import directory_of
from sendguard.core.directory import (
    PROFESSIONAL_KINDS,
    Directory,
    Kind,
    NearEmail,
    RawEntry,
    RawTelecom,
)
from sendguard.core.directory.index import (
    MASK,
    DeletionIndex,
    MultiMap,
    _mix_np,
    _variants_np,
    query_keys,
    salt_of,
)
from sendguard.core.normalise.email import EmailSyntaxError, _fast, parse_email, split_address
from sendguard.core.normalise.nhs import find_nhs_numbers, is_valid_nhs_number
from sendguard.core.normalise.phone import parse_phone, phone_key
from sendguard.core.normalise.postal import (
    find_postcode,
    fix_postcode,
    normalise_address,
    parse_postcode,
    same_place,
)

# from_regex strategies now and then reject enough draws to trip Hypothesis's
# filter_too_much health check on a busy machine; the properties still hold
FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)
SLOW = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- email ---------------------------------------------------------------------

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
ODD = ' ."(),:;<>@[\\]\t\r\n\x00\x7féßİΣKﬁ١😀\u200b\u00ad'

labels = st.one_of(
    st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True),
    st.sampled_from(["xn--p1ai", "ab--cd", "-a", "a-", "bücher", "москва", "a" * 64, "a" * 63]),
)
tlds = st.sampled_from(
    [
        *("com", "uk", "net", "org", "co", "c0m", "x", "test", "local", "invalid", "onion"),
        *("localhost", "arpa", "xn--p1ai", "рф", "COM", "a" * 63, "123"),
    ]
)
locals_ = st.one_of(
    st.text(alphabet=ATEXT + ".", min_size=1, max_size=20),
    st.text(alphabet=ATEXT, min_size=60, max_size=70),
    st.text(alphabet=ATEXT + ODD, min_size=0, max_size=12),
    st.from_regex(r'"[^"\\]{0,6}"', fullmatch=True),
)
domains = st.builds(
    lambda ls, tld: ".".join([*ls, tld]), st.lists(labels, min_size=1, max_size=4), tlds
)
email_like = st.builds(lambda loc, dom: f"{loc}@{dom}", locals_, domains)
plain_email = st.builds(
    lambda loc, ls, tld: f"{loc}@{'.'.join([*ls, tld])}",
    st.from_regex(r"[A-Za-z0-9_'+=-]{1,10}(\.[a-z0-9!#$%&*/?^`{|}~-]{1,6}){0,2}", fullmatch=True)
    | st.text(alphabet=ATEXT, min_size=63, max_size=66),
    st.lists(labels, min_size=1, max_size=3),
    tlds | st.from_regex(r"[A-Za-z]{2,6}", fullmatch=True),
)
any_text = st.one_of(
    st.text(),
    st.text(st.characters(categories=["Cs", "Cc", "Zs", "Lu", "Ll", "So", "Mn"])),
    email_like,
    st.builds(lambda a, b: a + b, email_like, st.text(alphabet=ODD, max_size=3)),
)


@FAST
@given(any_text)
def test_parse_email_raises_only_email_syntax_error(text: str) -> None:
    try:
        a = parse_email(text)
    except EmailSyntaxError:
        return
    assert a.address == f"{a.local}@{a.domain}"


@FAST
@given(plain_email | email_like)
def test_fast_path_only_accepts_what_email_validator_accepts(text: str) -> None:
    fast = _fast(text)
    assume(fast is not None)
    assert fast is not None
    try:
        v = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        pytest.fail(f"fast path accepted {text!r}; email-validator: {exc}")
    assert fast.local == v.local_part.lower()
    assert fast.domain == v.domain.lower()
    assert fast.ascii_domain == (v.ascii_domain or v.domain).lower()
    assert fast.address == v.normalized.lower()
    assert parse_email(text) == fast


@FAST
@given(any_text)
def test_parse_email_is_idempotent(text: str) -> None:
    try:
        a = parse_email(text)
    except EmailSyntaxError:
        return
    assert parse_email(a.address) == a
    assert parse_email(a.address.upper() if a.address.isascii() else a.address) == a


# -- phone numbers -----------------------------------------------------------

# National significant numbers: (prefix, total length). Filled with random
# digits and kept only when phonenumbers says the number is valid.
UK_RANGES = [
    ("207", 10),
    ("208", 10),
    ("203", 10),
    ("1132", 10),
    ("1134", 10),
    ("1214", 10),
    ("1612", 10),
    ("1315", 10),
    ("2890", 10),
    ("2920", 10),
    ("18652", 10),
    ("19046", 10),
    ("15396", 10),
    ("7700", 10),
    ("7911", 10),
    ("7400", 10),
    ("7500", 10),
    ("7800", 10),
    ("800", 10),
    ("8081", 10),
    ("300", 10),
    ("345", 10),
    ("1697", 9),
]


@st.composite
def uk_numbers(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from(UK_RANGES))
    rest = draw(st.text(alphabet="0123456789", min_size=length - len(prefix), max_size=length))
    nsn = (prefix + rest)[:length]
    assume(len(nsn) == length)
    n = phonenumbers.parse(f"+44{nsn}", None)
    assume(phonenumbers.is_valid_number(n))
    return nsn


@st.composite
def grouped(draw: st.DrawFn, digits: str) -> str:
    """`digits` split at random points, joined by one separator style."""
    sep = draw(st.sampled_from([" ", "-", ".", "  ", " - ", ""]))
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=3)))
    parts = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    return sep.join(parts)


@st.composite
def written_forms(draw: st.DrawFn) -> tuple[str, str]:
    nsn = draw(uk_numbers())
    body = draw(grouped(nsn))
    area = 3 if nsn.startswith(("20", "28", "29")) else 4
    form = draw(
        st.sampled_from(
            [
                "0{b}",
                "+44 {b}",
                "+44{b}",
                "+44 (0){b}",
                "+44 (0) {b}",
                "+44(0){b}",
                "0044 {b}",
                "0044{b}",
                "0044 (0) {b}",
                "(0{a}) {r}",
                " 0{b} ",
            ]
        )
    )
    text = form.format(b=body, a=nsn[: area - 1], r=nsn[area - 1 :])
    return nsn, text


@FAST
@given(written_forms())
def test_phone_key_agrees_with_parse_phone_for_valid_uk_numbers(case: tuple[str, str]) -> None:
    nsn, text = case
    n = parse_phone(text)
    assert n.valid, text
    assert n.key == int(f"44{nsn}"), text
    assert phone_key(text) == n.key, text


# -- postcodes -----------------------------------------------------------------

# Royal Mail's rules, written independently of sendguard's pattern.
FIRST = "ABCDEFGHIJKLMNOPRSTUWYZ"  # not Q V X
SECOND = "ABCDEFGHKLMNOPQRSTUVWXY"  # not I J Z
THIRD = "ABCDEFGHJKPSTUW"  # A9A
FOURTH = "ABEHMNPRVWXY"  # AA9A
INWARD = "ABDEFGHJLNPQRSTUWXYZ"  # not C I K M O V
D = "0123456789"


@st.composite
def postcodes(draw: st.DrawFn) -> str:
    c = st.sampled_from
    shape = draw(c(["A9", "A99", "AA9", "AA99", "A9A", "AA9A"]))
    pick = {
        "A9": lambda: draw(c(FIRST)) + draw(c(D)),
        "A99": lambda: draw(c(FIRST)) + draw(c(D)) + draw(c(D)),
        "AA9": lambda: draw(c(FIRST)) + draw(c(SECOND)) + draw(c(D)),
        "AA99": lambda: draw(c(FIRST)) + draw(c(SECOND)) + draw(c(D)) + draw(c(D)),
        "A9A": lambda: draw(c(FIRST)) + draw(c(D)) + draw(c(THIRD)),
        "AA9A": lambda: draw(c(FIRST)) + draw(c(SECOND)) + draw(c(D)) + draw(c(FOURTH)),
    }
    outward = pick[shape]()
    inward = draw(c(D)) + draw(c(INWARD)) + draw(c(INWARD))
    return f"{outward} {inward}"


@st.composite
def postcode_variants(draw: st.DrawFn) -> tuple[str, str]:
    pc = draw(postcodes())
    out, inward = pc.split()
    gap = draw(st.sampled_from(["", " ", "  ", "\t"]))
    text = f"{out}{gap}{inward}"
    text = draw(st.sampled_from([text, text.lower(), text.title(), text.swapcase()]))
    pad = draw(st.sampled_from(["", " ", "\n", " \t "]))
    return pc, f"{pad}{text}{pad}"


@FAST
@given(postcode_variants())
def test_postcode_variants_parse_and_fix_to_the_same_normal_form(case: tuple[str, str]) -> None:
    pc, text = case
    assert parse_postcode(pc) == pc
    assert parse_postcode(text) == pc
    fixed = fix_postcode(text)
    assert fixed is not None
    assert parse_postcode(fixed) == pc
    assert find_postcode(f"Flat 1, 2 High Street, Leeds {text}") == pc


_TO_DIGIT = {"O": "0", "I": "1", "S": "5", "B": "8"}
_TO_LETTER = {v: k for k, v in _TO_DIGIT.items()}


@st.composite
def slipped_postcodes(draw: st.DrawFn) -> tuple[str, str]:
    """A postcode with keying slips where its format leaves no doubt."""
    pc = draw(postcodes())
    out, inward = pc.split()
    chars = list(out + inward)
    n = len(out)
    letter_at = [0]
    digit_at = [n]
    if n == 2:
        digit_at.append(1)
    if n == 4:
        letter_at.append(1)
        digit_at.append(2)
    letter_at += [n + 1, n + 2]
    slipped = False
    for i in letter_at:
        if chars[i] in _TO_DIGIT and draw(st.booleans()):
            chars[i] = _TO_DIGIT[chars[i]]
            slipped = True
    for i in digit_at:
        if chars[i] in _TO_LETTER and draw(st.booleans()):
            chars[i] = _TO_LETTER[chars[i]]
            slipped = True
    assume(slipped)
    text = "".join(chars)
    return pc, draw(st.sampled_from([text, f"{text[:n]} {text[n:]}", text.lower()]))


@FAST
@given(slipped_postcodes())
def test_fix_postcode_repairs_unambiguous_slips(case: tuple[str, str]) -> None:
    pc, text = case
    assert fix_postcode(text) == pc


# -- addresses -----------------------------------------------------------------

STREET_TYPES = {
    "Road": "Rd",
    "Street": "St",
    "Avenue": "Ave",
    "Lane": "Ln",
    "Drive": "Dr",
    "Close": "Cl",
    "Crescent": "Cres",
    "Court": "Ct",
    "Gardens": "Gdns",
}
STREET_NAMES = ["High", "Station", "Church", "Victoria", "Mill", "St Mary's", "Queen's", "Long"]
BUILDINGS = ["", "Rose Cottage", "Holly House", "The Old Manor", "Oak Court"]
TOWNS = ["Leeds", "York", "Bishop's Stortford", "Stoke-on-Trent", "Little Snoring", "Hull"]


@st.composite
def addresses(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    """Address parts, and a postcode to go with them."""
    parts = {
        "flat": draw(st.sampled_from(["", "1", "12B", "3"])),
        "building": draw(st.sampled_from(BUILDINGS)),
        "number": draw(st.sampled_from(["", "1", "27", "103", "12A", "4-6"])),
        "street": draw(st.sampled_from(STREET_NAMES)),
        "type": draw(st.sampled_from(sorted(STREET_TYPES))),
        "town": draw(st.sampled_from(TOWNS)),
    }
    return parts, draw(postcodes())


@st.composite
def written(draw: st.DrawFn, parts: dict[str, str], postcode: str) -> str:
    """One way staff might write the address."""
    kind = draw(st.sampled_from(["full", "short", "short."]))
    street_type = parts["type"] if kind == "full" else STREET_TYPES[parts["type"]]
    if kind == "short.":
        street_type += "."
    street = f"{parts['street']} {street_type}"
    if parts["number"]:
        street = f"{parts['number']} {street}"
    town = parts["town"]
    if draw(st.booleans()):
        town = town.replace("-", " ")
    out, inward = postcode.split()
    pc = out + draw(st.sampled_from(["", " ", "  "])) + inward
    flat = ""
    if parts["flat"]:
        word = draw(st.sampled_from(["Flat", "Apartment", "Apt", "Flt", "Apt."]))
        flat = f"{word} {parts['flat']}"
    lines = [x for x in (flat, parts["building"], street, town, pc) if x]
    sep = draw(st.sampled_from([", ", "\n", " ", ",\n", "\r\n", " ,  "]))
    text = sep.join(lines)
    if draw(st.booleans()):
        text = text.replace("'", "")
    case = draw(st.sampled_from(["as is", "upper", "lower", "random"]))
    if case == "upper":
        text = text.upper()
    elif case == "lower":
        text = text.lower()
    elif case == "random":
        flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        text = "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))
    return text


@FAST
@given(st.data())
def test_normalise_address_ignores_how_the_address_is_written(data: st.DataObject) -> None:
    parts, postcode = data.draw(addresses())
    a = data.draw(written(parts, postcode))
    b = data.draw(written(parts, postcode))
    na, nb = normalise_address(a), normalise_address(b)
    assert na == nb, (a, b)
    assert na.postcode == postcode
    assert same_place(na, nb)


# -- NHS numbers ---------------------------------------------------------------


def reference_mod11(text: str) -> bool:
    """NHS Data Dictionary Modulus 11, plus the rule that numbers of one
    repeated digit are never issued."""
    if re.fullmatch(r"[0-9]{10}", text) is None or len(set(text)) == 1:
        return False
    total = sum(int(text[i]) * (10 - i) for i in range(9))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(text[9])


@st.composite
def nhs_numbers(draw: st.DrawFn) -> str:
    first = draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(first)) % 11
    check = 0 if check == 11 else check
    assume(check != 10 and len(set(first + str(check))) > 1)
    return first + str(check)


@FAST
@given(
    st.one_of(
        nhs_numbers(),
        st.text(alphabet="0123456789", min_size=10, max_size=10),
        st.text(alphabet="0123456789", max_size=12),
        st.sampled_from(["0000000000", "1111111111", "٩٤٣٤٧٦٥٩١٩", "943476591９"]),
        st.text(max_size=12),
    )
)
def test_is_valid_nhs_number_agrees_with_modulus_11(text: str) -> None:
    assert is_valid_nhs_number(text) == reference_mod11(text)


@st.composite
def nhs_written(draw: st.DrawFn, number: str) -> str:
    s1 = draw(st.sampled_from(["", " ", "-"]))
    s2 = draw(st.sampled_from(["", " ", "-"]))
    return f"{number[:3]}{s1}{number[3:6]}{s2}{number[6:]}"


FILLER = st.text(alphabet="abcXYZ :;,.()/\n\t#", min_size=1, max_size=12)


@FAST
@given(st.data())
def test_find_nhs_numbers_finds_every_number_written_3_3_4(data: st.DataObject) -> None:
    numbers = data.draw(st.lists(nhs_numbers(), min_size=1, max_size=4))
    pieces = [data.draw(st.text(alphabet="abc :(\n", max_size=8))]
    for n in numbers:
        pieces += [data.draw(nhs_written(n)), data.draw(FILLER)]
    text = "".join(pieces)
    assert find_nhs_numbers(text) == list(dict.fromkeys(numbers)), text


# -- indexes -------------------------------------------------------------------

SMALL = st.text(alphabet="abcé", max_size=7)
GROUPS = [salt_of("a.org"), salt_of("b.net"), salt_of(""), 0, 12345, MASK]


@FAST
@given(
    st.lists(st.tuples(SMALL, st.sampled_from(GROUPS)), max_size=40),
    st.lists(st.tuples(SMALL, st.sampled_from(GROUPS)), min_size=1, max_size=10),
    st.sampled_from([1, 2]),
)
def test_deletion_index_matches_brute_force(
    entries: list[tuple[str, int]], queries: list[tuple[str, int]], k: int
) -> None:
    strings = [s for s, _ in entries]
    salts = [g for _, g in entries]
    index = DeletionIndex.build(strings, salts, list(range(len(strings))), k=k)
    for query, group in queries + entries[:5]:
        found = {
            v
            for v in index.candidates(query, group)
            if salts[v] == group and OSA.distance(query, strings[v]) <= k
        }
        brute = {
            i for i, (s, g) in enumerate(entries) if g == group and OSA.distance(query, s) <= k
        }
        assert found == brute, (query, group)


@FAST
@given(st.lists(st.text(alphabet="ab", max_size=9), min_size=1, max_size=10))
def test_deletion_index_finds_long_strings_exactly(strings: list[str]) -> None:
    index = DeletionIndex.build(strings, [7] * len(strings), list(range(len(strings))), max_len=3)
    for i, s in enumerate(strings):
        assert i in index.candidates(s, 7)


@FAST
@given(
    st.lists(
        st.tuples(st.integers(-(2**64), 2**65), st.integers(0, 2**31 - 1)),
        max_size=40,
    ),
    st.lists(st.integers(-(2**64), 2**65), max_size=8),
)
def test_multimap_matches_a_dict(pairs: list[tuple[int, int]], extra: list[int]) -> None:
    mm = MultiMap.build([k for k, _ in pairs], [v for _, v in pairs])
    ref: dict[int, list[int]] = defaultdict(list)
    for k, v in pairs:
        ref[k & MASK].append(v)
    queries = [k for k, _ in pairs] + extra
    for q in queries:
        assert mm.get(q) == sorted(ref.get(q & MASK, []))
    assert mm.get_many(queries) == list(
        dict.fromkeys(chain.from_iterable(sorted(ref.get(q & MASK, [])) for q in queries))
    )
    assert len(mm) == len(pairs)


KINDS = [Kind.PATIENT, Kind.CONTACT, Kind.PRACTITIONER, Kind.ROLE, Kind.ORGANIZATION]
EMAIL_DOMAINS = ["x.org", "nhs.net"]
LOCAL = st.text(alphabet="abcd", min_size=1, max_size=6)


@st.composite
def small_directories(draw: st.DrawFn) -> list[tuple[Kind, list[tuple[str, bool]]]]:
    """Entries: a kind and email addresses, each current or ended."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(KINDS),
                st.lists(
                    st.tuples(
                        st.builds(
                            lambda loc, dom: f"{loc}@{dom}", LOCAL, st.sampled_from(EMAIL_DOMAINS)
                        ),
                        st.booleans(),
                    ),
                    min_size=1,
                    max_size=3,
                ),
            ),
            max_size=14,
        )
    )


def brute_near(
    entries: list[tuple[Kind, list[tuple[str, bool]]]], address: str, max_edits: int
) -> list[NearEmail]:
    """`near_emails` by scanning: addresses in the query's domain, other than
    the query, within one edit, or two when an owner is a professional."""
    local, domain = split_address(address)
    found: dict[str, tuple[int, list[int]]] = {}
    for i, (kind, emails) in enumerate(entries):
        limit = min(max_edits, 2 if kind in PROFESSIONAL_KINDS else 1)
        for a in dict.fromkeys(e for e, _ in emails):
            l2, d2 = split_address(a)
            if a == address or d2 != domain:
                continue
            d = OSA.distance(local, l2)
            if d <= limit:
                found.setdefault(a, (d, []))[1].append(i)
    return sorted(
        (NearEmail(a, d, tuple(owners)) for a, (d, owners) in found.items()),
        key=lambda n: (n.distance, n.address),
    )


QUERIES = st.lists(
    st.builds(lambda loc, dom: f"{loc}@{dom}", LOCAL, st.sampled_from([*EMAIL_DOMAINS, "y.com"])),
    min_size=1,
    max_size=6,
)


def build(entries: list[tuple[Kind, list[tuple[str, bool]]]]) -> Directory:
    directory = directory_of(
        *(
            RawEntry(
                id=f"Entry/{i}",
                kind=kind,
                telecoms=tuple(
                    RawTelecom(system="email", value=a, end=None if current else date(2020, 1, 1))
                    for a, current in emails
                ),
            )
            for i, (kind, emails) in enumerate(entries)
        )
    )
    assert len(directory) == len(entries)
    return directory


def queries_for(
    entries: list[tuple[Kind, list[tuple[str, bool]]]], queries: list[str]
) -> list[str]:
    """The drawn queries and some of the directory's own addresses."""
    return queries + [a for _, emails in entries[:3] for a, _ in emails]


@SLOW
@given(small_directories(), QUERIES, st.sampled_from([0, 1, 2]))
def test_near_emails_matches_brute_force(
    entries: list[tuple[Kind, list[tuple[str, bool]]]], queries: list[str], max_edits: int
) -> None:
    """Exactly the scan's answer, on any small directory."""
    directory = build(entries)
    for address in queries_for(entries, queries):
        got = directory.near_emails(address, max_edits=max_edits)
        assert got == brute_near(entries, address, max_edits), address


@FAST
@given(
    st.one_of(
        st.from_regex(r"0[1-9]\d{8,9}", fullmatch=True),
        st.from_regex(r"\+(44|1|33|49|353|91|800|870)\d{5,12}", fullmatch=True),
    ),
    st.sampled_from(["GB", "US", "FR", "GG"]),
)
def test_parse_phone_validity_is_the_library_s(text: str, region: str) -> None:
    """parse_phone decides validity from the number's type (one metadata pass);
    it must agree with phonenumbers.is_valid_number."""
    import phonenumbers

    try:
        n = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return
    assert parse_phone(text, region).valid is phonenumbers.is_valid_number(n)


@FAST
@given(st.text(alphabet="ab.é_1", max_size=50), st.integers(0, MASK), st.sampled_from([1, 2]))
def test_query_keys_are_the_keys_the_index_stores(text: str, salt: int, k: int) -> None:
    """The query-side hashing of one string yields exactly the keys the
    build side (`_variants_np`, over whole columns) stores for it."""
    cps = np.array([[ord(c) + 1 for c in text]], dtype=np.uint64).reshape(1, len(text))
    with np.errstate(over="ignore"):
        stored = {
            int(key)
            for folds in _variants_np(cps, k)
            for key in _mix_np(folds ^ np.uint64(salt)) >> np.uint64(32)
        }
    assert set(query_keys(text, k, salt).tolist()) == stored


NAME_PIECES = st.sampled_from(
    ["Jane", "Smith", "O'Brien", "Dr", "J.", ".", "-", "Seán", "\u00a0", " ", "  ", "\t", ","]
)
LOCAL_PIECES = st.sampled_from(["j", "a.b", "x+y", "o'k", ".", "-", "é", " "])
DOMAIN_PIECES = st.sampled_from(["nhs.net", "x", "-", ".", "example.org", "@"])


@FAST
@given(
    st.lists(NAME_PIECES, max_size=6),
    st.lists(LOCAL_PIECES, min_size=1, max_size=3),
    st.lists(DOMAIN_PIECES, min_size=1, max_size=3),
    st.sampled_from(["plain", "quoted", "none"]),
    st.sampled_from(["", " ", "\t", "  "]),
)
def test_parse_recipients_fast_path_is_what_getaddresses_says(
    name: list[str], local: list[str], domain: list[str], style: str, pad: str
) -> None:
    """A simple `Name <address>` is read without getaddresses' tokenizer;
    whenever it is, the result is the one getaddresses gives."""
    from email.utils import getaddresses

    from sendguard.guard import _SIMPLE_NAMED, parse_recipients

    n, a = "".join(name), "".join(local) + "@" + "".join(domain)
    shown = {"plain": n, "quoted": f'"{n}"', "none": ""}[style]
    text = f"{pad}{shown}{pad}<{a}>{pad}"
    if _SIMPLE_NAMED.fullmatch(text) is None:
        return
    (r,) = parse_recipients([text])
    assert [(r.display_name, r.address)] == [(n2, a2) for n2, a2 in getaddresses([text]) if a2]


@pytest.mark.parametrize(
    "shape", [" {}", " {}<x>", " \t{}<a@b.cd", "a {}<x", '"{}', "Jane{}Smith <a@b.cd"]
)
def test_parse_recipients_fast_path_reads_long_blank_runs_in_one_pass(shape: str) -> None:
    """Words and blanks are disjoint in the fast path's pattern, so a long
    run of blanks (an API caller may send 10 000 characters) is read once;
    the pattern it replaced took half a minute on 4 000 blanks."""
    from sendguard.guard import _SIMPLE_NAMED, parse_recipients

    text = shape.format(" " * 20_000) + ","
    assert _SIMPLE_NAMED.fullmatch(text) is None
    parse_recipients([text])  # and getaddresses takes it from there
