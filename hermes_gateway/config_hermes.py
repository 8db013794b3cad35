"""A Hermes Agent ``config.yaml`` read as ours: its keys mapped, its unsupported keys named.

Our users come from Hermes Agent and keep its ``~/.hermes``. Their ``config.yaml`` mixes keys we
honour under another name or shape (``model: "gpt-4o"``, ``agent.max_turns``,
``display.busy_input_mode``, ``platforms.telegram.home_channel: {chat_id: ...}``, top-level
``telegram:`` and ``discord:`` sections, ...) with keys for features we do not have
(``memory``, ``toolsets``, ...). :func:`translate` splits the raw mapping into

* ``native``: the keys already in our schema, for the loader to check as before;
* ``moves``: Hermes keys that set one of our settings, each remembering the key as written so
  a bad value is reported under the user's own key;
* ``ignored``: Hermes keys of features we lack, reported once at start and by
  ``hermes config check`` instead of refusing the file;
* ``errors``: what cannot be honoured safely (e.g. a container terminal backend: we would run
  the commands on this machine instead).

A key that is neither ours nor Hermes Agent's stays an error with its did-you-mean (see
:func:`hermes_children`), because a silently ignored typo is the hardest bug to find.

This module never imports :mod:`hermes_gateway.config` (the loader imports it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hermes_gateway.hermes_agent_names import CONFIG_KEYS, ENV_NAMES

KeyStatus = Literal["honoured", "accepted", "ignored", "error"]
"""``honoured``: takes effect; ``accepted``: kept in the typed config, not enforced yet;
``ignored``: a Hermes Agent setting for a feature we lack; ``error``: refused."""


@dataclass(frozen=True, slots=True)
class KeyReport:
    """What became of one key of ``config.yaml`` or one variable of ``.env``."""

    key: str
    source: str
    status: KeyStatus
    detail: str = ""


@dataclass(slots=True)
class Move:
    """A Hermes key whose value sets one of our settings (``target``, dotted)."""

    target: str
    value: Any
    key: str
    detail: str = ""


@dataclass
class Translation:
    native: dict[str, Any] = field(default_factory=dict)
    moves: list[Move] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    """``(key as written, why)``; a mapping is reported once as ``key.*``."""
    accepted: list[str] = field(default_factory=list)
    """Hermes keys read and kept that need no setting of ours (``terminal.backend: local``)."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[tuple[str, list[str]]] = field(default_factory=list)
    """Keys in Hermes-only sections that neither we nor Hermes know: ``(key, candidates)``."""


IsOurs = Callable[[str], bool]
"""Whether a dotted key is one of our settings (the loader answers from its dataclasses)."""

NOT_ENFORCED: tuple[str, ...] = (
    "streaming.enabled",
    "streaming.transport",
    "streaming.buffer_threshold",
    "streaming.cursor",
    "streaming.fresh_final_after_seconds",
    "platforms.telegram.streaming",
    "platforms.discord.streaming",
)
"""Our keys (or prefixes) that are parsed and kept but not enforced yet: reported
``accepted``, never ``honoured``."""

_CHAT = (
    "telegram",
    "discord",
    "slack",
    "mattermost",
    "matrix",
    "irc",
    "homeassistant",
    "sms",
    "signal",
    "email",
)

# Keys Hermes Agent's gateway loader bridges from a platform section (top-level ``telegram:``,
# ``platforms.<name>``, or its ``extra``), beyond its default configuration.
_PLATFORM_KEYS = frozenset(
    """
    enabled token api_key home_channel reply_to_mode gateway_restart_notification
    typing_indicator typing_status_text channel_overrides extra unauthorized_dm_behavior
    notice_delivery reply_prefix reply_in_thread cron_continuable_surface require_mention
    allowed_chats group_allowed_chats allowed_topics free_response_channels mention_patterns
    exclusive_bot_mentions observe_unmentioned_group_messages dm_policy allow_from
    allow_admin_from user_allowed_commands group_policy group_allow_from group_allow_admin_from
    group_user_allowed_commands channel_skill_bindings channel_prompts allowed_channels
    ignored_channels no_thread_channels auto_thread thread_require_mention reactions
    bots_require_inline_mention history_backfill history_backfill_limit
    missed_message_backfill allow_bots allow_any_attachment max_attachment_bytes
    approval_mentions voice_fx dm_role_auth_guild server_actions fallback_ips
    """.split()
)

