"""Which domain an unknown, mistyped domain was meant to be.

A domain is compared in two parts, the name ("gmail") and the suffix
("com", "co.uk"), against typo targets: the common providers plus the
directory's own domains that enough entries (or any professional) use.
Each part may be a slip or two away, by its length; a domain that is
known (any directory domain, any listed real provider) is never corrected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from sendguard.core.directory import Directory
from sendguard.core.directory.index import DeletionIndex

__all__ = ["DomainTable", "split_domain"]

_SUFFIXES = frozenset(
    {
        "co.uk",
        "org.uk",
        "ac.uk",
        "gov.uk",
        "nhs.uk",
        "me.uk",
        "ltd.uk",
        "plc.uk",
        "net.uk",
        "sch.uk",
        "police.uk",
        "mod.uk",
        "com.au",
        "net.au",
        "org.au",
        "co.nz",
        "co.za",
        "com.br",
        "co.jp",
        "co.in",
        "com.cn",
    }
)
_BRANDS = frozenset({"gmail", "googlemail"})  # one domain worldwide: any other suffix is a slip
_JUNK = ".'`\"?!,;:<>()[] "


def split_domain(domain: str) -> tuple[str, str, str]:
    """(subdomains, name, suffix): "a.leedsth.nhs.uk" -> ("a", "leedsth", "nhs.uk")."""
    labels = domain.split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in _SUFFIXES:
        return ".".join(labels[:-3]), labels[-3], ".".join(labels[-2:])
    if len(labels) >= 2:
        return ".".join(labels[:-2]), labels[-2], labels[-1]
    return "", domain, ""


def _name_slips(name: str) -> int:
    """Edits a domain name may be away: one up to six letters (nhs.net ->
    nsh.net, ns.net), two from seven; none for one or two letters."""
    n = len(name)
    return 0 if n <= 2 else 1 if n <= 6 else 2


@dataclass(frozen=True, slots=True)
class _Target:
    domain: str
    head: str
    name: str
    suffix: str
    rank: int


_UNSEEN = object()


class DomainTable:
    """Known domains and typo targets for one directory and one rule."""

    def __init__(self, targets: Iterable[str], known: Iterable[str]) -> None:
        self.targets: list[_Target] = []
        seen: set[str] = set()
        for rank, d in enumerate(targets):
            if d in seen:
                continue
            seen.add(d)
            head, name, suffix = split_domain(d)
            self.targets.append(_Target(d, head, name, suffix, rank))
        self.known = frozenset(known) | seen
        # "leedshospitalsnhs.uk", "bishopfamilycouk": a known domain with a dot lost
        self.dotless = {d.replace(".", ""): d for d in self.known}
        self.suffixes = frozenset(split_domain(d)[2] for d in self.known)
        self._answers: dict[str, str | None] = {}
        self.by_name: dict[str, list[_Target]] = {}
        for t in self.targets:
            self.by_name.setdefault(t.name, []).append(t)
        self.index = DeletionIndex.build(
            [t.name for t in self.targets],
            [0] * len(self.targets),
            list(range(len(self.targets))),
            k=2,
        )

    @classmethod
    def for_directory(
        cls,
        directory: Directory,
        *,
        providers: Iterable[str],
        real_domains: Iterable[str],
        min_support: int,
    ) -> DomainTable:
        popular = [
            d
            for d, (count, pro) in sorted(directory.domains.items(), key=lambda kv: -kv[1][0])
            if count >= min_support or pro > 0
        ]
        return cls([*providers, *popular], [*real_domains, *directory.domains])

    def suggest(self, domain: str) -> str | None:
        """The domain meant, or None if `domain` is known or no target is near.

        Answers for unknown domains are remembered (a bounded few thousand):
        the same slips recur, and working one out costs a two-edit lookup.
        """
        d = domain.lower()
        if d in self.known:
            return None
        known = self._answers.get(d, _UNSEEN)  # one lookup: other threads may clear it
        if known is not _UNSEEN:
            return known if isinstance(known, str) else None
        answer = self._suggest(d)
        if len(self._answers) >= 4096:
            self._answers.clear()
        self._answers[d] = answer
        return answer

    def _suggest(self, d: str) -> str | None:
        stripped = d.strip(_JUNK)
        if stripped != d and stripped in self.known:
            return stripped
        d = stripped
        # "gmail.com.com", "nhs.net.uk": a known domain with a suffix repeated or added.
        labels = d.split(".")
        for cut in (1, 2):
            if len(labels) > cut + 1:
                head = ".".join(labels[:-cut])
                if head in self.known and any(t.domain == head for t in self.targets):
                    return head
        lost_dot = self.dotless.get(d.replace(".", ""))
        if lost_dot is not None and lost_dot != d:
            return lost_dot
        if "." not in d:
            return self._without_dot(d)
        head, name, suffix = split_domain(d)
        best: tuple[int, int, str] | None = None
        for j in self.index.candidates(name, 0):
            t = self.targets[j]
            if t.head != head:
                continue
            nd = OSA.distance(name, t.name, score_cutoff=2)
            if nd > _name_slips(t.name) or (nd and len(name) < 2):
                continue
            sd = OSA.distance(suffix, t.suffix)
            allowed = 1 if suffix in self.suffixes else 2
            if sd > allowed and not (nd == 0 and t.name in _BRANDS):
                continue
            if nd + sd == 0:
                continue
            score = (nd + min(sd, 3), t.rank, t.domain)
            if best is None or score < best:
                best = score
        return best[2] if best else None

    def _without_dot(self, d: str) -> str | None:
        """ "gmail" -> gmail.com; "yahoocom" -> yahoo.com."""
        if d in self.by_name:
            return self.by_name[d][0].domain
        for t in self.targets:
            if d == t.name + t.suffix.replace(".", ""):
                return t.domain
        return None
