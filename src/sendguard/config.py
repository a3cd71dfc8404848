"""The sendguard configuration file: TOML, validated, with environment overrides.

`SENDGUARD_<SECTION>__<KEY>=value` overrides `[section] key` (values that
look like JSON lists or objects are parsed as JSON). Relative paths are
relative to the configuration file's folder.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.functional_validators import AfterValidator, BeforeValidator

__all__ = [
    "ApiConfig",
    "Config",
    "ConfigError",
    "ConfigPath",
    "DirectoryConfig",
    "RelayConfig",
    "ReviewConfig",
    "RulesConfig",
    "StoreConfig",
    "WebConfig",
    "load_config",
    "parse_host_port",
]


class ConfigError(ValueError):
    """The configuration is invalid; the message names file and field."""


def _resolve(p: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return p if p.is_absolute() or base is None else (Path(base) / p)


ConfigPath = Annotated[Path, AfterValidator(_resolve)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DirectoryConfig(_Section):
    sources: list[ConfigPath] = Field(default_factory=list)
    """FHIR JSON/NDJSON and CSV files or folders that make up the directory."""
    snapshot: ConfigPath | None = None
    """Compiled directory file: rebuilt when the sources change, mapped in a
    second otherwise (recommended above ~100 000 entries)."""
    region: str = "GB"
    """Country whose dialling rules apply to numbers written without +CC."""


class RulesConfig(_Section):
    defaults: list[ConfigPath] | None = None
    """Folders or files of default rules; unset means the shipped rules."""
    local: list[ConfigPath] = Field(default_factory=list)
    """Folders or files of local rules, merged over the defaults by rule name."""


def parse_host_port(text: str) -> tuple[str, int]:
    """`host:port` or `[v6 address]:port` as (host, port); ValueError if malformed."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port (or [address]:port for IPv6), got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = str(ipaddress.IPv6Address(host[1:-1]))
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, e.g. [::1]:10025, not {text!r}")
    return host, int(port)


def _check_host_port(text: str) -> str:
    parse_host_port(text)
    return text.strip()


HostPort = Annotated[str, AfterValidator(_check_host_port)]


def _resolve_store_url(url: str, info: ValidationInfo) -> str:
    """`sqlite:///relative/path` is relative to the config file's folder;
    `sqlite:////absolute/path` and `sqlite:///:memory:` are taken as they are."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"expected a URL such as sqlite:///var/sendguard.db, got {url!r}")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ValueError("a SQLite URL is sqlite:///relative/path or sqlite:////absolute/path")
        path = rest[1:]
        if path == ":memory:":
            return url
        base = (info.context or {}).get("base_dir")
        resolved = Path(path) if Path(path).is_absolute() or base is None else Path(base) / path
        return f"sqlite:///{resolved}"
    if scheme in ("postgresql", "postgres"):
        return url
    raise ValueError(f"unknown store {scheme!r}: use sqlite:///PATH (postgresql:// is planned)")


StoreUrl = Annotated[str, AfterValidator(_resolve_store_url)]


class RelayConfig(_Section):
    """`sendguard relay`: the SMTP relay mail servers send outbound mail through."""

    listen: HostPort = "127.0.0.1:10025"
    """Address and port the relay listens on."""
    hostname: str = ""
    """Name in the greeting, in EHLO to the next hop and in notifications;
    empty means the machine's fully qualified name."""
    client_networks: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [
            ipaddress.ip_network("127.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
        ]
    )
    """Clients that may send through the relay without authenticating."""
    next_hop: HostPort = "127.0.0.1:10026"
    """Where allowed mail and hold notifications go (Postfix's reinjection port, a smarthost)."""
    next_hop_tls: Literal["none", "starttls", "tls"] = "none"
    """TLS to the next hop: none, STARTTLS (required), or TLS from the first byte."""
    next_hop_username: str | None = None
    next_hop_password: SecretStr | None = None
    """Log in to the next hop with these (only over TLS)."""
    next_hop_connections: int = Field(default=20, ge=1, le=1000)
    """Connections to the next hop kept open and reused."""
    next_hop_timeout: float = Field(default=60.0, gt=0)
    """Seconds to wait for each reply of the next hop."""
    mixed_policy: Literal["hold-all", "split"] = "hold-all"
    """A message with some suspect recipients: hold the whole of it, or
    forward to the clean recipients and hold only for the rest."""
    max_message_size: int = Field(default=25 * 1024 * 1024, ge=1024)
    """Largest message accepted, in bytes (announced as SIZE)."""
    max_recipients: int = Field(default=1000, ge=1)
    """Recipients per message; more get 452 4.5.3 and the client sends them later."""
    max_connections: int = Field(default=200, ge=1)
    """Simultaneous client connections; more get 421 4.7.0."""
    max_line_length: int = Field(default=65536, ge=1001)
    """Longest line accepted (RFC 5321 says 1000; longer lines pass on unchanged)."""
    timeout: float = Field(default=300.0, gt=0)
    """Seconds a client may stay silent before the connection is closed."""
    check_timeout: float = Field(default=10.0, gt=0)
    """Seconds a check may take; a message not checked in time is held (fail safe)."""
    check_workers: int = Field(default=1, ge=0, le=64)
    """Processes that parse and check messages beside the SMTP process;
    0 checks in threads of the relay process itself."""
    smtputf8: bool = True
    """Offer SMTPUTF8 (internationalised addresses)."""
    tls_cert: ConfigPath | None = None
    tls_key: ConfigPath | None = None
    """Certificate chain and key (PEM): offer STARTTLS to clients."""
    require_starttls: bool = False
    """Refuse mail until the client has started TLS (needs tls_cert)."""
    auth_users: ConfigPath | None = None
    """File of `user:hash` lines (`sendguard relay --hash-password USER`):
    these clients may send from anywhere after STARTTLS and AUTH."""
    notify: bool = True
    """Tell the sender when a message is held (never for the null sender)."""
    notify_from: str = "postmaster@localhost"
    """Sender address of hold notifications."""
    notify_attempts: int = Field(default=5, ge=1)
    """Attempts to deliver a hold notification before giving up."""
    notify_retry: float = Field(default=300.0, gt=0)
    """Seconds between notification attempts (doubled after each failure)."""
    shutdown_timeout: float = Field(default=60.0, ge=0)
    """On SIGTERM, seconds to let messages in flight finish before exiting."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.require_starttls and self.tls_cert is None:
            raise ValueError("require_starttls needs tls_cert and tls_key")
        if self.auth_users is not None and self.tls_cert is None:
            raise ValueError("auth_users needs tls_cert and tls_key: AUTH is only offered over TLS")
        if (self.next_hop_username is None) != (self.next_hop_password is None):
            raise ValueError("next_hop_username and next_hop_password go together")
        if self.next_hop_username is not None and self.next_hop_tls == "none":
            raise ValueError("next_hop_username needs next_hop_tls = starttls or tls")
        return self


class StoreConfig(_Section):
    """The quarantine that held messages are kept in."""

    url: StoreUrl = Field(default="sqlite:///var/sendguard.db", validate_default=True)
    """sqlite:///relative/to/config/folder.db or sqlite:////absolute/path.db."""