# Per chat platform: the Hermes key (in its section or ``extra``) -> our field.
_CHAT_MOVES: dict[str, dict[str, str]] = {
    "telegram": {
        "require_mention": "require_mention",
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
    },
    "discord": {
        "require_mention": "require_mention",
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
        "auto_thread": "auto_thread",
        "free_response_channels": "free_response_channels",
        "allowed_channels": "allowed_channels",
    },
    "slack": {
        "require_mention": "require_mention",
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
        "free_response_channels": "free_response_channels",
        "allowed_channels": "allowed_channels",
        "reply_in_thread": "reply_in_thread",
    },
    "mattermost": {
        "require_mention": "require_mention",
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
        "free_response_channels": "free_response_channels",
        "allowed_channels": "allowed_channels",
        "url": "url",
        "reply_mode": "reply_mode",
    },
    "matrix": {
        "require_mention": "require_mention",
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
        "free_response_rooms": "free_response_rooms",
        "allowed_rooms": "allowed_rooms",
        "auto_thread": "auto_thread",
        "homeserver": "homeserver",
        "user_id": "user_id",
        "password": "password",
        "device_id": "device_id",
        "max_message_length": "max_message_length",
    },
    # Hermes' IRC and Home Assistant keys (in the section or its ``extra``) carry our names.
    "irc": {
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
    },
    "homeassistant": {
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
    },
    "sms": {
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
    },
    "signal": {
        "require_mention": "require_mention",
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "group_allow_from": "group_allowed_users",
        "enabled": "enabled",
        "http_url": "http_url",
        "account": "account",
        "ignore_stories": "ignore_stories",
    },
    # Hermes Agent's email adapter reads these from platforms.email (and its ``extra``).
    "email": {
        "unauthorized_dm_behavior": "unauthorized_dm",
        "allow_from": "allowed_users",
        "enabled": "enabled",
        "address": "address",
        "imap_host": "imap_host",
        "smtp_host": "smtp_host",
        "skip_attachments": "skip_attachments",
        "authserv_id": "authserv_id",
        # Hermes' switch is the other way round: require_authenticated_sender: false is our
        # trust_from_header: true (inverted on the way, see _INVERTED).
        "require_authenticated_sender": "trust_from_header",
    },
}

_API_EXTRA = {
    "key": "key",
    "port": "port",
    "host": "host",
    "cors_origins": "cors_origins",
    "model_name": "model_name",
}
_WEBHOOK_EXTRA = {"port": "port", "host": "host", "secret": "secret", "routes": "routes"}
_WEBHOOK_ROUTE_HERMES_ONLY = frozenset(
    {"deliver_only", "deliver_extra", "enabled", "script", "skills"}
)
_OTHER_PLATFORM_HINT = "a platform this gateway does not have"

