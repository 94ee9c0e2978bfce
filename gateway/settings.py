"""Typed settings loaded from config.yaml, with command-line overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final, Literal
from uuid import UUID

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.settings_engines import BrokerSettings, ClusterSettings, CorrelationSettings
from gateway.settings_security import SecuritySettings as SecuritySettings  # re-exported
from gateway.settings_security import TlsSettings as TlsSettings  # re-exported
from gateway.wire.channel import ChannelError, validate_pattern

__all__ = ["BrokerSettings", "ClusterSettings", "ConfigError", "CorrelationSettings", "Settings", "load_settings"]


class _Strict(BaseModel):
    """Base for settings sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    """Where the HTTP server listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    shutdown_timeout_s: float = Field(default=5.0, ge=0)
    # An idle keep-alive connection (no request in progress) is closed after this many seconds; 0: never.
    keepalive_timeout_s: float = Field(default=75.0, ge=0)
    # Connections the kernel completes before the gateway accepts them (listen backlog; the kernel caps it at
    # net.core.somaxconn). aiohttp's 128 overflows when ~1,000 long-polling clients connect within a second
    # (a restart, a publish burst opening second connections): the overflow waits for SYN-ACK retries
    # (1, 3, 7, 15 s) or is reset.
    backlog: int = Field(default=4096, ge=1, le=65535)
    # auto: uvloop when installed (it is a dependency on Linux and macOS), else asyncio's own loop.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    tls: TlsSettings = TlsSettings()


# An origin as browsers send it: scheme://host[:port], nothing after (a trailing "/" would never match).
_ORIGIN: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+")

OverflowPolicy = Literal["drop_oldest", "drop_newest", "disconnect"]


class BayeuxSettings(_Strict):
    """The Bayeux/CometD endpoint and its limits (names follow the CometD server options)."""

    path: str = "/api/v2/notifications"
    timeout_ms: int = Field(default=30000, ge=0)
    interval_ms: int = Field(default=0, ge=0)
    max_interval_ms: int = Field(default=10000, gt=0)
    max_client_timeout_ms: int = Field(default=60000, ge=0)
    max_queue: int = Field(default=1000, gt=0)
    queue_overflow: OverflowPolicy = "drop_oldest"
    client_publish: tuple[str, ...] = ()
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_messages_per_request: int = Field(default=100, gt=0)
    require_browser_cookie: bool = False
    browser_cookie_name: str = "BAYEUX_BROWSER"
    browser_cookie_secure: bool = False
    browser_cookie_samesite: Literal["", "Strict", "Lax", "None"] = ""
    max_sessions_per_browser: int = Field(default=1, ge=-1)
    multi_session_interval_ms: int = Field(default=2000)
    # Browser origins (scheme://host[:port]) allowed besides the gateway's own; empty: same-origin only.
    allowed_origins: tuple[str, ...] = ()
    # True: every Origin is allowed (CORS with credentials echoed to it, WebSocket upgrades from it).
    allow_any_origin: bool = False
    transports: tuple[Literal["websocket", "long-polling", "callback-polling"], ...] = (
        "websocket",
        "long-polling",
        "callback-polling",
    )
    duplicate_connect_http_status: int = Field(default=500, ge=400, le=599)
    sweep_period_ms: int = Field(default=997, gt=0)
    ack_extension: bool = True
    timesync_extension: bool = True
    # WebSocket PING every this many seconds (aiohttp's heartbeat: no PONG within half of it closes the socket);
    # null = none. `websocket_heartbeat_s` is its former name.
    ws_ping_interval_s: float | None = Field(
        default=25.0, gt=0, validation_alias=AliasChoices("ws_ping_interval_s", "websocket_heartbeat_s")
    )
    # A WebSocket whose send buffer does not drain within this many seconds (its reader stopped) is cut.
    ws_drain_timeout_s: float = Field(default=30.0, gt=0)
    # Serve plain long-polling POSTs on the lean HTTP path (transport/lean.py); false: aiohttp serves all.
    lean_long_polling: bool = True

    @model_validator(mode="after")
    def _check(self) -> BayeuxSettings:
        if not self.path.startswith("/") or (self.path.endswith("/") and self.path != "/"):
            raise ValueError("bayeux.path must start with '/' and not end with '/'")
        for pattern in self.client_publish:
            try:
                validate_pattern(pattern)
            except ChannelError as exc:
                raise ValueError(f"bayeux.client_publish: {pattern!r}: {exc}") from None
        if not self.transports:
            raise ValueError("bayeux.transports must name at least one transport")
        for origin in self.allowed_origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"bayeux.allowed_origins: {origin!r} is not an origin (scheme://host[:port], no path or '/')"
                )
        return self


Role = Literal["agent", "supervisor", "service"]


class UserSettings(_Strict):
    """One identity: an agent, a supervisor or a backend service."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Role
    password: str | None = Field(default=None, min_length=1)
    password_hash: str | None = None
    token: str | None = Field(default=None, min_length=16)
    token_hash: str | None = None
    device: UUID | None = None
    skills: tuple[str, ...] = ()
    clients: tuple[int, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> UserSettings:
        if not (self.password or self.password_hash or self.token or self.token_hash):
            raise ValueError(f"user {self.name!r} needs a password, password_hash, token or token_hash")
        if self.password and self.password_hash:
            raise ValueError(f"user {self.name!r}: give password or password_hash, not both")
        if self.token and self.token_hash:
            raise ValueError(f"user {self.name!r}: give token or token_hash, not both")
        for field, value, prefix in (
            ("password_hash", self.password_hash, "scrypt$"),
            ("token_hash", self.token_hash, "sha256$"),
        ):
            if value is not None and not value.startswith(prefix):
                raise ValueError(f"user {self.name!r}: {field} must come from `gateway hash-password`")
        return self


class CampaignSettings(_Strict):
    """An outbound campaign; jtel shows it with ID and Name."""

    id: int = Field(gt=0)
    name: str = Field(min_length=1, max_length=64)
    calling_list: str = Field(min_length=1)
    application_id: int = Field(gt=0)
    dialing_mode: Literal["Preview", "PushPreview"] = "Preview"
    agent_group: str = Field(min_length=1)
    client: int | None = Field(default=None, gt=0)
    # Extra jtel campaign fields shown as they are (e.g. ContactPreviewTime, LanguagesID).
    jtel: dict[str, str | int | float | bool | None] = {}


class StorageSettings(_Strict):
    """Where contacts, their history and reservations live."""

    url: str = "sqlite:///data/gateway.db"
    # SQLite durability: NORMAL (WAL) survives a killed process; FULL also survives power loss.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"


class JtelSettings(_Strict):
    """The jtel dialler contacts dialect."""

    max_batch: int = Field(default=1000, gt=0)


class OutboundSettings(_Strict):
    """Outbound records for agents (the GWS dialect)."""

    # Records one agent may hold at once; 0 = unlimited (WWE's max-simultaneous-preview-record -1).
    max_records_per_agent: int = Field(default=0, ge=0)


class GwsSettings(_Strict):
    """The Genesys Web Services dialect's HTTP session and CSRF protection."""

    # Which state-changing requests (POST, PUT, DELETE) must send the X-CSRF-TOKEN a GET answered:
    #   cookie - those the JSESSIONID cookie alone authenticates (no Authorization header); the default
    #   always - every one, Basic-authenticated too (GWS's enableCsrfProtection); YAML true means this
    #   off    - none (the cookie alone is enough); YAML false means this
    csrf: Literal["cookie", "always", "off"] = "cookie"
    session_ttl_s: float = Field(default=1800.0, gt=0)
    session_cookie: str = "JSESSIONID"

    @field_validator("csrf", mode="before")
    @classmethod
    def _csrf_bool(cls, value: object) -> object:
        # The setting was a bool (true: GWS's protection, false: none): both keep their meaning.
        if isinstance(value, bool):
            return "always" if value else "off"
        return value


# Upper bounds of a waiting-field queue's timing (seconds): a callback waits a week at most, and the moments
# computed from these stay within datetime's range.
MAX_WAITING_TIME: Final = 7 * 86_400
MAX_MULTIPLIER: Final = 86_400


class QueueTimes(_Strict):
    """A waiting-field queue's timing (seconds), as SNtial Wait names it."""

    waitingFieldMultiplier: int = Field(default=10, ge=0, le=MAX_MULTIPLIER)
    minimumWaitingTime: int = Field(default=60, ge=0, le=MAX_WAITING_TIME)
    maximumWaitingTime: int = Field(default=120, ge=0, le=MAX_WAITING_TIME)
    outboundNumber: str | None = None

    @model_validator(mode="after")
    def _check(self) -> QueueTimes:
        if self.minimumWaitingTime > self.maximumWaitingTime:
            raise ValueError("minimumWaitingTime must not be above maximumWaitingTime")
        return self


class WaitQueueSettings(_Strict):
    """A waiting-field queue: its skills, timing, and the campaign its callbacks are worked in."""

    name: str = Field(min_length=1, max_length=64)
    skills: tuple[str, ...] = ()
    settings: QueueTimes = QueueTimes()
    campaign: int = Field(gt=0)
    priority: int = Field(default=5, ge=0, le=100)


class WaitfieldSettings(_Strict):
    """The SNtial Wait waiting field."""

    queues: tuple[WaitQueueSettings, ...] = ()
    # Bounds on CreateContact's `additional` map (a contact is stored whole, so it must stay small).
    max_additional_entries: int = Field(default=50, gt=0)
    max_additional_bytes: int = Field(default=16384, gt=0)


class ReplaySettings(_Strict):
    """The durable notification log and Salesforce's replay extension."""

    enabled: bool = True
    # Channels whose notifications are logged: an identity's own channels go to one log per identity,
    # every other pattern is one log of its own (broadcasts on it).
    channels: tuple[str, ...] = ("/v2/me/**", "/me/**", "/v2/dialler/**", "/v2/waitfield/**", "/v2/agents/**")
    retention_s: float = Field(default=86400.0, gt=0)
    max_events_per_log: int = Field(default=10_000, gt=0)
    # How often retention and length are enforced (entries may outlive their limit by this much).
    prune_period_s: float = Field(default=60.0, gt=0)
    # Where the log is read from: the SQL database (sql), or Redis Streams in broker.url's Redis (redis: the
    # SQL log is then the outbox the stream relay empties; README, "The log in Redis Streams").
    backend: Literal["sql", "redis"] = "sql"
    stream_prefix: str = Field(default="gateway:log", min_length=1)
    # redis: how long a relayed entry stays in the outbox (a Redis that lost its last second gets it again),
    # and how often every node sweeps the outbox for entries no relay carried (a node killed, Redis away).
    outbox_keep_s: float = Field(default=10.0, gt=0)
    sweep_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ReplaySettings:
        for pattern in self.channels:
            try:
                validate_pattern(pattern)
            except ChannelError as exc:
                raise ValueError(f"replay.channels: {pattern!r}: {exc}") from None
            if len(pattern) > 190:
                raise ValueError(f"replay.channels: {pattern!r} is longer than 190 characters")
            if pattern.startswith(("/meta/", "/service/")) or pattern in ("/meta", "/service"):
                raise ValueError(f"replay.channels: {pattern!r}: /meta and /service channels are never logged")
        return self


class DesktopSettings(_Strict):
    """The agent desktop page at /desktop/ and where its CometD JavaScript client is installed."""

    enabled: bool = True
    # The npm package `cometd` installed by `npm ci --prefix desktop` (make run does it); a relative path is
    # taken from the working directory. Without the client there, an installed wheel's own copy is served.
    cometd_dir: Path = Path("desktop/node_modules/cometd")


class LoggingSettings(_Strict):
    """Log level and format."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(_Strict):
    """The whole gateway configuration (config.yaml)."""

    server: ServerSettings = ServerSettings()
    bayeux: BayeuxSettings = BayeuxSettings()
    logging: LoggingSettings = LoggingSettings()
    storage: StorageSettings = StorageSettings()
    broker: BrokerSettings = BrokerSettings()
    users: tuple[UserSettings, ...] = ()
    campaigns: tuple[CampaignSettings, ...] = ()
    jtel: JtelSettings = JtelSettings()
    outbound: OutboundSettings = OutboundSettings()
    gws: GwsSettings = GwsSettings()
    waitfield: WaitfieldSettings = WaitfieldSettings()
    correlation: CorrelationSettings = CorrelationSettings()
    cluster: ClusterSettings = ClusterSettings()
    replay: ReplaySettings = ReplaySettings()
    desktop: DesktopSettings = DesktopSettings()
    security: SecuritySettings = SecuritySettings()

    @model_validator(mode="after")
    def _unique(self) -> Settings:
        checks: list[tuple[str, list[str]]] = [
            ("users[].name", [u.name for u in self.users]),
            ("campaigns[].id", [str(c.id) for c in self.campaigns]),
            ("campaigns[].name", [c.name for c in self.campaigns]),
        ]
        if self.replay.backend == "redis" and self.broker.url is None:
            raise ValueError("replay.backend redis needs broker.url (the log's streams are in the broker's Redis)")
        if self.correlation.backend == "redis" and self.correlation.url is None and self.broker.url is None:
            raise ValueError("correlation.backend redis needs correlation.url or broker.url (a redis:// URL)")
        for what, keys in checks:
            dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"{what} must be unique; repeated: {', '.join(dupes)}")
        campaign_ids = {c.id for c in self.campaigns}
        for queue in self.waitfield.queues:
            if queue.campaign not in campaign_ids:
                raise ValueError(f"waitfield queue {queue.name!r}: campaign {queue.campaign} is not in campaigns")
        names = [q.name for q in self.waitfield.queues]
        if len(names) != len(set(names)):
            raise ValueError("waitfield.queues[].name must be unique")
        tokens = [u.token for u in self.users if u.token]
        if len(tokens) != len(set(tokens)):
            raise ValueError("users[].token must be unique")
        return self


class ConfigError(Exception):
    """A configuration file that cannot be used, with a message saying where and why."""


def load_settings(path: Path | None, **overrides: Any) -> Settings:
    """Load `path` (or the embedded defaults when None) and apply `section.key` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        raw = loaded
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{path}: section {section!r} must be a mapping")
        raw[section][key] = value
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from None


def _describe(path: Path | None, exc: ValidationError) -> str:
    where = str(path) if path else "settings"
    lines = [f"{where}: {exc.error_count()} problem(s)"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)