def _callback_networks(value: Any) -> Any:
    """Name the network meant when host bits are set: "10.1.2.3/8" is a slip
    for 10.0.0.0/8 or for one address, and guessing either would widen or
    narrow where the server may send callbacks."""
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, str):
            continue
        try:
            ipaddress.ip_network(item)
        except ValueError:
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP network such as 10.20.0.0/16") from None
            one = f"{item.partition('/')[0]}/{net.max_prefixlen}"
            raise ValueError(
                f"{item!r} has host bits set: write {net} for the network or {one} for one address"
            ) from None
    return value


CallbackNetworks = Annotated[list[IPvAnyNetwork], BeforeValidator(_callback_networks)]


class ApiConfig(_Section):
    """`sendguard serve`: the HTTP check API for practice systems."""

    listen: HostPort = "127.0.0.1:8025"
    """Address and port the HTTP API listens on (loopback unless changed)."""
    tokens_file: ConfigPath = Field(default=Path("api-tokens.toml"), validate_default=True)
    """API tokens, stored as SHA-256 hashes (`sendguard api-token add|list|revoke`)."""
    max_body: int = Field(default=256 * 1024, ge=1024)
    """Largest request body accepted, in bytes; larger ones get 413 unread."""
    watch: bool = False
    """Reload the directory and rules when their files change."""
    watch_interval: float = Field(default=5.0, gt=0)
    """Seconds between looks at the files' modification times (with `watch`)."""
    relay: bool = False
    """Also run the SMTP relay in the same process, sharing one directory."""
    callback_networks: CallbackNetworks = Field(default_factory=list)
    """Networks decision callbacks (`callback_url`) may go to: every address
    the URL's host resolves to must be in one. Empty: no callbacks."""


DEFAULT_RELEASE_REASONS = ("confirmed-correct", "recipient-verified", "other")
DEFAULT_CANCEL_REASONS = ("wrong-recipient", "wrong-patient", "duplicate", "not-needed", "other")


def _reason_codes(codes: list[str]) -> list[str]:
    for code in codes:
        if not code or len(code) > 40 or not all(c.isalnum() or c == "-" for c in code):
            raise ValueError(f"a reason code is 1-40 letters, digits or '-', not {code!r}")
    if len(set(codes)) != len(codes) or not codes:
        raise ValueError("reason codes must be a non-empty list without repeats")
    return codes


ReasonCodes = Annotated[list[str], AfterValidator(_reason_codes)]