# Hermes providers that speak the OpenAI API: name -> (base URL, key variables).
OPENAI_COMPATIBLE_PROVIDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openrouter": ("https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)),
    "openai": ("https://api.openai.com/v1", ("OPENAI_API_KEY",)),
    "openai-api": ("https://api.openai.com/v1", ("OPENAI_API_KEY",)),
    "lmstudio": ("http://127.0.0.1:1234/v1", ("LM_API_KEY",)),
    "ollama": ("http://127.0.0.1:11434/v1", ()),
    "deepseek": ("https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
    "xai": ("https://api.x.ai/v1", ("XAI_API_KEY",)),
    "nvidia": ("https://integrate.api.nvidia.com/v1", ("NVIDIA_API_KEY",)),
    "huggingface": ("https://router.huggingface.co/v1", ("HF_TOKEN",)),
    "zai": ("https://api.z.ai/api/paas/v4", ("GLM_API_KEY", "ZAI_API_KEY", "Z_AI_API_KEY")),
    "kimi-coding": ("https://api.moonshot.ai/v1", ("KIMI_API_KEY", "KIMI_CODING_API_KEY")),
    "alibaba": (
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        ("DASHSCOPE_API_KEY",),
    ),
}
"""Used only when ``model.base_url`` is empty; ``custom`` means ``model.base_url`` itself."""


@functools.cache
def _hermes_prefixes() -> frozenset[str]:
    """Every dotted key of Hermes Agent and each of its parents (``display``, ...)."""
    out: set[str] = set()
    for key in CONFIG_KEYS:
        parts = key.split(".")
        for i in range(1, len(parts) + 1):
            out.add(".".join(parts[:i]))
    return frozenset(out)


def hermes_known(dotted: str) -> bool:
    """Whether Hermes Agent 0.19 has this key (or a section of that name)."""
    return dotted in _hermes_prefixes()


def hermes_children(prefix: str) -> set[str]:
    """Hermes Agent's key names directly under ``prefix`` ("" for the top), for did-you-mean."""
    depth = prefix.count(".")
    return {
        key.split(".")[depth]
        for key in _hermes_prefixes()
        if key.startswith(prefix) and key.count(".") >= depth
    }


def hermes_env_known(name: str) -> bool:
    """Whether Hermes Agent documents or reads this environment variable."""
    return name in ENV_NAMES


def not_enforced(dotted: str) -> bool:
    return any(dotted == p or (p.endswith(".") and dotted.startswith(p)) for p in NOT_ENFORCED)


