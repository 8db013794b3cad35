"""Typed settings from ``config.yaml``, ``.env`` and the environment, in one place.

Precedence: the process environment wins over ``HERMES_HOME/.env``, which wins over
``config.yaml``, which wins over the defaults here. Environment variable names are the ones
Hermes users already have (OPENAI_BASE_URL, TELEGRAM_BOT_TOKEN, ...), so an existing setup
works unchanged.

A bad or unknown key raises :class:`ConfigError` naming the key and the file, because a typo
that is silently ignored is the hardest kind of bug for a user to find.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from hermes_gateway.paths import HermesPaths


class ConfigError(ValueError):
    """A setting is wrong; the message names the key, the file and why."""

    def __init__(self, key: str, source: str, reason: str) -> None:
        self.key, self.source, self.reason = key, source, reason
        super().__init__(f"{source}: {key}: {reason}")


ToolProgressMode = Literal["off", "new", "all", "verbose"]


@dataclass
class ModelConfig:
    """Any OpenAI-compatible server: OpenAI itself, Ollama, llama.cpp, vLLM, LM Studio..."""

    base_url: str = ""
    api_key: str = ""
    name: str = ""
    timeout: float = 120.0
    """Seconds to wait for the next streamed chunk before the attempt counts as failed."""
    connect_timeout: float = 10.0
    max_retries: int = 3
    models: list[str] = field(default_factory=list)
    """Other model names offered by /model."""

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.name)


@dataclass
class AgentConfig:
    max_iterations: int = 20
    system_prompt: str = (
        "You are Hermes, a capable assistant running on the user's own machine. "
        "You can run shell commands and read and write files with your tools. "
        "Answer in Markdown. Be concise unless asked for detail."
    )
    cwd: str = "~"
    terminal_timeout: float = 180.0
    tool_output_cap: int = 50_000


@dataclass
class DisplayConfig:
    tool_progress: ToolProgressMode = "new"
    theme: str = "textual-dark"


@dataclass
class GatewayConfig:
    busy_mode: Literal["interrupt", "queue"] = "interrupt"
    loop_lag_threshold_ms: float = 100.0
    approval_timeout: float = 300.0
    """Seconds a tool call waits for the operator's approval; no answer means deny."""


UnauthorizedDm = Literal["pair", "ignore"]
ApprovalsMode = Literal["writes", "dangerous", "always"]
"""When a tool call waits for a person: ``writes`` (shell commands and file writes always,
reads never), ``dangerous`` (only commands the danger check flags), ``always`` (every call)."""


@dataclass
class ChatPlatformConfig:
    """What every chat platform shares: who may talk, where the home chat is, how answers and
    approvals behave. Each platform's section adds only its own fields."""

    token: str = ""
    home_channel: str = ""
    allowed_users: list[str] = field(default_factory=list)
    allow_all_users: bool = False
    require_mention: bool = True
    """In groups, answer only when mentioned or replied to."""
    tool_progress: ToolProgressMode | None = None
    """Overrides ``display.tool_progress`` for this platform (None: follow it)."""
    unauthorized_dm: UnauthorizedDm = "pair"
    approvals: ApprovalsMode = "writes"
    """Remote users are not trusted: their shell commands and writes ask by default."""
    remote_approvals: bool = False
    """Whether allowed users may answer approval requests with /approve and /deny."""
    edit_interval: float = 1.0
    """Seconds between two edits of a streamed answer."""

    def progress_mode(self, display: DisplayConfig) -> ToolProgressMode:
        """The tool-progress mode in force: this platform's override, else the display's."""
        return self.tool_progress or display.tool_progress


@dataclass
class TelegramConfig(ChatPlatformConfig):
    """Telegram (python-telegram-bot). Enabled when a token is set."""

    base_url: str = ""
    """A self-hosted Bot API server's base, token appended (TELEGRAM_BASE_URL)."""
    base_file_url: str = ""
    poll_timeout: float = 10.0
    """Seconds one getUpdates long poll may wait on the server."""
    rate_interval: float = 1.0
    """Seconds between two sends/edits in one chat (Telegram allows about one a second)."""
    global_rate: float = 30.0
    """Sends/edits per second over all chats (Telegram's bot-wide limit)."""
    media_group_wait: float = 0.8
    """Quiet time that ends an album (photos sent together become one turn)."""
    reconnect_initial: float = 2.0
    reconnect_cap: float = 300.0
    """Reconnect backoff: first delay and cap in seconds (doubling, with jitter)."""


