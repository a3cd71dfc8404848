"""Quality of sendguard's verdicts on labelled sends over a dense synthetic directory.

    python -m bench.quality                       # 100 000 entries, 2 000 sends per kind
    python -m bench.quality --size 1000000        # a million entries
    python -m bench.quality --per-kind 500 --examples 5 --kinds email.own_typo fax.mobile

Prints recall (wrong sends held or rejected), the false-hold and false-warn
rates of correct sends, suggestion accuracy, a per-kind table with the
finding codes seen, and failing examples per kind to tune the engine with.
A measurement, never an assertion: it exits 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.generate import AS_OF, OUT_DIR, ensure_directory
from bench.sends import EXTRA_KINDS, KINDS, LabelledSend, make_sends, suggestion_matches
from sendguard import Guard, Verdict

__all__ = ["KindStats", "QualityReport", "main", "run_quality", "score"]

TARGETS = {"recall": 0.995, "false_hold": 0.002, "suggestion": 0.98}
CAUGHT = frozenset({"hold", "reject"})


@dataclass
class KindStats:
    kind: str
    label: str
    n: int = 0
    caught: int = 0  # hold or reject
    warned: int = 0
    suggestion_n: int = 0
    suggestion_ok: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)  # correct sends warned
    wrong_suggestions: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, k: int) -> float:
        return k / self.n if self.n else 0.0

    @property
    def caught_rate(self) -> float:
        return self.rate(self.caught)

    @property
    def warned_rate(self) -> float:
        return self.rate(self.warned)

    @property
    def suggestion_rate(self) -> float:
        return self.suggestion_ok / self.suggestion_n if self.suggestion_n else 0.0


@dataclass
class QualityReport:
    size: int
    entries: int
    sends: int
    seconds: float
    kinds: dict[str, KindStats]

    def _kinds(self, label: str, extra: bool) -> list[KindStats]:
        return [
            k
            for k in self.kinds.values()
            if k.label == label and (extra or k.kind not in EXTRA_KINDS)
        ]

    def _rate(self, label: str, attr: str, extra: bool = False) -> float:
        ks = self._kinds(label, extra)
        den = sum(k.n for k in ks)
        return sum(getattr(k, attr) for k in ks) / den if den else 0.0

    @property
    def recall(self) -> float:
        return self._rate("wrong", "caught")

    @property
    def false_hold(self) -> float:
        return self._rate("correct", "caught")

    @property
    def false_warn(self) -> float:
        return self._rate("correct", "warned")

    @property
    def insecure_warned(self) -> float:
        return self._rate("insecure", "warned")

    def suggestion_rate(self, extra: bool = False) -> float:
        ks = self._kinds("wrong", extra)
        den = sum(k.suggestion_n for k in ks)
        return sum(k.suggestion_ok for k in ks) / den if den else 0.0

    @property
    def suggestion(self) -> float:
        return self.suggestion_rate()

    def with_extra(self) -> dict[str, float]:
        """The headline rates over every kind, the extra ones included."""
        return {
            "recall": self._rate("wrong", "caught", True),
            "false_hold": self._rate("correct", "caught", True),
            "false_warn": self._rate("correct", "warned", True),
            "suggestion": self.suggestion_rate(True),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "entries": self.entries,
            "sends": self.sends,
            "seconds": round(self.seconds, 2),
            "recall": self.recall,
            "false_hold": self.false_hold,
            "false_warn": self.false_warn,
            "suggestion": self.suggestion,
            "insecure_warned": self.insecure_warned,
            "with_extra_kinds": self.with_extra(),
            "kinds": {
                k.kind: {
                    "label": k.label,
                    "extra": k.kind in EXTRA_KINDS,
                    "n": k.n,
                    "caught": k.caught_rate,
                    "warned": k.warned_rate,
                    "suggestion": k.suggestion_rate if k.suggestion_n else None,
                    "codes": dict(k.codes.most_common()),
                }
                for k in self.kinds.values()
            },
        }


def _finding_view(v: Verdict) -> list[str]:
    out = []
    for f in v.findings:
        s = f"{f.code}[{f.severity.value}->{f.action.value}]"
        if f.suggestion:
            s += f" suggests {f.suggestion!r}"
        out.append(s)
    return out


def _example(s: LabelledSend, v: Verdict) -> dict[str, Any]:
    args = {k: val for k, val in s.args.items() if val not in (None, "", [], ())}
    if "body" in args:
        args["body"] = " ".join(str(args["body"]).split())[:120]
    if "history" in args:
        hist = list(args["history"])
        near = [
            h for h in hist if any(h in f.message or h == f.suggestion for f in v.findings)
        ]  # the history entries the findings point at
        args["history"] = f"<{len(hist)} addresses{', including ' + near[0] if near else ''}>"
    return {
        "args": args,
        "note": s.note,
        "expected": s.expected,
        "action": v.action.value,
        "findings": _finding_view(v),
    }


def score(guard: Guard, sends: list[LabelledSend], keep_examples: int = 3) -> dict[str, KindStats]:
    """Run every send through the guard and tally per kind."""
    stats: dict[str, KindStats] = {}
    for s in sends:
        st = stats.get(s.kind)
        if st is None:
            st = stats[s.kind] = KindStats(s.kind, s.label)
        v = s.run(guard)
        action = v.action.value
        st.n += 1
        caught = action in CAUGHT
        st.caught += caught
        st.warned += action == "warn"
        codes = {f.code for f in v.findings}
        for code in codes:
            st.codes[code] += 1
        if s.expected is not None and s.label == "wrong":
            st.suggestion_n += 1
            ok = any(
                suggestion_matches(s.expect_type, f.suggestion, s.expected) for f in v.findings
            )
            st.suggestion_ok += ok
            if caught and not ok and len(st.wrong_suggestions) < keep_examples:
                st.wrong_suggestions.append(_example(s, v))
        if s.label == "wrong":
            failed = not caught
        elif s.label == "insecure":
            failed = action != "warn" or "email.insecure_domain" not in codes
        else:
            failed = caught
            if action == "warn" and len(st.warnings) < keep_examples:
                st.warnings.append(_example(s, v))
        if failed and len(st.failures) < keep_examples:
            st.failures.append(_example(s, v))
    return stats


def run_quality(
    size: int = 100_000,
    *,
    seed: int = 1,
    per_kind: int = 2000,
    kinds: list[str] | None = None,
    keep_examples: int = 3,
    out_dir: Path = OUT_DIR,
    quiet: bool = False,
) -> QualityReport:
    world, path = ensure_directory(size, seed, out_dir, quiet=quiet)
    t0 = time.perf_counter()
    guard = Guard.load(directory=path, as_of=AS_OF)
    if not quiet:
        print(f"loaded {path.name} in {time.perf_counter() - t0:.1f} s")
    sends = make_sends(world, per_kind, seed=seed, kinds=kinds)
    t0 = time.perf_counter()
    stats = score(guard, sends, keep_examples)
    seconds = time.perf_counter() - t0
    order = {k: i for i, k in enumerate(KINDS)}
    stats = dict(sorted(stats.items(), key=lambda kv: order.get(kv[0], 999)))
    return QualityReport(size, world.entries, len(sends), seconds, stats)


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


def print_report(r: QualityReport, examples: int = 3) -> None:
    print()
    print(
        f"sendguard quality: {r.entries:,} directory entries, {r.sends:,} labelled sends "
        f"({r.sends / r.seconds:,.0f} checks/s)"
    )
    print()
    t = TARGETS
    mark = {True: "ok", False: "MISSED"}
    print(
        f"  recall (wrong sends held or rejected)  {_pct(r.recall)}   target >= "
        f"{100 * t['recall']:.1f}%   {mark[r.recall >= t['recall']]}"
    )
    print(
        f"  false holds (correct sends held)       {_pct(r.false_hold)}   target <= "
        f"{100 * t['false_hold']:.1f}%   {mark[r.false_hold <= t['false_hold']]}"
    )
    print(f"  false warns (correct sends warned)     {_pct(r.false_warn)}")
    print(
        f"  right suggestion (of wrong sends)      {_pct(r.suggestion)}   target >= "
        f"{100 * t['suggestion']:.1f}%   {mark[r.suggestion >= t['suggestion']]}"
    )
    print(f"  insecure domain warned (expected warn) {_pct(r.insecure_warned)}")
    x = r.with_extra()
    print(
        f"  with the extra kinds (*): recall {_pct(x['recall'])}, false holds "
        f"{_pct(x['false_hold'])}, false warns {_pct(x['false_warn'])}, right suggestion "
        f"{_pct(x['suggestion'])}"
    )
    print()
    head = f"{'kind':30} {'label':8} {'n':>6} {'held':>8} {'warned':>8} {'suggestion':>16}  codes"
    print(head)
    print("-" * len(head) + "-" * 30)
    for k in r.kinds.values():
        sugg = (
            f"{k.suggestion_ok:>5}/{k.suggestion_n:<5} {100 * k.suggestion_rate:3.0f}%"
            if k.suggestion_n
            else ""
        )
        codes = ", ".join(f"{c} {100 * n / k.n:.0f}%" for c, n in k.codes.most_common(5))
        name = k.kind + (" *" if k.kind in EXTRA_KINDS else "")
        print(
            f"{name:30} {k.label:8} {k.n:>6} {_pct(k.caught_rate):>8} "
            f"{_pct(k.warned_rate):>8} {sugg:>16}  {codes}"
        )
    print("(*) extra kinds, beyond the requirements' list: outside the headline rates above")
    if examples <= 0:
        return
    print()
    print(
        "Failing examples (wrong sends not held; correct sends held, then warned; "
        "wrong suggestions)"
    )
    for k in r.kinds.values():
        if not k.failures and not k.wrong_suggestions and not k.warnings:
            continue
        print(f"\n== {k.kind} ({k.label})")
        for e in [*k.failures[:examples], *k.warnings[:examples]]:
            print(f"  [{e['action']}] {json.dumps(e['args'], ensure_ascii=False)}")
            if e["note"]:
                print(f"      note: {e['note']}")
            print(f"      findings: {e['findings'] or 'none'}")
        for e in k.wrong_suggestions[:examples]:
            print(f"  [{e['action']}, suggestion] expected {e['expected']!r}")
            print(f"      {json.dumps(e['args'], ensure_ascii=False)}")
            print(f"      findings: {e['findings']}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000, help="directory entries (1000000 for 1 M)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-kind", type=int, default=2000, help="labelled sends per kind")
    ap.add_argument("--examples", type=int, default=3, help="failing examples shown per kind")
    ap.add_argument("--kinds", nargs="*", help=f"only these kinds (of: {', '.join(KINDS)})")
    ap.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="where generated directories live")
    args = ap.parse_args(argv)
    report = run_quality(
        args.size,
        seed=args.seed,
        per_kind=args.per_kind,
        kinds=args.kinds,
        keep_examples=args.examples,
        out_dir=args.out,
    )
    print_report(report, args.examples)
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2))


if __name__ == "__main__":
    main()