class WebConfig(_Section):
    """The reviewer web UI that `sendguard serve` serves beside the API."""

    session_secret_file: ConfigPath = Field(default=Path("web-session.key"), validate_default=True)
    """Key that signs session cookies and form tokens; created (random,
    owner-only) when missing. Nodes behind one address share the same file."""
    session_idle_timeout: float = Field(default=1800.0, gt=0)
    """Seconds without a request after which a session ends."""
    session_max_age: float = Field(default=43200.0, gt=0)
    """Seconds after signing in after which a session ends regardless."""
    secure_cookies: bool = False
    """Send cookies only over HTTPS (set this whenever the UI is served over TLS)."""
    trusted_user_header: str | None = None
    """Header in which a reverse proxy that has authenticated the user names
    them (e.g. X-Remote-User); honoured only from `trusted_proxies`."""
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    """Addresses of the reverse proxies whose `trusted_user_header` is believed."""
    login_max_failures: int = Field(default=5, ge=1)
    """Failed sign-ins per user name before more are refused."""
    login_max_failures_per_address: int = Field(default=20, ge=1)
    """Failed sign-ins per client address (a whole practice may share one)."""
    login_lockout: float = Field(default=900.0, gt=0)
    """Seconds over which failed sign-ins are counted (and refused once too many)."""
    sender_addresses: dict[str, list[str]] = Field(default_factory=dict)
    """Per sender user name, the mail addresses (MAIL FROM) whose holds are
    theirs, besides the user name itself."""
    release_reasons: ReasonCodes = Field(default_factory=lambda: list(DEFAULT_RELEASE_REASONS))
    """Reason codes offered (and accepted) when a hold is released."""
    cancel_reasons: ReasonCodes = Field(default_factory=lambda: list(DEFAULT_CANCEL_REASONS))
    """Reason codes offered (and accepted) when a hold is cancelled."""
    page_size: int = Field(default=50, ge=5, le=500)
    """Rows per page in the held list and the audit view."""

    @model_validator(mode="after")
    def _proxy(self) -> Self:
        if self.trusted_user_header is not None and not self.trusted_proxies:
            raise ValueError("trusted_user_header needs trusted_proxies (the proxies' addresses)")
        return self


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: Any) -> Any:
    """A duration as seconds (a number) or text with a unit: 90s, 15m, 24h, 30d, 2w."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 15m, 24h, 30d or seconds")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m is None:
            raise ValueError(f"expected a duration such as 90s, 15m, 24h or 30d, not {value!r}")
        return timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("a duration must be positive")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]


def _base_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", url):
        raise ValueError(
            f"expected an http(s) URL such as https://sendguard.example.nhs.uk, not {url!r}"
        )
    return url.rstrip("/")


class ReviewConfig(_Section):
    """The review workflow: sender links, release retries, expiry, retention
    (see docs/review.md). Durations are seconds or text such as 15m, 24h, 30d."""

    base_url: Annotated[str | None, AfterValidator(_base_url)] = None
    """Address of the review web UI as a sender's mail client reaches it;
    hold notices carry confirm/cancel links only when it is set."""
    secret_file: ConfigPath = Field(default=Path("review-secret.key"), validate_default=True)
    """Key that signs the links (one per line: the first signs, all verify);
    created (random, owner-only) when missing. Every node needs the same file."""
    token_ttl: Duration = timedelta(hours=24)
    """How long a link in a hold notice can be used (once)."""
    release_attempts: int = Field(default=5, ge=1, le=100)
    """Attempts to deliver a released message (and a decision callback)."""
    release_backoff: Duration = timedelta(seconds=60)
    """Wait before the second attempt; doubled after each further failure."""
    release_lease: Duration = timedelta(minutes=10)
    """How long one node owns a release before another may take it over;
    keep it well above the next hop's timeout."""
    retention: Duration = timedelta(days=30)
    """How long cancelled, expired and recalled messages are kept before
    their content is purged (the record and the audit log stay)."""
    expire_after: Duration = timedelta(days=7)
    """Holds nobody decided on expire this long after they were made."""
    expire_to: Literal["cancel", "escalate"] = "cancel"
    """What an expired hold becomes: cancelled (never sent), or escalated to
    a reviewer for one more expire_after, then cancelled. Never released."""
    poll_interval: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between passes of the background jobs (retries, delayed
    releases, expiry, purging, callbacks)."""
    callback_timeout: float = Field(default=5.0, gt=0, le=60)
    """Seconds one decision callback (HTTP POST to a practice system) may take."""


class Config(_Section):
    directory: DirectoryConfig = Field(default_factory=DirectoryConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _every_section(cls, data: Any) -> Any:
        """Validate a missing section as an empty one, so that its default
        paths are relative to the file too (a default_factory has no context)."""
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                kind = field.annotation
                if isinstance(kind, type) and issubclass(kind, _Section):
                    data.setdefault(name, {})
        return data


def _env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for key, value in environ.items():
        if not key.startswith("SENDGUARD_") or "__" not in key:
            continue
        path = key[len("SENDGUARD_") :].lower().split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            v: Any = value
            if value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    v = json.loads(value)
            node[path[-1]] = v


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read a configuration file (or none: all defaults) plus the environment."""
    data: dict[str, Any] = {}
    base = None
    name = "(defaults)"
    if path is not None:
        p = Path(path)
        name = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{name}: not valid TOML: {exc}") from None
        base = p.resolve().parent
    _env_overrides(data, os.environ if environ is None else environ)
    try:
        cfg = Config.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        lines = [f"{name}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    cfg.source = Path(path) if path is not None else None
    return cfg