@dataclass
class DiscordConfig(ChatPlatformConfig):
    """Discord (discord.py). Enabled when a token is set."""

    api_base: str = ""
    gateway_url: str = ""
    allowed_roles: list[str] = field(default_factory=list)
    auto_thread: bool = False
    """Open a thread for each answer to a mention in a channel."""
    sync_commands: bool = True
    """Publish the slash-command registry as Discord application commands on connect."""
    guild_ready_timeout: float = 2.0
    """Seconds discord.py waits for the servers' data after READY before it is ready."""


@dataclass
class WebhookRoute:
    """One ``POST /webhooks/<name>`` route (``platforms.api_server.webhooks.<name>``)."""

    secret: str = ""
    """HMAC-SHA256 key of the signature (GitHub's X-Hub-Signature-256 or X-Hermes-Signature)."""
    prompt: str = ""
    """Template filled from the JSON payload: ``{repository.full_name}``, ``{payload}``, ..."""
    deliver: str = ""
    """Delivery targets for the answer (``telegram:<chat_id>``, ``local``, a comma list);
    empty: the route is synchronous and the answer is the HTTP response."""
    events: list[str] = field(default_factory=list)
    """Accepted X-GitHub-Event / X-Hermes-Event values; empty accepts every event."""
    rate_limit: int = 30
    """Agent runs per minute for this route; beyond it the route answers 429."""
    tools: bool = False
    """Let the agent use its tools (shell, files) for this route. Off by default: a payload
    (an issue body, a commit message) is written by whoever can trigger the webhook."""


@dataclass
class ApiServerConfig:
    """The OpenAI-compatible HTTP API (and webhooks) served by the gateway."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8642
    key: str = ""
    max_concurrency: int = 16
    max_body_bytes: int = 1_000_000
    approvals: ApprovalsMode = "dangerous"
    webhooks: dict[str, WebhookRoute] = field(default_factory=dict)


@dataclass
class CronConfig:
    """The scheduler (hermes_cron reads these through CronSettings)."""

    enabled: bool = True
    timezone: str = ""
    """IANA zone for cron expressions; empty = TZ, then the system's zone, then UTC."""
    grace_minutes: float = 15.0
    output_keep: int = 50
    output_max_age_days: float = 30.0


@dataclass
class PlatformsConfig:
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    api_server: ApiServerConfig = field(default_factory=ApiServerConfig)

    def chat(self, platform: str) -> ChatPlatformConfig | None:
        """A chat platform's section by name (None for the API, the terminal or unknown)."""
        section = getattr(self, platform, None) if platform in _CHAT_SECTIONS else None
        return section if isinstance(section, ChatPlatformConfig) else None

    def approvals_mode(self, platform: str) -> ApprovalsMode:
        """``writes``, ``dangerous`` or ``always`` for tool calls made in a chat of ``platform``.

        The HTTP server's platforms (``api`` and ``webhook``) follow ``api_server.approvals``;
        the local terminal and cron (the operator) are ``dangerous``.
        """
        if platform in _HTTP_PLATFORMS:
            return self.api_server.approvals
        section = self.chat(platform)
        return section.approvals if section is not None else "dangerous"


