"""UK postcodes and postal addresses, normalised for comparison.

Two addresses are compared on what decides where a letter lands: the
postcode, the premise (house and flat numbers, building names) and the
street words; case, punctuation, line breaks, postcode spacing and common
abbreviations (Rd/Road, St/Street) do not matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

__all__ = [
    "PSEUDO_POSTCODE",
    "NormalAddress",
    "find_postcode",
    "fix_postcode",
    "normalise_address",
    "parse_postcode",
    "place_key",
    "postcode_slip",
    "same_place",
]

# Royal Mail format: the area letters and the inward letters are restricted;
# the last outward character may be any letter (old codes such as W1N 4DJ).
# GIR 0AA and BFPO numbers are special cases.
_OUTWARD = r"(?:[A-PR-UWYZ][0-9][0-9A-Z]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9A-Z]?)"
_INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"
_POSTCODE = re.compile(rf"(?P<out>{_OUTWARD})\s*(?P<in>{_INWARD})")
_PSEUDO = re.compile(r"ZZ99\s*(?P<in>[0-9][A-Z]{2})")
_GIRO = re.compile(r"GIR\s*0AA")
_BFPO = re.compile(r"BFPO\s*(?P<num>[0-9]{1,4})")
_FIND = re.compile(
    rf"(?<![A-Z0-9])(?:{_OUTWARD}\s*{_INWARD}|ZZ99\s*[0-9][A-Z]{{2}}|GIR\s*0AA|BFPO\s*[0-9]{{1,4}})"
    r"(?![A-Z0-9])"
)

PSEUDO_POSTCODE = "ZZ99"
"""Outward code of the NHS pseudo-postcodes (no fixed abode, abroad, ...)."""


def parse_postcode(text: str) -> str | None:
    """The postcode in normal form ("SW1A 1AA", "GIR 0AA", "BFPO 123"), or None.

    NHS pseudo-postcodes (ZZ99 3VZ) parse, so callers can say why they are
    not mailable; use `is_pseudo` to tell.
    """
    t = text.strip().upper()
    if m := _POSTCODE.fullmatch(t):
        return f"{m.group('out')} {m.group('in')}"
    if m := _PSEUDO.fullmatch(t):
        return f"ZZ99 {m.group('in')}"
    if _GIRO.fullmatch(t):
        return "GIR 0AA"
    if m := _BFPO.fullmatch(t):
        return f"BFPO {m.group('num')}"
    return None


def find_postcode(text: str) -> str | None:
    """The last postcode written in a free-text address, normalised."""
    matches = _FIND.findall(text.upper())
    return parse_postcode(matches[-1]) if matches else None


_LETTER_FOR = str.maketrans("0158", "OISB")
_DIGIT_FOR = str.maketrans("OISB", "0158")


def fix_postcode(text: str) -> str | None:
    """Repair the commonest keying slips (O for 0, I for 1) where the format
    leaves no doubt which is meant: the first character is a letter, the
    inward code is digit-letter-letter, a two-character outward code ends in
    a digit and a four-character one is letter-letter-digit-any.

    Returns the repaired text as "OUTWARD INWARD" (callers check it with
    `parse_postcode`), or None when it cannot be a postcode.
    """
    t = re.sub(r"\s+", "", text.upper())
    if not 5 <= len(t) <= 7 or not t.isalnum():
        return None
    outward, inward = t[:-3], t[-3:]
    inward = inward[0].translate(_DIGIT_FOR) + inward[1:].translate(_LETTER_FOR)
    chars = list(outward)
    chars[0] = chars[0].translate(_LETTER_FOR)
    if len(chars) == 2:
        chars[1] = chars[1].translate(_DIGIT_FOR)
        if not chars[1].isdigit():
            return None
    elif len(chars) == 4:
        chars[1] = chars[1].translate(_LETTER_FOR)
        chars[2] = chars[2].translate(_DIGIT_FOR)
    return f"{''.join(chars)} {inward}"


# Canonical spellings: every variant maps to one token, so "St"/"Street" and
# "Rd"/"Road" compare equal. "St" also stands for "Saint", so both map to "st".
_ABBREVIATIONS = {
    "street": "st",
    "str": "st",
    "saint": "st",
    "road": "rd",
    "avenue": "ave",
    "av": "ave",
    "avenu": "ave",
    "lane": "ln",
    "drive": "dr",
    "close": "cl",
    "crescent": "cres",
    "cresc": "cres",
    "court": "ct",
    "place": "pl",
    "square": "sq",
    "gardens": "gdns",
    "garden": "gdn",
    "grove": "gr",
    "terrace": "ter",
    "terr": "ter",
    "house": "ho",
    "hse": "ho",
    "apartment": "flat",
    "apt": "flat",
    "flt": "flat",
    "park": "pk",
    "mount": "mt",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "upper": "upr",
    "lower": "lwr",
    "highway": "hwy",
    "parade": "pde",
    "way": "wy",
    "walk": "wlk",
    "mews": "mews",
    "building": "bldg",
    "buildings": "bldgs",
    "centre": "ctr",
    "center": "ctr",
    "hospital": "hosp",
    "surgery": "surg",
    "medical": "med",
    "practice": "prac",
    "number": "no",
    "floor": "fl",
    "unit": "unit",
}
_CANONICAL = frozenset(_ABBREVIATIONS.values())
_NOISE = frozenset({"united", "kingdom", "uk", "gb", "england", "scotland", "wales", "the", "and"})
_TOKEN = re.compile(r"[a-z0-9]+")
_TAIL = re.compile(r"(?<![A-Z0-9])([A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2})[^A-Z0-9]*$")


@dataclass(frozen=True, slots=True)
class NormalAddress:
    """An address reduced to what decides delivery.

    `premise`: house/flat numbers in order of appearance ("3", "12a");
    `words`: the other canonical tokens (street, building, locality).
    """

    postcode: str | None
    premise: tuple[str, ...]
    words: tuple[str, ...]

    @property
    def key(self) -> str:
        """Exact-match key: postcode plus premise numbers in any order."""
        return f"{self.postcode or ''}|{','.join(sorted(self.premise))}"

    def text(self) -> str:
        return " ".join((*self.premise, *self.words, self.postcode or ""))


def _numberish(tok: str) -> bool:
    """House or flat number: "12", "12a", "b2"."""
    if tok[0].isdigit():
        return tok.isdigit() or (tok[:-1].isdigit() and tok[-1].isalpha())
    return len(tok) > 1 and tok[0].isalpha() and tok[1:].isdigit()


def place_key(lines: Iterable[str], postcode: str) -> str:
    """`normalise_address(text).key` for an address whose postcode is known
    (a directory record): only the premise numbers are needed."""
    premise = [
        tok
        for line in lines
        for tok in _TOKEN.findall(line.lower())
        if _numberish(tok) and tok != postcode.lower().replace(" ", "")
    ]
    pc = postcode.replace(" ", "")
    inward = pc[-3:].lower()
    outward = pc[:-3].lower()
    premise = [t for t in premise if t not in (outward, inward)]
    return f"{postcode}|{','.join(sorted(premise))}"


def normalise_address(text: str) -> NormalAddress:
    """Reduce a free-text address (any line breaks, commas, case) to its parts.

    Cached for addresses of a usual length (the result is immutable):
    household members share an address, and a letter compares with every
    address at the building; a caller's very long text is worked out uncached.
    """
    if len(text) > _CACHED_ADDRESS_LENGTH:
        return _normalise_address(text)
    return _cached_normalise_address(text)


_CACHED_ADDRESS_LENGTH = 300


def _normalise_address(text: str) -> NormalAddress:
    upper = text.upper()
    postcode = None
    tail = _TAIL.search(upper)  # most addresses end with their postcode
    if tail is not None and (pc := parse_postcode(tail.group(1))) is not None:
        postcode = pc
        upper = upper[: tail.start(1)]
    else:
        matches = list(_FIND.finditer(upper))
        if matches:
            last = matches[-1]
            postcode = parse_postcode(last.group(0))
            upper = upper[: last.start()] + " " + upper[last.end() :]
    lowered = upper.lower().replace("'", "").replace("\u2019", "")
    premise: list[str] = []
    words: list[str] = []
    for tok in _TOKEN.findall(lowered):
        if _numberish(tok):
            premise.append(tok)
        elif tok not in _NOISE:
            words.append(_ABBREVIATIONS.get(tok, tok))
    return NormalAddress(postcode=postcode, premise=tuple(premise), words=tuple(words))


_cached_normalise_address = lru_cache(maxsize=8192)(_normalise_address)


_STREET_WORDS = tuple(w for w in _ABBREVIATIONS if len(w) >= 4)


@lru_cache(maxsize=8192)
def _street_word(word: str) -> str | None:
    """The canonical street word a keying slip stands for ("steet" -> "st",
    "avneue" -> "ave"), or None. Used only to let two addresses agree."""
    if len(word) < 4 or word in _CANONICAL:
        return None
    hit = process.extractOne(word, _STREET_WORDS, scorer=OSA.distance, score_cutoff=1)
    return _ABBREVIATIONS[hit[0]] if hit is not None else None


def _words_agree(a: NormalAddress, b: NormalAddress, strict: bool) -> bool:
    """Whether the words of two addresses with the same postcode and premise
    agree: every word of the shorter side has a partner on the other (so one
    side may leave out the town or county). A keying slip in a longer word
    ("Korris Rd" for Morris Road) still agrees, since postcode and house
    number already fix the delivery point; a named house with no number
    (`strict`) needs the words themselves to agree exactly or nearly so.
    """
    if not a.words or not b.words:
        return True
    small, large = sorted((set(a.words), set(b.words)), key=len)
    floor = 90 if strict else 75
    read = large | {sw for x in large if (sw := _street_word(x)) is not None}
    return all(
        w in read
        or _street_word(w) in read
        or (len(w) >= 4 and max(fuzz.ratio(w, x) for x in large) >= floor)
        for w in small
    )


def same_place(a: NormalAddress, b: NormalAddress) -> bool:
    """Whether two addresses are the same delivery point.

    Postcode and premise numbers (in any order) must be equal; the words
    then only have to agree loosely (see `_words_agree`).
    """
    if a.postcode is None or a.postcode != b.postcode:
        return False
    if sorted(a.premise) != sorted(b.premise):
        return False
    return _words_agree(a, b, strict=not a.premise)


def postcode_slip(a: NormalAddress, b: NormalAddress) -> bool:
    """Same premise and street but postcodes one keying slip apart."""
    if a.postcode is None or b.postcode is None or a.postcode == b.postcode:
        return False
    pa, pb = a.postcode.replace(" ", ""), b.postcode.replace(" ", "")
    if OSA.distance(pa, pb, score_cutoff=1) > 1:
        return False
    return sorted(a.premise) == sorted(b.premise) and _words_agree(a, b, strict=not a.premise)
