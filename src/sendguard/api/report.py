"""The near-miss report: what was held, why, from whom, and what became of it.

Every hold is a near miss that a person looked at (or still has to). The
report counts holds by finding code, by sender, by outcome and by ISO week;
a hold with several codes counts once under each of its codes. Outcomes:

    open       held, escalated, failed (waiting for a person)
    released   released, or being sent on (releasing, pending a retry)
    cancelled  cancelled or recalled: the send was stopped
    expired    nobody decided in time

The chart (holds per ISO week, stacked by outcome) is computed here as plain
geometry and drawn as inline SVG by the template: no JavaScript. CSV
exports quote cells that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from sendguard.store.models import HoldStatus, HoldSummary

__all__ = [
    "OUTCOMES",
    "Chart",
    "NearMissReport",
    "Tally",
    "build_report",
    "csv_text",
    "held_csv",
    "outcome",
    "report_csv",
    "week_chart",
]

OUTCOMES = ("open", "released", "cancelled", "expired")
OUTCOME_COLOURS = {
    "open": "#d98b00",
    "released": "#2b7a3d",
    "cancelled": "#b3261e",
    "expired": "#6b6b6b",
}
_OUTCOME = {
    HoldStatus.HELD: "open",
    HoldStatus.ESCALATED: "open",
    HoldStatus.FAILED: "open",
    HoldStatus.RELEASED: "released",
    HoldStatus.RELEASING: "released",
    HoldStatus.PENDING: "released",
    HoldStatus.CANCELLED: "cancelled",
    HoldStatus.RECALLED: "cancelled",
    HoldStatus.EXPIRED: "expired",
}


def outcome(status: HoldStatus) -> str:
    return _OUTCOME[status]


def iso_week(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(kw_only=True, slots=True)
class Tally:
    """Holds, and how many of them ended each way."""

    holds: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, s: HoldSummary) -> None:
        self.holds += 1
        self.outcomes[outcome(s.status)] += 1

    def row(self) -> list[int]:
        return [self.holds, *(self.outcomes[o] for o in OUTCOMES)]


@dataclass(kw_only=True, slots=True)
class NearMissReport:
    total: Tally
    by_code: list[tuple[str, Tally]]
    by_sender: list[tuple[str, Tally]]
    by_week: list[tuple[str, Tally]]
    by_reason: list[tuple[str, int]]
    """Cancellation reasons: `wrong-recipient` and the like are the
    confirmed near misses."""


def build_report(holds: Iterable[HoldSummary]) -> NearMissReport:
    total = Tally()
    codes: dict[str, Tally] = defaultdict(Tally)
    senders: dict[str, Tally] = defaultdict(Tally)
    weeks: dict[date, Tally] = defaultdict(Tally)
    reasons: Counter[str] = Counter()
    for s in holds:
        total.add(s)
        for code in s.codes or ("(none)",):
            codes[code].add(s)
        senders[s.mail_from or "<>"].add(s)
        day = s.created_at.date()
        weeks[day - timedelta(days=day.weekday())].add(s)
        if outcome(s.status) == "cancelled":
            reasons[s.reason or "(none)"] += 1
    by_week: list[tuple[str, Tally]] = []
    if weeks:  # every week from the first to the last, empty ones too
        monday, last = min(weeks), max(weeks)
        while monday <= last:
            by_week.append((iso_week(monday), weeks.get(monday) or Tally()))
            monday += timedelta(days=7)

    def ranked(d: dict[str, Tally]) -> list[tuple[str, Tally]]:
        return sorted(d.items(), key=lambda kv: (-kv[1].holds, kv[0]))

    return NearMissReport(
        total=total,
        by_code=ranked(codes),
        by_sender=ranked(senders),
        by_week=by_week,
        by_reason=sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
    )


# -- chart -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class Segment:
    y: float
    height: float
    outcome: str
    colour: str
    count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Bar:
    x: float
    width: float
    label: str
    total: int
    segments: list[Segment]
    show_label: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: list[Bar]
    ticks: list[Tick]
    legend: list[tuple[str, str]]
    summary: str
    """Text for screen readers (aria-label)."""


def _nice_max(n: int) -> int:
    """A round axis maximum at or above n."""
    if n <= 5:
        return max(n, 1)
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= n:
                return m * step
        step *= 10


def week_chart(weeks: Sequence[tuple[str, Tally]], *, width: int = 720, height: int = 260) -> Chart:
    """Bars of holds per ISO week, stacked by outcome."""
    left, top, right, bottom = 44, 12, 12, 44
    pw, ph = width - left - right, height - top - bottom
    top_value = _nice_max(max((t.holds for _, t in weeks), default=0))
    slot = pw / max(1, len(weeks))
    bar_w = max(2.0, min(48.0, slot * 0.7))
    every = max(1, -(-len(weeks) // 12))  # at most ~12 week labels
    bars = []
    for i, (label, tally) in enumerate(weeks):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(top + ph)
        segments = []
        for o in OUTCOMES:
            n = tally.outcomes[o]
            if not n:
                continue
            h = ph * n / top_value
            y -= h
            segments.append(
                Segment(
                    y=round(y, 2), height=round(h, 2), outcome=o, colour=OUTCOME_COLOURS[o], count=n
                )
            )
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(bar_w, 2),
                label=label,
                total=tally.holds,
                segments=segments,
                show_label=i % every == 0,
            )
        )
    ticks = [
        Tick(y=round(top + ph - ph * v / top_value, 2), value=v)
        for v in sorted({0, top_value // 4, top_value // 2, 3 * top_value // 4, top_value})
    ]
    total = sum(t.holds for _, t in weeks)
    summary = f"Holds per ISO week, {len(weeks)} weeks, {total} holds, stacked by outcome"
    return Chart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_width=pw,
        plot_height=ph,
        bars=bars,
        ticks=ticks,
        legend=[(o, OUTCOME_COLOURS[o]) for o in OUTCOMES],
        summary=summary,
    )


# -- CSV ---------------------------------------------------------------------
def _cell(value: object) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_cell(v) for v in r])
    return out.getvalue()


HELD_COLUMNS = (
    "hold_id",
    "created_at",
    "kind",
    "status",
    "outcome",
    "sender",
    "held_recipients",
    "codes",
    "action",
    "requires_reviewer",
    "decided_by",
    "decided_at",
    "reason",
)


def held_csv(holds: Iterable[HoldSummary]) -> str:
    """The held list as CSV, one hold a row; lists joined with `;`."""
    return csv_text(
        HELD_COLUMNS,
        (
            [
                s.hold_id,
                s.created_at.isoformat(),
                s.kind.value,
                s.status.value,
                outcome(s.status),
                s.mail_from,
                ";".join(s.held_recipients),
                ";".join(s.codes),
                s.action,
                "yes" if s.requires_reviewer else "no",
                s.decided_by or "",
                s.decided_at.isoformat() if s.decided_at else "",
                s.reason or "",
            ]
            for s in holds
        ),
    )


REPORT_COLUMNS = ("dimension", "key", "holds", *OUTCOMES)


def report_csv(report: NearMissReport) -> str:
    """The report as CSV in long form: one row per (dimension, key)."""
    rows: list[list[object]] = [["total", "all", *report.total.row()]]
    for dim, items in (
        ("code", report.by_code),
        ("sender", report.by_sender),
        ("week", report.by_week),
    ):
        rows.extend([dim, key, *t.row()] for key, t in items)
    for o in OUTCOMES:
        rows.append(
            [
                "outcome",
                o,
                report.total.outcomes[o],
                *(report.total.outcomes[o] if o == x else 0 for x in OUTCOMES),
            ]
        )
    rows.extend(["cancel_reason", r, n, 0, 0, n, 0] for r, n in report.by_reason)
    return csv_text(REPORT_COLUMNS, rows)
