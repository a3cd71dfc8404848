"""Personal and organisation names, compared the way a letter is addressed.

"Mrs J. Smith", "Smith, Jane" and "JANE SMITH" all name Jane Smith: titles
and punctuation are ignored, a given name may be an initial, and the family
name must be there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from rapidfuzz.distance import OSA

__all__ = ["display_key", "name_key", "name_matches", "name_tokens"]

_TITLES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "doctor",
        "prof",
        "professor",
        "sir",
        "dame",
        "rev",
        "revd",
        "reverend",
        "lady",
        "lord",
        "master",
        "fr",
        "sister",
        "nurse",
        "the",
    }
)
_POSTNOMINALS = frozenset(
    {"jr", "jnr", "snr", "sr", "phd", "mbbs", "mrcgp", "frcp", "frcs", "md", "esq", "mbe", "obe"}
)
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


def _fold(text: str) -> str:
    """Lowercase and strip accents, so "Zoë" and "Zoe" compare equal."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_tokens(text: str) -> tuple[str, ...]:
    """The words of a name without titles in front or post-nominals after;
    "Smith, Jane" becomes (jane, smith). A title word that is the name
    itself ("C Lord") stays. Cached for names of a usual length: a letter's
    addressee is matched against every entry linked to the patient, and the
    same names recur; a caller's very long text is worked out uncached."""
    if len(text) > _CACHED_NAME_LENGTH:
        return _name_tokens(text)
    return _cached_name_tokens(text)


_CACHED_NAME_LENGTH = 120


def _name_tokens(text: str) -> tuple[str, ...]:
    if "," in text:
        family, _, given = text.partition(",")
        text = f"{given} {family}"
    words = _TOKEN.findall(_fold(text.replace("'", "")))
    start, end = 0, len(words)
    while end - start > 1 and words[start] in _TITLES:
        start += 1
    while end - start > 1 and words[end - 1] in _POSTNOMINALS:
        end -= 1
    return tuple(words[start:end])


_cached_name_tokens = lru_cache(maxsize=8192)(_name_tokens)


def name_key(given: Sequence[str], family: str) -> str:
    """Index key of a person: first given word and last family word, folded.

    `display_key` computes the same from a written name, so "Dr Jane A.
    Smith" and "Smith, Jane" both find Jane Smith.
    """
    first = next((t for g in given for t in name_tokens(g)), "")
    fam = name_tokens(family)
    return f"{first} {fam[-1]}" if first and fam else ""


def display_key(text: str) -> str:
    """`name_key` of a written name: its first and last words."""
    words = name_tokens(text)
    return f"{words[0]} {words[-1]}" if len(words) >= 2 else ""


# Common English short forms of given names, both ways ("Tom Smith" is
# Thomas Smith). Only forms that are rarely names of their own.
_SHORT_FORMS = {
    "thomas": "tom tommy",
    "robert": "rob bob bobby robbie",
    "william": "will bill billy",
    "richard": "rich rick dick",
    "james": "jim jimmy jamie",
    "john": "jack johnny",
    "michael": "mike mick mikey",
    "christopher": "chris",
    "christine": "chris",
    "christina": "chris",
    "elizabeth": "liz lizzie beth betty libby",
    "margaret": "maggie peggy",
    "katherine": "kate kathy katie",
    "catherine": "kate cathy katie",
    "kathryn": "kate",
    "jennifer": "jen jenny",
    "rebecca": "becky becca",
    "samuel": "sam",
    "samantha": "sam",
    "alexander": "alex",
    "alexandra": "alex",
    "daniel": "dan danny",
    "david": "dave",
    "edward": "ed eddie ted",
    "anthony": "tony",
    "andrew": "andy drew",
    "joseph": "joe",
    "benjamin": "ben",
    "matthew": "matt",
    "nicholas": "nick",
    "stephen": "steve",
    "steven": "steve",
    "timothy": "tim",
    "patrick": "pat",
    "patricia": "pat trish",
    "susan": "sue",
    "deborah": "debbie deb",
    "victoria": "vicky vicki tori",
    "jacqueline": "jackie",
    "philip": "phil",
    "phillip": "phil",
    "kenneth": "ken kenny",
    "gregory": "greg",
    "jonathan": "jon jonny",
    "frederick": "fred freddie",
    "charles": "charlie",
    "henry": "harry",
    "abigail": "abbie abby",
    "eleanor": "ellie",
    "gemma": "gem",
    "nathan": "nate",
    "leonard": "len leo",
    "peter": "pete",
    "raymond": "ray",
    "ronald": "ron",
    "donald": "don",
    "douglas": "doug",
    "gerald": "gerry",
    "barbara": "barb",
    "dorothy": "dot",
    "josephine": "jo",
    "joanne": "jo",
    "joanna": "jo",
    "jessica": "jess",
    "amanda": "mandy",
    "zachary": "zach",
    "nathaniel": "nat",
    "natalie": "nat",
}
_SAME_NAME = {
    frozenset((full, short)) for full, shorts in _SHORT_FORMS.items() for short in shorts.split()
}


def _same_word(a: str, b: str) -> bool:
    """Equal, a short form of the other ("tom", "thomas"), or one keying slip
    apart in a word long enough to tell."""
    if a == b or frozenset((a, b)) in _SAME_NAME:
        return True
    return min(len(a), len(b)) >= 5 and OSA.distance(a, b, score_cutoff=1) <= 1


def name_matches(text: str, given: Sequence[str], family: str) -> bool:
    """Whether `text` (an addressee or display name) names this person.

    Every family-name word must appear; every other word must be one of the
    given names or its initial. A bare family name ("Mrs Smith") matches.
    """
    words = name_tokens(text)
    fam = name_tokens(family)
    if not words or not fam:
        return False
    remaining = list(words)
    for f in fam:
        hit = next((w for w in remaining if _same_word(w, f)), None)
        if hit is None:
            return False
        remaining.remove(hit)
    givens = [g for part in given for g in name_tokens(part)]
    matched = False
    for w in remaining:
        if len(w) == 1:
            ok = any(g.startswith(w) for g in givens)
        else:
            ok = any(_same_word(w, g) for g in givens)
        # A middle initial the directory does not record ("J A Smith" for a
        # Jane Smith with one given name on file) is tolerated.
        if not ok and not (len(w) == 1 and matched and len(givens) == 1):
            return False
        matched = matched or ok
    return True
