"""Reading the quarantine for people: filtered, paged lists and one hold in full.

The store's `list()` filters by status, kind and creation time; the other
filters (finding code, sender, an end date) and what a sender may see are
applied here, over the store's pages in batches. That is a scan of the
holds matching the store-side filters, fine for a quarantine of thousands
of holds; a store-side filter would serve millions.

`HoldView` is what the hold page and `GET /v1/held/{id}` show of a message:
its main headers, its text (decoded text parts; HTML parts reduced to
text; always escaped by the templates), attachment names, the findings
and, for fax and letter holds, the checked send itself.
"""

from __future__ import annotations

import email
import email.policy
import html.parser
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage, Message
from typing import Any

from sendguard.core.models import Finding
from sendguard.store.base import Store
from sendguard.store.models import HeldMessage, HoldKind, HoldStatus, HoldSummary

__all__ = [
    "HoldFilter",
    "HoldView",
    "Page",
    "hold_view",
    "page_holds",
    "parse_filter",
    "scan_holds",
]

BATCH = 500
MAX_TEXT = 50_000  # characters of each text part shown
MAX_PARTS = 20
SHOWN_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID")


@dataclass(frozen=True, kw_only=True, slots=True)
class HoldFilter:
    """What a list shows: each field None means any."""

    status: HoldStatus | None = None
    kind: HoldKind | None = None
    code: str | None = None
    """A finding code (`email.near_known`), or a prefix ending in `.` (`fax.`)."""
    sender: str | None = None
    """Part of the envelope sender, any case."""
    since: date | None = None
    until: date | None = None
    """Inclusive: holds created on this day count."""

    def since_dt(self) -> datetime | None:
        return None if self.since is None else datetime.combine(self.since, time.min, UTC)

    def until_dt(self) -> datetime | None:
        if self.until is None:
            return None
        return datetime.combine(self.until + timedelta(days=1), time.min, UTC)

    def matches(self, s: HoldSummary) -> bool:
        if self.code is not None:
            code = self.code
            if code.endswith("."):
                if not any(c.startswith(code) for c in s.codes):
                    return False
            elif code not in s.codes:
                return False
        if self.sender is not None and self.sender.lower() not in s.mail_from.lower():
            return False
        until = self.until_dt()
        return until is None or s.created_at < until

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for paging links and exports)."""
        out = {
            "status": self.status.value if self.status else "",
            "kind": self.kind.value if self.kind else "",
            "code": self.code or "",
            "sender": self.sender or "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in out.items() if v}


def _date(name: str, text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name}: expected a date as YYYY-MM-DD") from None


def parse_filter(params: Mapping[str, str | None]) -> HoldFilter:
    """A filter from query parameters; ValueError (naming the parameter) if
    one is not valid. Empty values mean no filter."""
    status = params.get("status") or None
    kind = params.get("kind") or None
    code = (params.get("code") or "").strip() or None
    sender = (params.get("sender") or "").strip() or None
    try:
        st = HoldStatus(status) if status else None
    except ValueError:
        raise ValueError(f"status: one of {', '.join(s.value for s in HoldStatus)}") from None
    try:
        kd = HoldKind(kind) if kind else None
    except ValueError:
        raise ValueError(f"kind: one of {', '.join(k.value for k in HoldKind)}") from None
    if code is not None and (len(code) > 100 or not all(c.isalnum() or c in "._-" for c in code)):
        raise ValueError("code: a finding code such as email.near_known (or a prefix: email.)")
    if sender is not None and len(sender) > 320:
        raise ValueError("sender: at most 320 characters")
    f = HoldFilter(
        status=st,
        kind=kd,
        code=code,
        sender=sender,
        since=_date("since", params.get("since")),
        until=_date("until", params.get("until")),
    )
    if f.since and f.until and f.until < f.since:
        raise ValueError("until: before since")
    return f


def scan_holds(
    store: Store, f: HoldFilter, visible: Callable[[HoldSummary], bool] = lambda _: True
) -> Iterator[HoldSummary]:
    """Every hold matching `f` that `visible` allows, newest first."""
    offset = 0
    seen: set[str] = set()
    since = f.since_dt()
    until = f.until_dt()
    while True:
        batch = store.list(status=f.status, since=since, kind=f.kind, limit=BATCH, offset=offset)
        for s in batch:
            if s.hold_id in seen or (until is not None and s.created_at >= until):
                continue
            seen.add(s.hold_id)  # a hold added meanwhile shifts the pages: no repeats
            if f.matches(s) and visible(s):
                yield s
        if len(batch) < BATCH:
            return
        offset += BATCH


@dataclass(frozen=True, kw_only=True, slots=True)
class Page:
    items: list[HoldSummary]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def page_holds(
    store: Store,
    f: HoldFilter,
    visible: Callable[[HoldSummary], bool],
    page: int,
    size: int,
) -> Page:
    """One page (1-based) of the matching holds, and how many there are."""
    page = max(1, page)
    start = (page - 1) * size
    items: list[HoldSummary] = []
    total = 0
    for s in scan_holds(store, f, visible):
        if start <= total < start + size:
            items.append(s)
        total += 1
    return Page(items=items, total=total, page=page, size=size)


# -- one hold ----------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class TextPart:
    content_type: str
    text: str
    truncated: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class HoldView:
    """A hold as people see it (never logged)."""

    hold: HeldMessage
    headers: list[tuple[str, str]] = field(default_factory=list)
    texts: list[TextPart] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    payload: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problem: str | None = None


class _HtmlText(html.parser.HTMLParser):
    """The text of an HTML part: tags dropped, scripts and styles skipped."""

    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BREAK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    p = _HtmlText()
    p.feed(markup)
    p.close()
    lines = (" ".join(line.split()) for line in "".join(p.out).splitlines())
    return "\n".join(line for line in lines if line)


def _part_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, ValueError, AssertionError):
        content = None
    if isinstance(content, str):
        return content
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _header(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # a header the parser cannot make sense of: show it raw
        raw = [v for n, v in msg.raw_items() if n.lower() == name.lower()]
        return " ".join(str(raw[0]).split()) if raw else None
    return None if value is None else str(value)


def _message_parts(
    raw: bytes,
) -> tuple[list[tuple[str, str]], list[TextPart], list[Attachment], str | None]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers = [(n, v) for n in SHOWN_HEADERS if (v := _header(msg, n)) is not None]
    texts: list[TextPart] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if filename or disposition == "attachment" or not ctype.startswith("text/"):
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else 0
            attachments.append(
                Attachment(filename=filename or "(unnamed)", content_type=ctype, size=size)
            )
            continue
        if len(texts) >= MAX_PARTS:
            continue
        text = _part_text(part)
        if ctype == "text/html":
            text = html_to_text(text)
        texts.append(
            TextPart(content_type=ctype, text=text[:MAX_TEXT], truncated=len(text) > MAX_TEXT)
        )
    problem = None
    if msg.defects:
        problem = "the message has structural defects; what could be read is shown"
    return headers, texts, attachments, problem


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out.extend(_flatten(v, f"{prefix}{k}" if not prefix else f"{prefix}.{k}"))
        return out
    if isinstance(value, list):
        if all(not isinstance(v, Mapping | list) for v in value):
            return [(prefix, "\n".join(str(v) for v in value))]
        out = []
        for i, v in enumerate(value):
            out.extend(_flatten(v, f"{prefix}[{i}]"))
        return out
    return [(prefix, "" if value is None else str(value))]


def hold_view(hold: HeldMessage) -> HoldView:
    """What the hold page shows of `hold`. A message that cannot be read in
    full shows what could be read, and says so."""
    findings = list(hold.verdict.findings)
    if hold.kind is not HoldKind.EMAIL:
        return HoldView(
            hold=hold,
            payload=_flatten(hold.payload) if hold.payload else [],
            findings=findings,
            problem="the content was purged" if hold.purged_at else None,
        )
    if not hold.message:
        return HoldView(
            hold=hold,
            findings=findings,
            problem="the message was purged" if hold.purged_at else "the message is empty",
        )
    try:
        headers, texts, attachments, problem = _message_parts(hold.message)
    except Exception:  # a message the parser chokes on still gets a page
        return HoldView(hold=hold, findings=findings, problem="the message could not be read")
    return HoldView(
        hold=hold,
        headers=headers,
        texts=texts,
        attachments=attachments,
        findings=findings,
        problem=problem,
    )
