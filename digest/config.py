"""Configuration: settings and secrets from the environment; subscribers and sources from TOML.

Two layers, validated once at start-up:
- `Settings` (pydantic-settings): `DIGEST_*` variables, read from the environment or `.env`.
- `Config` (the `digest.toml` file): `[[subscribers]]` and `[[sources]]`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from digest.errors import ConfigError
from digest.models import Subscriber
from digest.schedule import WEEKDAYS
from digest.sources.arxiv import HUGGING_FACE, is_arxiv_category

PACKAGE_DIR = Path(str(resources.files("digest"))).resolve()
PROJECT_ROOT = PACKAGE_DIR.parent


def bundled(name: str) -> Path:
    """A file or folder shipped with paper-digest: `templates`, `examples`, `digest.example.toml`.

    A wheel carries them inside the package (setup.py copies them there, keeping their
    relative layout); a source checkout or an editable install has only the repository's
    top-level ones, which are then used, so editing them takes effect at once.
    """
    packaged = PACKAGE_DIR / name
    checkout = PROJECT_ROOT / name
    in_checkout = (PROJECT_ROOT / "pyproject.toml").is_file()
    return checkout if in_checkout and not packaged.exists() and checkout.exists() else packaged


EXAMPLE_CONFIG = bundled("digest.example.toml")
DEFAULT_TEMPLATES = bundled("templates")

_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class Settings(BaseSettings):
    """Machine settings; every field is `DIGEST_<NAME>` in the environment or `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where the seen-set and delivery ledger live. PostgreSQL when several workers share the work.
    database_url: str = "sqlite:///digest.db"
    # The subscribers and sources file; unset means ./digest.toml, else the bundled example.
    config: Path | None = None
    # How mail leaves: "auto" is smtp when smtp_host is set, else the outbox folder.
    mailer: Literal["auto", "smtp", "outbox"] = "auto"
    smtp_host: str | None = None
    smtp_port: int | None = None  # default: 587 (starttls), 465 (ssl), 25 (none)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    # Seconds to wait for each SMTP command's reply (connect, MAIL, RCPT, DATA, ...).
    smtp_timeout: float = Field(default=15.0, gt=0)
    # SMTP connections kept open and reused for many messages; also how many sends may be
    # in flight at once.
    smtp_pool_size: int = Field(default=4, ge=1, le=64)
    # The name given in EHLO; unset means the domain of DIGEST_FROM, else "localhost".
    smtp_local_hostname: str | None = None
    # At most this many messages per second over the whole pool, evenly spaced; 0: no limit.
    smtp_rate: float = Field(default=0.0, ge=0)
    # DKIM: with all three set, every message is signed (relaxed/relaxed, rsa-sha256) with
    # the PEM private key in dkim_key_file, published as <selector>._domainkey.<domain>.
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: Path | None = None
    # The From header of every digest.
    from_address: str = Field(
        default="paper-digest <digest@localhost>", validation_alias="DIGEST_FROM"
    )
    # Where .eml files go when no SMTP server is configured.
    outbox_dir: Path = Path("outbox")
    # Which ranker: "auto" (MiniLM ONNX, else the static table, else BM25), "onnx", "static",
    # "semantic" (the best available embedding route) or "lexical" (BM25 only).
    ranker: Literal["auto", "onnx", "static", "semantic", "lexical"] = "auto"
    # HTTP sources: seconds between two requests to one host, per-request timeout, retries.
    http_min_delay: float = Field(default=1.0, ge=0)
    http_timeout: float = Field(default=30.0, gt=0)
    http_retries: int = Field(default=3, ge=0, le=10)
    # A subscriber's first digest considers papers first seen in this many days.
    new_subscriber_days: int = Field(default=7, ge=0)
    # Schedule defaults for subscribers that set none: IANA zone and local "HH:MM".
    timezone: str = "UTC"
    send_at: str = "07:00"
    # The daemon: a send missed by less than this many hours (downtime) still goes out
    # once; an older one is skipped and its papers roll into the next digest.
    catch_up_grace: float = Field(default=6.0, ge=0)
    # The daemon reads the sources every this many minutes.
    fetch_interval: float = Field(default=30.0, gt=0)
    # A source failing for longer than this many hours is an outage: `digest check`
    # exits non-zero and the daemon logs a warning.
    source_alert_after: float = Field(default=24.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        check_timezone(value)
        return value

    @field_validator("send_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        parse_clock(value)
        return value

    # Delivery from the outbox: messages claimed per batch; how long a claim lasts before
    # another worker may take the message over (a worker that died); attempts before a
    # message fails for good, and the first retry delay (doubling, with jitter).
    delivery_batch: int = Field(default=64, ge=1, le=5000)
    delivery_lease: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_delay: float = Field(default=60.0, ge=0)
    # After this many temporary failures in a row (connection, timeout, 4xx) delivery
    # stops and the run reports an error storm: a dead server costs seconds, not hours.
    storm_limit: int = Field(default=10, ge=1)
    # A recipient whose server refused (5xx) this many digests in a row is suppressed.
    suppress_after: int = Field(default=3, ge=0)
    # List-Unsubscribe: a mailto address (default: the From address) and, when set, the
    # public https address of `digest serve`.
    unsubscribe_mailto: str | None = None
    public_url: str | None = None
    # A folder of templates searched before the bundled ones: override one file or all.
    templates_dir: Path | None = None
    # The sender's postal address or contact line, shown at the foot of every digest (bulk
    # mail rules such as CAN-SPAM ask for one), e.g. "Paper digest, 1 Main St, Springfield".
    postal_address: str | None = None

    # -- Subscribers in charge: signed links, `digest serve`, `digest bounces` -------------
    # Signs each subscriber's links (unsubscribe, more/less like this, their feed); without
    # it an email has no such links. A long random string; several separated by spaces
    # rotate keys: the first signs, every one still verifies.
    secret_key: SecretStr | None = None
    # Where `digest serve` listens; put it behind an https proxy at DIGEST_PUBLIC_URL.
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(default=8080, ge=0, le=65535)
    # Proxies trusted to name the client in X-Forwarded-For (comma-separated IPs, or *).
    serve_proxies: str = "127.0.0.1"
    # Requests a minute one client address may make to `digest serve`; a one-click
    # unsubscribe with a valid link is always honoured.
    serve_rate_limit: int = Field(default=30, ge=1)
    # Feedback links work this many days after the issue date of their digest.
    feedback_days: int = Field(default=90, ge=1)
    # Hard bounces (delivery-status notifications read by `digest bounces`) after which an
    # address is suppressed; 0: never.
    bounce_limit: int = Field(default=2, ge=0)

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(len(k) < 16 for k in value.get_secret_value().split()):
            raise ValueError("each key must be at least 16 characters (a long random string)")
        return value

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or _DEFAULT_PORTS[self.smtp_security]


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as 'Europe/Paris')"
        ) from None


def parse_clock(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day (HH:MM)") from None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with a one-line error naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "DIGEST_" + str(err["loc"][0]).upper() if err["loc"] else "DIGEST_*"
        if name == "DIGEST_FROM_ADDRESS":
            name = "DIGEST_FROM"
        raise ConfigError(
            f"environment: {name}: {str(err['msg']).removeprefix('Value error, ')}"
        ) from None


class _SubscriberModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: str
    name: str = ""
    topics: list[str] = []
    exclude: list[str] = []
    authors: list[str] = []
    like: list[str] = []
    categories: list[str] = []
    exclude_categories: list[str] = []
    popularity: float = Field(default=0.0, ge=0.0, le=1.0)
    max_papers: int = Field(default=10, ge=1, le=200)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    timezone: str | None = None
    send_at: str | None = None
    frequency: Literal["daily", "weekdays", "weekly"] = "daily"
    weekday: str = "monday"
    when_empty: Literal["skip", "trending"] = "skip"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    @field_validator("send_at")
    @classmethod
    def _clock_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, value: str) -> str:
        if value.strip().lower() not in WEEKDAYS:
            raise ValueError(f"weekday {value!r} is not one of {', '.join(WEEKDAYS)}")
        return value.strip().lower()

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"invalid email {value!r}: {exc}") from None

    @field_validator("categories", "exclude_categories")
    @classmethod
    def _arxiv_categories(cls, values: list[str]) -> list[str]:
        cleaned: list[str] = []
        for value in values:
            text = value.strip()
            if text != HUGGING_FACE and not is_arxiv_category(text):
                raise ValueError(
                    f"{value!r} is not an arXiv category (e.g. 'cs.CL', 'math.AG', "
                    f"'astro-ph.GA', 'hep-th', or '{HUGGING_FACE}')"
                )
            if text not in cleaned:
                cleaned.append(text)
        return cleaned

    @field_validator("topics", "exclude", "authors", "like")
    @classmethod
    def _clean_phrases(cls, values: list[str]) -> list[str]:
        cleaned = [" ".join(v.split()) for v in values]
        if any(not v for v in cleaned):
            raise ValueError("empty phrase")
        return cleaned


@dataclass(frozen=True, slots=True)
class Config:
    """The parsed config file."""

    path: Path
    subscribers: tuple[Subscriber, ...]
    sources: tuple[Mapping[str, object], ...]  # raw tables; the sources registry validates them
    is_example: bool = False

    @property
    def directory(self) -> Path:
        return self.path.parent

    def subscriber(self, email: str) -> Subscriber:
        wanted = email.strip().casefold()
        for sub in self.subscribers:
            if sub.email.casefold() == wanted:
                return sub
        raise ConfigError(f"{self.path}: no subscriber {email!r}")


def find_config(explicit: Path | None, settings: Settings) -> tuple[Path, bool]:
    """The config file to use and whether it is the bundled example."""
    chosen = explicit or settings.config
    if chosen is not None:
        if not chosen.is_file():
            raise ConfigError(f"{chosen}: config file not found")
        return chosen, chosen.resolve() == EXAMPLE_CONFIG
    local = Path("digest.toml")
    if local.is_file():
        return local, False
    return EXAMPLE_CONFIG, True


def load_config(path: Path, *, is_example: bool = False) -> Config:
    """Parse and validate a config file; any problem is one ConfigError naming file and key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"subscribers", "sources"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (expected subscribers, sources)")
    subscribers = _parse_subscribers(path, raw.get("subscribers", []))
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        raise ConfigError(f"{path}: sources: expected [[sources]] tables")
    return Config(path, subscribers, tuple(sources), is_example)


def subscriber_label(index: int, table: dict[str, Any]) -> str:
    """How an error names a `[[subscribers]]` table: `subscribers[2] (ada@example.org)`."""
    email = table.get("email")
    return f"subscribers[{index}]" + (f" ({email})" if isinstance(email, str) else "")


def _parse_subscribers(path: Path, tables: object) -> tuple[Subscriber, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: subscribers: expected [[subscribers]] tables")
    seen: dict[str, int] = {}
    result = []
    for index, table in enumerate(tables, start=1):
        label = subscriber_label(index, table)
        try:
            model = _SubscriberModel.model_validate(table)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {label}: {_describe(exc)}") from None
        key = model.email.casefold()
        if key in seen:
            raise ConfigError(
                f"{path}: {label}: duplicate subscriber {model.email} "
                f"(also subscribers[{seen[key]}])"
            )
        seen[key] = index
        result.append(
            Subscriber(
                email=model.email,
                name=model.name,
                topics=tuple(model.topics),
                exclude=tuple(model.exclude),
                authors=tuple(model.authors),
                like=tuple(model.like),
                categories=tuple(model.categories),
                exclude_categories=tuple(model.exclude_categories),
                popularity=model.popularity,
                max_papers=model.max_papers,
                min_score=model.min_score,
                timezone=model.timezone,
                send_at=model.send_at,
                frequency=model.frequency,
                weekday=WEEKDAYS.index(model.weekday),
                when_empty=model.when_empty,
            )
        )
    return tuple(result)


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(part) for part in err["loc"]) or "value"
    if err["type"] == "extra_forbidden":
        return f"unknown key {field!r}"
    if err["type"] == "missing":
        return f"{field}: required key is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}"