def summarize_ignored(keys: list[str], limit: int = 12) -> str:
    """One line naming the ignored keys: whole sections as ``memory.*``, a section's many
    keys as ``display (31 keys)``."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".")[0], []).append(key)
    parts: list[str] = []
    for top, members in groups.items():
        if len(members) == 1:
            parts.append(members[0])
        elif len(members) <= 3:
            parts.append(", ".join(members))
        else:
            parts.append(f"{top} ({len(members)} keys)")
    if len(parts) > limit:
        parts = [*parts[:limit], f"and {len(parts) - limit} more"]
    return ", ".join(parts)


class _Translator:
    def __init__(self, raw: Mapping[str, Any], is_ours: IsOurs) -> None:
        self.raw = raw
        self.is_ours = is_ours
        self.t = Translation()

    # --- recording --------------------------------------------------------------------

    def move(self, target: str, value: Any, key: str, detail: str = "") -> None:
        self.t.moves.append(Move(target, value, key, detail))

    def ignore(self, key: str, value: Any, why: str = "not supported here") -> None:
        shown = f"{key}.*" if isinstance(value, Mapping) and value else key
        self.t.ignored.append((shown, why))

    def section(
        self,
        value: Any,
        prefix: str,
        special: Mapping[str, Callable[[Any, str], None]],
        out: dict[str, Any] | None,
    ) -> None:
        """Walk one mapping: special keys to their handler, ours to ``out`` (or moved when
        ``out`` is None), Hermes' to ignored, the rest unknown."""
        if not isinstance(value, Mapping):
            if out is not None:
                return  # the loader reports "must be a mapping" for our own sections
            self.t.errors.append((prefix.rstrip("."), "must be a mapping"))
            return
        for key, item in value.items():
            dotted = f"{prefix}{key}"
            handler = special.get(str(key))
            if handler is not None:
                handler(item, dotted)
            elif self.is_ours(dotted):
                if out is not None:
                    out[key] = item
                else:
                    self.move(dotted, item, dotted)
            elif hermes_known(dotted):
                self.ignore(dotted, item)
            elif out is not None:
                out[key] = item  # unknown: the loader names it, with a did-you-mean
            else:
                self.t.unknown.append((dotted, sorted(hermes_children(prefix))))

    # --- top level --------------------------------------------------------------------

    def run(self) -> Translation:
        raw, t = self.raw, self.t
        handlers: dict[str, Callable[[Any, str], None]] = {
            "model": self.model,
            "agent": self.mapped_section({"max_turns": "agent.max_iterations"}),
            "display": self.display,
            "terminal": self.terminal,
            "cron": self.mapped_section({"output_retention": "cron.output_keep"}),
            "approvals": self.mapped_section({"timeout": "gateway.approval_timeout"}),
            "gateway": self.gateway,
            "platforms": self.platforms,
            "telegram": self.chat_top,
            "discord": self.chat_top,
            "slack": self.chat_top,
            "mattermost": self.chat_top,
            "matrix": self.chat_top,
            "sms": self.chat_top,
            "signal": self.chat_top,
            "streaming": self.streaming,
            "personalities": self.personalities,
            "require_mention": self.require_mention,
            "unauthorized_dm_behavior": self.dm_behavior,
        }
        for key, value in raw.items():
            name = str(key)
            handler = handlers.get(name)
            if value is None and (self.is_ours(name) or name in _CHAT):
                t.accepted.append(name)  # written empty: the default stands
            elif handler is not None:
                handler(value, name)
            elif self.is_ours(name) and isinstance(value, Mapping) and hermes_known(name):
                self.mapped_section({})(value, name)  # ours, with some Hermes-only keys
            elif self.is_ours(name):
                t.native[name] = value
            elif hermes_known(name):
                self.ignore(name, value)
            elif name in _PLATFORM_NAMES:
                self.ignore(name, value, _OTHER_PLATFORM_HINT)
            else:
                t.native[name] = value  # unknown: the loader reports it
        return t

    def mapped_section(self, renames: Mapping[str, str]) -> Callable[[Any, str], None]:
        """A section of ours where some Hermes keys are our settings under another name."""

        def handle(value: Any, name: str) -> None:
            if value is None:
                return  # an empty section (``agent:`` with nothing under it)
            if not isinstance(value, Mapping) and self.is_ours(name):
                self.t.native[name] = value  # the loader: "must be a mapping"
                return
            special = {
                k: (lambda v, dotted, target=target: self.move(target, v, dotted))
                for k, target in renames.items()
            }
            out: dict[str, Any] | None = {} if self.is_ours(name) else None
            self.section(value, f"{name}.", special, out)
            if out:
                self.t.native[name] = out

        return handle

    def model(self, value: Any, name: str) -> None:
        if value is None:
            return
        if isinstance(value, str):
            self.move("model.name", value, "model")
            return
        out: dict[str, Any] = {}
        special = {
            "default": lambda v, dotted: self.move("model.name", v, dotted),
            "model": lambda v, dotted: self.move("model.name", v, dotted),
        }
        self.section(value, "model.", special, out)
        self.t.native["model"] = out if isinstance(value, Mapping) else value

    def display(self, value: Any, name: str) -> None:
        special: dict[str, Callable[[Any, str], None]] = {
            "busy_input_mode": self.busy_mode,
            "busy_ack_enabled": lambda v, dotted: self.move("gateway.busy_ack", v, dotted),
            "busy_steer_ack_enabled": lambda v, dotted: self.move(
                "gateway.busy_steer_ack", v, dotted
            ),
            "personality": self.personality,
            "platforms": self.display_platforms,
            "tool_progress_overrides": self.display_platforms,
        }
        out: dict[str, Any] = {}
        self.section(value, "display.", special, out)
        if out or not isinstance(value, Mapping):
            self.t.native["display"] = out if isinstance(value, Mapping) else value

    def busy_mode(self, value: Any, dotted: str) -> None:
        self.move(
            "gateway.busy_mode", value.strip().lower() if isinstance(value, str) else value, dotted
        )

    def personality(self, value: Any, dotted: str) -> None:
        defined = self.raw.get("personalities")
        if not value:
            self.t.accepted.append(dotted)
        elif isinstance(defined, Mapping) and value in defined:
            self.move("personality", value, dotted)
        else:
            self.ignore(dotted, value, f"{value!r} is a Hermes Agent built-in, not defined here")

    def display_platforms(self, value: Any, dotted: str) -> None:
        if not isinstance(value, Mapping):
            self.t.errors.append((dotted, "must be a mapping"))
            return
        for platform, settings in value.items():
            where = f"{dotted}.{platform}"
            if platform not in _CHAT:
                self.ignore(where, settings, _OTHER_PLATFORM_HINT)
                continue
            if isinstance(settings, str):  # tool_progress_overrides: {telegram: off}
                self.move(f"platforms.{platform}.tool_progress", settings, where)
                continue
            if not isinstance(settings, Mapping):
                self.t.errors.append((where, "must be a mapping"))
                continue
            for key, item in settings.items():
                if key in ("tool_progress", "streaming"):
                    self.move(f"platforms.{platform}.{key}", item, f"{where}.{key}")
                else:
                    self.ignore(f"{where}.{key}", item)

    def terminal(self, value: Any, name: str) -> None:
        def backend(v: Any, dotted: str) -> None:
            if str(v or "local").strip().lower() == "local":
                self.t.accepted.append(dotted)
            else:
                self.t.errors.append(
                    (
                        dotted,
                        f"{v!r} is not supported here: commands would run directly on this "
                        "machine, not in that sandbox; remove the key or set it to local",
                    )
                )

        special = {
            "cwd": lambda v, dotted: self.move("agent.cwd", v, dotted),
            "timeout": lambda v, dotted: self.move("agent.terminal_timeout", v, dotted),
            "backend": backend,
        }
        self.section(value, "terminal.", special, None)

    def gateway(self, value: Any, name: str) -> None:
        """Ours, plus Hermes' nested forms of top-level keys (used when the top is absent)."""

        def fallback(top: str) -> Callable[[Any, str], None]:
            def handle(v: Any, dotted: str) -> None:
                if top in self.raw:
                    self.ignore(dotted, v, f"the top-level '{top}' is used instead")
                elif top == "platforms":
                    self.platforms(v, dotted)
                elif top == "session_reset":
                    self.move_all(v, dotted, top)
                else:
                    self.run_top(top, v, dotted)

            return handle

        special = {
            top: fallback(top)
            for top in (
                "session_reset",
                "streaming",
                "unauthorized_dm_behavior",
                "group_sessions_per_user",
                "thread_sessions_per_user",
                "platforms",
            )
        }
        special["api_server"] = self.gateway_api
        out: dict[str, Any] = {}
        self.section(value, "gateway.", special, out)
        if out or not isinstance(value, Mapping):
            self.t.native["gateway"] = out if isinstance(value, Mapping) else value

    def move_all(self, value: Any, dotted: str, top: str) -> None:
        """Each key moved to the top-level section, reported under the nested key."""
        if not isinstance(value, Mapping):
            self.move(top, value, dotted)
            return
        for key, item in value.items():
            target = f"{top}.{key}"
            if self.is_ours(target):
                self.move(target, item, f"{dotted}.{key}")
            elif hermes_known(target):
                self.ignore(f"{dotted}.{key}", item)
            else:
                self.t.unknown.append((f"{dotted}.{key}", sorted(hermes_children(f"{top}."))))

    def run_top(self, top: str, value: Any, dotted: str) -> None:
        if top == "streaming":
            self.streaming(value, dotted)
        elif top == "unauthorized_dm_behavior":
            self.dm_behavior(value, dotted)
        else:
            self.move(top, value, dotted)

    def gateway_api(self, value: Any, dotted: str) -> None:
        if not isinstance(value, Mapping):
            self.ignore(dotted, value)
            return
        for key, item in value.items():
            if key == "max_concurrent_runs":
                self.move("platforms.api_server.max_concurrency", item, f"{dotted}.{key}")
            else:
                self.ignore(f"{dotted}.{key}", item)

    def streaming(self, value: Any, dotted: str) -> None:
        if not isinstance(value, Mapping):
            self.move("streaming", value, dotted)  # the loader: "must be a mapping"
            return
        for key, item in value.items():
            where = f"{dotted}.{key}"
            if key == "mode":
                token = _transport(item)
                if "transport" not in value:
                    self.move("streaming.transport", token, where)
                if "enabled" not in value:
                    self.move("streaming.enabled", token != "off", where)
            elif key == "transport":
                self.move("streaming.transport", _transport(item), where)
            elif self.is_ours(f"streaming.{key}"):
                self.move(f"streaming.{key}", item, where)
            else:
                self.t.unknown.append((where, sorted(hermes_children("streaming."))))

    def personalities(self, value: Any, name: str) -> None:
        if not isinstance(value, Mapping):
            self.t.native[name] = value
            return
        converted: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, Mapping):  # Hermes: {system_prompt, tone, style}
                parts = [str(item.get("system_prompt") or "")]
                parts += [
                    f"{label.title()}: {item[label]}"
                    for label in ("tone", "style")
                    if item.get(label)
                ]
                converted[str(key)] = "\n".join(p for p in parts if p)
            else:
                converted[str(key)] = item
        self.move("personalities", converted, name)

    def require_mention(self, value: Any, name: str) -> None:
        section = self.raw.get("telegram")
        if isinstance(section, Mapping) and "require_mention" in section:
            self.ignore(name, value, "telegram.require_mention is used instead")
        else:
            self.move("platforms.telegram.require_mention", value, name)

    def dm_behavior(self, value: Any, dotted: str) -> None:
        self.move("unauthorized_dm_behavior", _dm(value), dotted)

    # --- platforms --------------------------------------------------------------------

    def chat_top(self, value: Any, name: str) -> None:
        """Hermes' top-level ``telegram:`` / ``discord:`` / ``slack:`` / ``mattermost:`` section."""
        self.chat_section(name, value, name)

    def platforms(self, value: Any, dotted: str) -> None:
        if not isinstance(value, Mapping):
            self.move("platforms", value, dotted)  # the loader: "must be a mapping"
            return
        for platform, settings in value.items():
            where = f"{dotted}.{platform}"
            if platform in _CHAT:
                self.chat_section(str(platform), settings, where)
            elif platform == "api_server":
                self.plain_platform("api_server", settings, where, _API_EXTRA)
            elif platform == "webhook":
                self.plain_platform("webhook", settings, where, _WEBHOOK_EXTRA)
            elif platform in _PLATFORM_NAMES:
                self.ignore(where, settings, _OTHER_PLATFORM_HINT)
            else:
                self.t.unknown.append(
                    (
                        where,
                        sorted({*_CHAT, "api_server", "webhook"}),
                    )
                )

    def chat_section(self, platform: str, value: Any, where: str) -> None:
        if value is None:
            return
        if not isinstance(value, Mapping):
            self.t.errors.append((where, "must be a mapping"))
            return
        moves = _CHAT_MOVES[platform]
        for key, item in value.items():
            dotted = f"{where}.{key}"
            ours = f"platforms.{platform}.{key}"
            if key == "extra" and isinstance(item, Mapping):
                self.chat_section(platform, item, dotted)
            elif key == "home_channel" and isinstance(item, Mapping):
                self.home_channel(platform, item, dotted)
            elif key in moves:
                value_ = _dm(item) if key == "unauthorized_dm_behavior" else item
                if key in _INVERTED:
                    value_ = _inverted(value_)
                self.move(f"platforms.{platform}.{moves[key]}", value_, dotted)
            elif self.is_ours(ours):
                self.move(ours, item, dotted)
            elif key in _PLATFORM_KEYS or hermes_known(f"{platform}.{key}") or hermes_known(dotted):
                self.ignore(dotted, item)
            else:
                names = set(_PLATFORM_KEYS) | set(moves) | hermes_children(f"{platform}.")
                self.t.unknown.append((dotted, sorted(names)))

    def home_channel(self, platform: str, value: Mapping[str, Any], dotted: str) -> None:
        for key, item in value.items():
            if key == "chat_id":
                self.move(f"platforms.{platform}.home_channel", item, f"{dotted}.{key}")
            elif key == "thread_id":
                self.move(f"platforms.{platform}.home_thread_id", item or "", f"{dotted}.{key}")
            elif key in ("name", "platform"):
                self.ignore(f"{dotted}.{key}", item, "only for Hermes Agent's display")
            else:
                self.t.unknown.append((f"{dotted}.{key}", ["chat_id", "thread_id", "name"]))

    def plain_platform(
        self, platform: str, value: Any, where: str, extra: Mapping[str, str]
    ) -> None:
        if value is None:
            return
        if not isinstance(value, Mapping):
            self.t.errors.append((where, "must be a mapping"))
            return
        for key, item in value.items():
            dotted = f"{where}.{key}"
            ours = f"platforms.{platform}.{key}"
            if key == "extra" and isinstance(item, Mapping):
                for k, v in item.items():
                    if k in extra:
                        self.platform_value(platform, extra[k], v, f"{dotted}.{k}")
                    else:
                        self.ignore(f"{dotted}.{k}", v)
            elif self.is_ours(ours):
                self.platform_value(platform, str(key), item, dotted)
            elif key in _PLATFORM_KEYS:
                self.ignore(dotted, item)
            else:
                self.t.unknown.append((dotted, sorted(set(extra) | {"enabled", "extra"})))

    def platform_value(self, platform: str, field_: str, value: Any, dotted: str) -> None:
        if field_ in ("routes", "webhooks") and isinstance(value, Mapping):
            cleaned: dict[str, Any] = {}
            for route, settings in value.items():
                if isinstance(settings, Mapping):
                    kept = {}
                    for k, v in settings.items():
                        if k in _WEBHOOK_ROUTE_HERMES_ONLY:
                            self.ignore(f"{dotted}.{route}.{k}", v)
                        else:
                            kept[k] = v
                    cleaned[str(route)] = kept
                else:
                    cleaned[str(route)] = settings
            value = cleaned
        self.move(f"platforms.{platform}.{field_}", value, dotted)


def _transport(value: Any) -> str:
    """Hermes' streaming transport token; YAML's bare off/on arrive as booleans."""
    if value is False:
        return "off"
    if value is True or value is None:
        return "auto"
    return str(value).strip().lower() or "auto"


_INVERTED = frozenset({"require_authenticated_sender"})
"""Hermes keys whose boolean means the opposite of the field they move to."""


def _inverted(value: Any) -> Any:
    """A boolean (or a boolean word) negated; anything else as it is (reported as wrong)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "on", "1"}:
        return False
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "off", "0"}:
        return True
    return value


def _dm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


_PLATFORM_NAMES = frozenset(
    """
    slack matrix mattermost whatsapp whatsapp_cloud signal email sms dingtalk feishu wecom
    wecom_callback weixin qqbot yuanbao bluebubbles homeassistant google_chat irc line teams
    ntfy photon raft simplex msgraph_webhook local
    """.split()
)


def translate(raw: Mapping[str, Any], is_ours: IsOurs) -> Translation:
    """Split a ``config.yaml`` mapping into ours, Hermes' honoured keys and the ignored rest."""
    return _Translator(raw, is_ours).run()