_CHAT_SECTIONS = frozenset({"telegram", "discord"})
_HTTP_PLATFORMS = frozenset({"api", "webhook"})


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    platforms: PlatformsConfig = field(default_factory=PlatformsConfig)
    cron: CronConfig = field(default_factory=CronConfig)
    allowed_users: list[str] = field(default_factory=list)
    """Users allowed on every platform (GATEWAY_ALLOWED_USERS)."""
    allow_all_users: bool = False
    """Open every platform to everyone (GATEWAY_ALLOW_ALL_USERS); deny by default."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    personality: str = ""
    personalities: dict[str, str] = field(default_factory=dict)
    paths: HermesPaths = field(default_factory=lambda: HermesPaths(Path("~/.hermes").expanduser()))
    env: dict[str, str] = field(default_factory=dict, repr=False)
    """The merged .env + environment, for adapters that read their own variables."""


# Environment variables that map onto config keys: (variable, dotted key).
ENV_KEYS: tuple[tuple[str, str], ...] = (
    ("OPENAI_BASE_URL", "model.base_url"),
    ("OPENAI_API_KEY", "model.api_key"),
    ("HERMES_MODEL", "model.name"),
    ("HERMES_TOOL_PROGRESS", "display.tool_progress"),
    ("HERMES_BUSY_MODE", "gateway.busy_mode"),
    ("HERMES_CRON_ENABLED", "cron.enabled"),
    ("HERMES_TIMEZONE", "cron.timezone"),
    ("HERMES_CRON_GRACE_MINUTES", "cron.grace_minutes"),
    ("HERMES_CRON_OUTPUT_KEEP", "cron.output_keep"),
    ("HERMES_CRON_OUTPUT_MAX_AGE_DAYS", "cron.output_max_age_days"),
    ("GATEWAY_ALLOWED_USERS", "allowed_users"),
    ("GATEWAY_ALLOW_ALL_USERS", "allow_all_users"),
    ("TELEGRAM_BOT_TOKEN", "platforms.telegram.token"),
    ("TELEGRAM_BASE_URL", "platforms.telegram.base_url"),
    ("TELEGRAM_BASE_FILE_URL", "platforms.telegram.base_file_url"),
    ("TELEGRAM_HOME_CHANNEL", "platforms.telegram.home_channel"),
    ("TELEGRAM_ALLOWED_USERS", "platforms.telegram.allowed_users"),
    ("TELEGRAM_ALLOW_ALL_USERS", "platforms.telegram.allow_all_users"),
    ("DISCORD_BOT_TOKEN", "platforms.discord.token"),
    ("DISCORD_API_BASE", "platforms.discord.api_base"),
    ("DISCORD_GATEWAY_URL", "platforms.discord.gateway_url"),
    ("DISCORD_HOME_CHANNEL", "platforms.discord.home_channel"),
    ("DISCORD_ALLOWED_USERS", "platforms.discord.allowed_users"),
    ("DISCORD_ALLOWED_ROLES", "platforms.discord.allowed_roles"),
    ("DISCORD_ALLOW_ALL_USERS", "platforms.discord.allow_all_users"),
    ("API_SERVER_ENABLED", "platforms.api_server.enabled"),
    ("API_SERVER_HOST", "platforms.api_server.host"),
    ("API_SERVER_PORT", "platforms.api_server.port"),
    ("API_SERVER_KEY", "platforms.api_server.key"),
)

_NOT_SETTABLE = {"paths", "env"}


def load_config(paths: HermesPaths | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read every source and return validated settings, or raise ConfigError."""
    base_env = dict(os.environ if environ is None else environ)
    paths = paths or HermesPaths.from_env(base_env)
    env = {**_read_dotenv(paths.env_file), **base_env}
    config = Config(paths=paths, env=env)

    raw = _read_yaml(paths.config_file)
    _apply_mapping(config, raw, prefix="", source=str(paths.config_file))

    for var, dotted in ENV_KEYS:
        value = env.get(var)
        if value:
            _set_dotted(config, dotted, value, source=f"environment variable {var}")
    if config.cron.timezone:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(config.cron.timezone)
        except (ValueError, KeyError, OSError):
            raise ConfigError(
                "cron.timezone",
                str(paths.config_file),
                f"{config.cron.timezone!r} is not a known time zone (e.g. Europe/Berlin)",
            ) from None
    if config.personality and config.personality not in config.personalities:
        known = ", ".join(sorted(config.personalities)) or "none defined"
        raise ConfigError(
            "personality",
            str(paths.config_file),
            f"{config.personality!r} is not in 'personalities' ({known})",
        )
    return config


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(top)"
        raise ConfigError(where, str(path), f"not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("(top)", str(path), "must be a mapping of settings")
    return data


def _apply_mapping(target: Any, raw: dict[str, Any], *, prefix: str, source: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(target) if f.name not in _NOT_SETTABLE}
    hints = typing.get_type_hints(type(target))
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(dotted, source, f"unknown key{hint}")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(dotted, source, "must be a mapping")
            _apply_mapping(current, value, prefix=f"{dotted}.", source=source)
        else:
            setattr(target, key, _coerce(value, hints[key], dotted, source))


def _set_dotted(config: Config, dotted: str, value: str, *, source: str) -> None:
    *parents, last = dotted.split(".")
    target: Any = config
    for part in parents:
        target = getattr(target, part)
    hints = typing.get_type_hints(type(target))
    setattr(target, last, _coerce(value, hints[last], dotted, source))


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against a field's type; accept strings for numbers and booleans."""
    origin = get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(key, source, "must be a mapping")
        instance = hint()
        _apply_mapping(instance, value, prefix=f"{key}.", source=source)
        return instance
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            choices = " | ".join(str(a) for a in allowed)
            raise ConfigError(key, source, f"must be one of {choices}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key, source)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(key, source, f"must be true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(key, source, f"must be a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(key, source, f"must be a number, got {value!r}") from None
        if number < 0:
            raise ConfigError(key, source, f"must not be negative, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(key, source, f"must be text, got {type(value).__name__}")
        return "" if value is None else str(value)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(key, source, "must be a list")
        (item,) = get_args(hint)
        return [_coerce(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, source, "must be a mapping")
        _, item = get_args(hint)
        return {str(k): _coerce(v, item, f"{key}.{k}", source) for k, v in value.items()}
    return value
