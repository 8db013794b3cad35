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
import io
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

from hermes_gateway.config_hermes import (
    OPENAI_COMPATIBLE_PROVIDERS,
    KeyReport,
    KeyStatus,
    hermes_children,
    hermes_env_known,
    not_enforced,
    summarize_ignored,
    translate,
)
from hermes_gateway.paths import HermesPaths


class ConfigError(ValueError):
    """A setting is wrong; the message names the key, the file and why."""

    def __init__(self, key: str, source: str, reason: str) -> None:
        self.key, self.source, self.reason = key, source, reason
        super().__init__(f"{source}: {key}: {reason}")


class ConfigErrors(ConfigError):
    """Several settings are wrong at once; all are named, so one restart fixes them all.

    ``key``/``source``/``reason`` are the first error's; ``errors`` holds every one.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        first = errors[0]
        self.key, self.source, self.reason = first.key, first.source, first.reason
        ValueError.__init__(self, f"{len(errors)} problems: " + "; ".join(map(str, errors)))


def _raise_collected(errors: list[ConfigError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


def _collect(errors: list[ConfigError], exc: ConfigError) -> None:
    errors.extend(exc.errors if isinstance(exc, ConfigErrors) else [exc])


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
    provider: str = ""
    """A Hermes Agent provider name (``openrouter``, ``custom``, ...): when ``base_url`` is
    empty, an OpenAI-compatible provider's known address and key variable are used."""
    context_length: int = 0
    """The model's context window in tokens, when the server cannot tell (0: unknown)."""
    no_vision: list[str] = field(default_factory=list)
    """Model names that cannot read images: the API refuses image parts for them (400)."""

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.name)


@dataclass
class AgentConfig:
    max_iterations: int = 90
    """Tool steps one turn may take (Hermes Agent's ``agent.max_turns``, same default)."""
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
    tool_progress: ToolProgressMode | None = None
    """For every chat platform (HERMES_TOOL_PROGRESS); None: each platform's own default,
    as in Hermes Agent (Telegram ``off``, Discord ``all``)."""
    theme: str = "textual-dark"


BusyMode = Literal["interrupt", "queue", "steer"]
"""What a message arriving while its chat's answer is being written does."""


@dataclass
class GatewayConfig:
    busy_mode: BusyMode = "interrupt"
    """A message arriving while the chat's answer is being written: ``interrupt`` stops it
    and answers anew, ``queue`` answers it after, ``steer`` adds it to the running answer at
    its next step (Hermes Agent's ``display.busy_input_mode``, default ``interrupt``)."""
    busy_ack: bool = True
    """Tell the chat what became of such a message (at most once per 30 s per chat; Hermes
    Agent's ``display.busy_ack_enabled``)."""
    busy_steer_ack: bool = True
    """In ``steer`` mode too (``display.busy_steer_ack_enabled``): off steers silently."""
    loop_lag_threshold_ms: float = 100.0
    approval_timeout: float = 300.0
    """Seconds a tool call waits for the operator's approval; no answer means deny."""
    drain_timeout: float = 30.0
    """On stop, seconds running answers may take to finish before they are interrupted (and
    resumed at the next start)."""
    resume_unanswered: Literal["answer", "notify", "drop"] = "answer"
    """What happens at start to messages a crash or a stop left unanswered: answer them, tell
    the sender to send them again, or drop them silently."""
    resume_max_age_minutes: float = 60.0
    """Unanswered messages older than this are not answered at start but notified (a late
    answer to an old question confuses more than it helps)."""
    auto_title: bool = True
    """Ask the model for a short title after a chat session's first exchange."""


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
    enabled: bool | None = None
    """None: the platform runs when its token is set; false keeps it off even then."""
    home_thread_id: str = ""
    """The topic or thread of the home channel (TELEGRAM_HOME_CHANNEL_THREAD_ID, ...)."""
    tool_progress: ToolProgressMode | None = None
    """Overrides ``display.tool_progress`` for this platform (None: follow it)."""
    streaming: bool | None = None
    """Overrides ``streaming.enabled`` for this platform (kept; not enforced yet)."""
    unauthorized_dm: UnauthorizedDm = "pair"
    approvals: ApprovalsMode = "writes"
    """Remote users are not trusted: their shell commands and writes ask by default."""
    remote_approvals: bool = False
    """Whether allowed users may answer approval requests with /approve and /deny."""
    edit_interval: float = 1.0
    """Seconds between two edits of a streamed answer."""

    @property
    def home(self) -> str:
        """The home channel as ``chat`` or ``chat:thread``: ``home_channel`` may carry the
        thread itself, else ``home_thread_id`` (Hermes' *_HOME_CHANNEL_THREAD_ID) adds it."""
        chat = self.home_channel.strip()
        thread = self.home_thread_id.strip()
        if chat and thread and ":" not in chat:
            return f"{chat}:{thread}"
        return chat

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "all"
    """Tool progress when neither this platform nor ``display`` says (Hermes Agent's)."""

    def progress_mode(self, display: DisplayConfig) -> ToolProgressMode:
        """The tool-progress mode in force: this platform's override, else the display's,
        else the platform's default."""
        return self.tool_progress or display.tool_progress or self.DEFAULT_PROGRESS


@dataclass
class TelegramConfig(ChatPlatformConfig):
    """Telegram (python-telegram-bot). Enabled when a token is set."""

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "off"

    require_mention: bool = False
    """In groups, answer only when mentioned or replied to. Off by default, as in Hermes
    Agent (TELEGRAM_REQUIRE_MENTION): a bot added to a group is there to answer it; only
    allowed users reach it either way."""

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
    auto_thread: bool = True
    """Open a thread for each answer to a mention in a channel (Hermes Agent's default)."""
    free_response_channels: list[str] = field(default_factory=list)
    """Channels (ids; ``*`` for all) where every message is for the bot, mention or not;
    answers there stay in the channel (no thread)."""
    allowed_channels: list[str] = field(default_factory=list)
    """When set, the bot listens only in these channels (ids or ``*``) and their threads;
    DMs are not affected."""
    sync_commands: bool = True
    """Publish the slash-command registry as Discord application commands on connect."""
    guild_ready_timeout: float = 2.0
    """Seconds discord.py waits for the servers' data after READY before it is ready."""


@dataclass
class SlackConfig(ChatPlatformConfig):
    """Slack (slack-bolt in Socket Mode). Enabled when the bot token is set; the app-level
    token (SLACK_APP_TOKEN, ``xapp-``) opens the Socket Mode connection, so no public URL is
    needed."""

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "off"
    """Hermes Agent's Slack default: progress lines would stay in a channel for good."""

    app_token: str = ""
    api_base: str = ""
    """The Web API's base URL (default ``https://slack.com/api/``); for proxies and tests."""
    free_response_channels: list[str] = field(default_factory=list)
    """Channels (ids; ``*`` for all) where every message is for the bot, mention or not."""
    allowed_channels: list[str] = field(default_factory=list)
    """When set, the bot listens only in these channels (DMs are not affected)."""
    reply_in_thread: bool = True
    """Answer a channel message in a thread under it (Hermes Agent's default): each such
    thread is its own session."""
    rate_interval: float = 1.0
    """Seconds between two writes in one channel (Slack allows about one message a second
    per channel; ``chat.update`` is Tier 3, ~50 a minute per workspace)."""
    updates_per_minute: float = 50.0
    """``chat.update`` calls per minute over the workspace (Slack's Tier 3); streamed edits
    beyond it wait (and coalesce) instead of drawing 429s."""
    reconnect_initial: float = 1.0
    reconnect_cap: float = 300.0
    """Reconnect backoff: first delay and cap in seconds (doubling, with jitter)."""


@dataclass
class MattermostConfig(ChatPlatformConfig):
    """Mattermost (REST API v4 and websocket over aiohttp). Enabled when URL and token are set."""

    url: str = ""
    """The server's base URL (MATTERMOST_URL), e.g. ``https://chat.example.com``."""
    free_response_channels: list[str] = field(default_factory=list)
    """Channels (ids; ``*`` for all) where every message is for the bot, mention or not."""
    allowed_channels: list[str] = field(default_factory=list)
    """When set, the bot listens only in these channels (ids or ``*``); DMs are not affected."""
    reply_mode: Literal["off", "thread"] = "off"
    """``thread``: answers to a channel post open a thread under it (its own session);
    ``off``: answers go flat into the channel (Hermes Agent's MATTERMOST_REPLY_MODE)."""
    post_limit: int = 0
    """Characters per post; 0 reads the server's ``MaxPostSize`` (16383 by default)."""
    reconnect_initial: float = 1.0
    reconnect_cap: float = 300.0
    """Websocket reconnect backoff: first delay and cap in seconds (doubling, with jitter)."""


@dataclass
class MatrixConfig(ChatPlatformConfig):
    """Matrix (matrix-nio, our own /sync loop). Enabled when the homeserver and an access
    token or a password are set. Unencrypted rooms only (no E2EE)."""

    homeserver: str = ""
    """The homeserver's base URL (MATRIX_HOMESERVER), e.g. ``https://matrix.example.org``."""
    user_id: str = ""
    """The bot's full id ``@bot:server`` (MATRIX_USER_ID): needed to log in by password."""
    password: str = ""
    """MATRIX_PASSWORD: logs in when no access token is set (MATRIX_ACCESS_TOKEN wins)."""
    device_id: str = ""
    """MATRIX_DEVICE_ID: the device a password login reuses (one per restart otherwise)."""
    free_response_rooms: list[str] = field(default_factory=list)
    """Rooms (ids; ``*`` for all) where every message is for the bot, mention or not."""
    allowed_rooms: list[str] = field(default_factory=list)
    """When set, the bot listens only in these rooms (DMs are not affected)."""
    auto_thread: bool = True
    """Answer a mention in a room in a thread under it (Hermes Agent's MATRIX_AUTO_THREAD):
    each such thread is its own session."""
    max_message_length: int = 16000
    """Characters per message (MATRIX_MAX_MESSAGE_LENGTH, Hermes' default); longer answers
    are split. An event may hold 64 KiB; the HTML copy rides along in the same event."""
    edit_interval: float = 1.5
    """Seconds between two edits of a streamed answer (each edit is an event the homeserver
    rate-limits: Synapse allows 0.2/s after a burst of 10 unless the bot is exempt)."""
    sync_timeout: float = 30.0
    """Seconds one long-poll /sync may wait on the homeserver."""
    reconnect_initial: float = 1.0
    reconnect_cap: float = 300.0
    """Reconnect backoff: first delay and cap in seconds (doubling, with jitter)."""

    @property
    def home(self) -> str:
        """The home room (MATRIX_HOME_ROOM, a room id) as our chat id: see
        :func:`matrix_chat_id` (room ids carry the server after a colon)."""
        room = self.home_channel.strip()
        if not room:
            return ""
        thread = self.home_thread_id.strip()
        chat = matrix_chat_id(room)
        return f"{chat}:{matrix_chat_id(thread)}" if thread else chat


def matrix_chat_id(matrix_id: str) -> str:
    """A Matrix room or event id as a chat/thread id of ours: ``:`` (and ``%``) escaped.

    Session keys and delivery targets separate chat and thread with ``:``, and a room id is
    ``!opaque:server[:port]``: ``!abc:example.org`` becomes ``!abc%3Aexample.org``. Reversed
    by :func:`matrix_id`.
    """
    return matrix_id.replace("%", "%25").replace(":", "%3A")


def matrix_id(chat_id: str) -> str:
    """The Matrix id behind a chat id made by :func:`matrix_chat_id`."""
    return _MATRIX_ESCAPE.sub(lambda m: "%" if m[1] == "25" else ":", chat_id)


_MATRIX_ESCAPE = re.compile(r"%(25|3A)")


@dataclass
class SmsConfig(ChatPlatformConfig):
    """SMS through Twilio (Hermes Agent's ``TWILIO_*`` and ``SMS_*``). Enabled when
    TWILIO_ACCOUNT_SID is set; ``token`` is TWILIO_AUTH_TOKEN (REST basic auth and the key of
    the webhook signatures). Every SMS is a DM: one session per phone number."""

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "off"
    """Each progress line would be one more paid SMS."""

    account_sid: str = ""
    phone_number: str = ""
    """The E.164 number answers are sent from (TWILIO_PHONE_NUMBER)."""
    webhook_url: str = ""
    """The public URL Twilio posts to, exactly as set in the Twilio console (SMS_WEBHOOK_URL):
    the signature covers it, so without it no webhook can be verified."""
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 0
    """SMS_WEBHOOK_PORT. 0 (unset): on the API server's port when it runs, else 8080 (Hermes
    Agent's default); set: a listener of its own on that port."""
    insecure_no_signature: bool = False
    """SMS_INSECURE_NO_SIGNATURE: accept unsigned webhooks (development only; warned at start)."""
    api_base: str = "https://api.twilio.com/2010-04-01"
    """Twilio's REST base (for proxies and tests)."""
    segments_per_message: int = 10
    """SMS segments per Twilio message (Twilio's advice: at most 10, the phone joins them)."""
    max_segments: int = 30
    """Segments per answer at most (each is paid); a longer answer is cut with a note."""
    rate_interval: float = 0.0
    """Seconds between two messages to one number. Twilio queues what a number cannot send at
    once (a long code sends about one segment a second), so only the order is kept here."""


@dataclass
class WhatsAppConfig(ChatPlatformConfig):
    """WhatsApp Business through Meta's Cloud API (Hermes Agent's ``WHATSAPP_CLOUD_*``).
    Enabled when the phone number id and the access token (``token``) are set."""

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "off"

    require_mention: bool = False
    phone_number_id: str = ""
    app_secret: str = ""
    """The app secret: key of ``X-Hub-Signature-256`` (WHATSAPP_CLOUD_APP_SECRET); without it
    no webhook is accepted."""
    verify_token: str = ""
    """The ``hub.verify_token`` of the subscription handshake (WHATSAPP_CLOUD_VERIFY_TOKEN)."""
    app_id: str = ""
    waba_id: str = ""
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 0
    """WHATSAPP_CLOUD_WEBHOOK_PORT. 0 (unset): the API server's port when it runs, else 8090
    (Hermes Agent's default); set: a listener of its own."""
    webhook_path: str = "/whatsapp/webhook"
    api_version: str = "v20.0"
    graph_base: str = "https://graph.facebook.com"
    """The Graph API's base (for proxies and tests)."""
    rate_interval: float = 0.2
    """Seconds between two messages to one user."""
    backoff_initial: float = 1.0
    """First wait after a Graph rate-limit refusal (codes 4, 80007, 130429, 131056); it
    doubles with each one in a row, and a message is given up after five."""


@dataclass
class SignalConfig(ChatPlatformConfig):
    """Signal through signal-cli-rest-api (bbernhardt) in json-rpc mode. Enabled when
    SIGNAL_HTTP_URL and SIGNAL_ACCOUNT are set."""

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "off"

    require_mention: bool = False
    """SIGNAL_REQUIRE_MENTION (Hermes Agent: off)."""
    http_url: str = ""
    account: str = ""
    """The bot's own number, E.164 (SIGNAL_ACCOUNT)."""
    group_allowed_users: list[str] = field(default_factory=list)
    """SIGNAL_GROUP_ALLOWED_USERS: group ids the bot answers in (``*``: every group)."""
    ignore_stories: bool = True
    rate_interval: float = 0.1
    """Seconds between two messages to one chat (Signal documents no rate; its servers
    answer 429 to an account that sends too much, which is waited out)."""
    backoff_initial: float = 2.0
    """First wait after a 429 from Signal; it doubles with each one in a row (five at most)."""
    reconnect_initial: float = 1.0
    reconnect_cap: float = 300.0


@dataclass
class EmailConfig(ChatPlatformConfig):
    """Email: IMAP in (IDLE, else polling), SMTP out. Enabled when EMAIL_ADDRESS is set (the
    other EMAIL_* variables missing is then one clear failure naming them)."""

    address: str = ""
    """The agent's mailbox (EMAIL_ADDRESS): the IMAP and SMTP login, and the From of answers."""
    password: str = field(default="", repr=False)
    """EMAIL_PASSWORD: the mailbox's password or app password (IMAP and SMTP)."""
    imap_host: str = ""
    imap_port: int = 993
    """EMAIL_IMAP_PORT; 993 is IMAP over TLS (Hermes Agent's default)."""
    smtp_host: str = ""
    smtp_port: int = 587
    """EMAIL_SMTP_PORT; 465 is SMTP over TLS, any other port STARTTLS (Hermes Agent's rule)."""
    poll_interval: float = 15.0
    """EMAIL_POLL_INTERVAL: seconds between two looks at the inbox when the server has no
    IDLE (with IDLE new mail is noticed at once)."""
    idle: bool = True
    """Use IMAP IDLE where the server offers it (false: always poll)."""
    idle_refresh: float = 300.0
    """Seconds one IDLE lasts before it is renewed (servers drop one after 30 minutes)."""
    tls: bool = True
    """False speaks IMAP and SMTP unencrypted: only for a server on this machine (loopback
    addresses); anything else is refused at start, since the password would cross the network."""
    trust_from_header: bool = False
    """EMAIL_TRUST_FROM_HEADER: accept a sender's From: without an Authentication-Results
    pass (SPF/DKIM/DMARC) from the receiving server. Off, as in Hermes Agent: From: is
    written by whoever sends the mail, so an allowlist on it alone is spoofable."""
    authserv_id: str = ""
    """EMAIL_AUTHSERV_ID: only Authentication-Results from this server count (empty: the
    topmost one, which the receiving server adds last)."""
    skip_attachments: bool = False
    """Ignore every attachment of incoming mail (Hermes Agent's ``skip_attachments``)."""
    quote_original: bool = True
    """Answers quote the mail they answer (``> `` lines under the answer)."""
    max_attachment_bytes: int = 25 * 1024 * 1024
    """Incoming attachments larger than this are not saved."""
    max_age_hours: float = 24.0
    """Unread mail that reached the server longer ago than this is marked read, not
    answered (a first start on a mailbox with old unread mail); 0: no limit."""
    reconnect_initial: float = 1.0
    reconnect_cap: float = 300.0
    """IMAP reconnect backoff: first delay and cap in seconds (doubling, with jitter)."""
    timeout: float = 30.0
    """Seconds one IMAP command or SMTP exchange may take."""


@dataclass
class IrcConfig(ChatPlatformConfig):
    """IRC (our own asyncio client: channels and private messages). Enabled when IRC_SERVER is
    set. Names as Hermes Agent's IRC adapter reads them (IRC_SERVER, IRC_PORT, IRC_NICKNAME,
    IRC_CHANNEL, IRC_USE_TLS, IRC_SERVER_PASSWORD, IRC_NICKSERV_PASSWORD); SASL and the flood
    settings are ours (Hermes has none)."""

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "off"
    """IRC cannot edit a message: progress lines would stay in the channel for good."""

    server: str = ""
    port: int = 0
    """0: 6697 with TLS, 6667 without (Hermes' defaults)."""
    nickname: str = "hermes-bot"
    channel: list[str] = field(default_factory=list)
    """Channels to join (IRC_CHANNEL, comma-separated as in Hermes)."""
    use_tls: bool = True
    tls_ca_file: str = ""
    """A CA bundle (PEM) to trust instead of the system's, for a server with its own CA."""
    server_password: str = ""
    nickserv_password: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    """SASL PLAIN credentials (IRC_SASL_USERNAME / IRC_SASL_PASSWORD); a refusal is fatal."""
    max_message_length: int = 450
    """Bytes of text per line at most (Hermes' ``max_message_length``); the protocol's
    512-byte line, counting the prefix the server adds, may cut lines shorter."""
    flood_burst: int = 5
    flood_rate: float = 2.0
    """Token bucket of lines sent: ``flood_burst`` at once, then ``flood_rate`` per second,
    under what servers process without an "Excess Flood" kill (ngircd 3/s, the
    ratbox/solanum family about 5/s after a burst)."""
    connect_timeout: float = 30.0
    ping_interval: float = 120.0
    """Seconds without a line from the server before we PING it; as long again without an
    answer and the connection counts as lost."""
    send_wait: float = 120.0
    """How long an answer waits for a lost connection to come back before it fails."""
    reconnect_initial: float = 2.0
    reconnect_cap: float = 300.0
    """Reconnect backoff: first delay and cap in seconds (doubling, with jitter)."""

    @staticmethod
    def fold(name: str) -> str:
        """A nick or channel as IRC compares them (RFC 1459 case mapping: ``[]\\~`` are the
        capitals of ``{}|^``), so an allowlist entry matches however the nick is typed."""
        return name.translate(_IRC_FOLD)

    @property
    def default_port(self) -> int:
        return self.port or (6697 if self.use_tls else 6667)


_IRC_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")


@dataclass
class HomeAssistantConfig(ChatPlatformConfig):
    """Home Assistant over its websocket API (aiohttp). Enabled when HASS_TOKEN is set (as in
    Hermes Agent). People talk through a ``hermes_conversation`` event (an Assist sentence
    trigger, a script or a dashboard button fires it); answers go out through a ``notify``
    service. Hermes' state-change watching is kept: ``watch_domains``/``watch_entities``/
    ``watch_all`` with ``ignore_entities`` and ``cooldown_seconds``."""

    DEFAULT_PROGRESS: ClassVar[ToolProgressMode] = "off"
    """A notification per tool call would bury the answer."""

    url: str = "http://homeassistant.local:8123"
    """HASS_URL (Hermes' default)."""
    conversation_event: str = "hermes_conversation"
    """The event type people's messages come as: ``data.text`` (required),
    ``data.conversation_id`` (optional: one session per id, else per user) and
    ``data.notify`` (optional: the notify service for the answer); the sender is the event's
    ``context.user_id``, checked against HASS_ALLOWED_USERS."""
    notify_service: str = "notify.notify"
    """Where answers go (``notify.<service>``) unless the event names one."""
    notify_title: str = "Hermes"
    watch_domains: list[str] = field(default_factory=list)
    watch_entities: list[str] = field(default_factory=list)
    ignore_entities: list[str] = field(default_factory=list)
    watch_all: bool = False
    cooldown_seconds: float = 30.0
    """Hermes' state-change filters: changes of watched entities reach the agent as messages
    from Home Assistant itself (allowed: the token already authenticates them)."""
    message_limit: int = 4096
    """Characters per notification (Hermes' cap); longer answers become several."""
    send_wait: float = 60.0
    """How long an answer waits for a lost connection to come back before it fails."""
    reconnect_initial: float = 1.0
    reconnect_cap: float = 300.0

    @property
    def watching(self) -> bool:
        return bool(self.watch_all or self.watch_domains or self.watch_entities)


HA_SYSTEM_USER = "homeassistant"
"""The user id of state changes (Home Assistant itself, not a person)."""


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
    max_body_bytes: int = 10 * 1024 * 1024
    """Largest request body (clients send whole histories, images inlined)."""
    cors_origins: list[str] = field(default_factory=list)
    """Browser origins allowed to call the API (``*`` for any); empty: no CORS headers."""
    responses_keep: int = 10_000
    """Stored Responses kept (the oldest beyond are pruned; chains through them end there)."""
    responses_max_age_days: float = 30.0
    """Stored Responses older than this are pruned (0: no age limit)."""
    max_connections: int = 256
    """Open connections at most (never more than half the file-descriptor limit)."""
    header_timeout: float = 10.0
    """Seconds a connection may take to send a request head (0: no limit)."""
    body_timeout: float = 30.0
    """Seconds a request body may take to arrive (0: no limit)."""
    approvals: ApprovalsMode = "dangerous"
    webhooks: dict[str, WebhookRoute] = field(default_factory=dict)
    model_name: str = ""
    """The agent's name on ``/v1/models`` (API_SERVER_MODEL_NAME; empty: ``hermes-agent``)."""


@dataclass
class WebhookServerConfig:
    """Hermes Agent's separate webhook listener (WEBHOOK_ENABLED/PORT/SECRET): the routes
    here served on a port of their own, without the API or its key."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8644
    secret: str = ""
    """The secret of routes that have none of their own (WEBHOOK_SECRET)."""
    routes: dict[str, WebhookRoute] = field(default_factory=dict)


@dataclass
class CronConfig:
    """The scheduler (hermes_cron reads these through CronSettings)."""

    enabled: bool = True
    timezone: str = ""
    """IANA zone for cron expressions; empty = TZ, then the system's zone, then UTC."""
    grace_minutes: float = 15.0
    output_keep: int = 50
    output_max_age_days: float = 30.0


SessionResetMode = Literal["none", "idle", "daily", "both"]


@dataclass
class SessionResetConfig:
    """When a chat's session starts afresh on its own (Hermes Agent's ``session_reset``).

    Parsed and kept here; the sessions code enforces it.
    """

    mode: SessionResetMode = "none"
    """``idle`` after ``idle_minutes`` without a message, ``daily`` at ``at_hour``, ``both``:
    whichever comes first, ``none``: never."""
    at_hour: int = 4
    """Local hour (0-23) of the daily reset (SESSION_RESET_HOUR)."""
    idle_minutes: int = 1440
    """Minutes of silence before an idle reset (SESSION_IDLE_MINUTES)."""
    notify: bool = True
    """Tell the chat when its session was reset."""
    notify_exclude_platforms: list[str] = field(default_factory=lambda: ["api_server", "webhook"])
    """Platforms never told (Hermes' default: the HTTP ones, whose clients are programs)."""


@dataclass
class SessionResetOverride:
    """One entry of ``reset_by_platform`` / ``reset_by_type``: unset keys keep
    ``session_reset``'s value (Hermes Agent would fall back to its defaults instead)."""

    mode: SessionResetMode | None = None
    at_hour: int | None = None
    idle_minutes: int | None = None
    notify: bool | None = None


@dataclass
class CompressionConfig:
    """Older turns folded into a summary before the context overflows (Hermes'
    ``compression``, same keys and defaults)."""

    enabled: bool = True
    threshold: float = 0.50
    """Compress when the prompt would use more than this share of the context. Below a
    512K window it is raised to at least 0.75, as in Hermes Agent."""
    target_ratio: float = 0.20
    """Share of the threshold kept verbatim as the recent tail."""
    protect_last_n: int = 20
    """Recent messages kept verbatim when they fit the tail's budget."""
    abort_on_summary_failure: bool = False
    """Kept for compatibility: a failed summary never drops anything here either way."""
    timeout: float = 120.0
    """Seconds the summary request may take."""


@dataclass
class StreamingConfig:
    """Answers streamed into chats by editing a message (Hermes Agent's ``streaming``)."""

    enabled: bool = False
    """Kept; our chat platforms always stream by edits for now."""
    transport: str = "auto"
    edit_interval: float = 0.0
    """Seconds between two edits of a streamed answer for every chat platform (0: each
    platform's own ``edit_interval``)."""
    buffer_threshold: int = 24
    cursor: str = " \u2589"
    fresh_final_after_seconds: float = 0.0


@dataclass
class PlatformsConfig:
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    slack: SlackConfig = field(default_factory=SlackConfig)
    mattermost: MattermostConfig = field(default_factory=MattermostConfig)
    matrix: MatrixConfig = field(default_factory=MatrixConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    whatsapp: WhatsAppConfig = field(default_factory=WhatsAppConfig)
    signal: SignalConfig = field(default_factory=SignalConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    irc: IrcConfig = field(default_factory=IrcConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    api_server: ApiServerConfig = field(default_factory=ApiServerConfig)
    webhook: WebhookServerConfig = field(default_factory=WebhookServerConfig)

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


_CHAT_SECTIONS = frozenset(
    {
        "telegram",
        "discord",
        "slack",
        "mattermost",
        "matrix",
        "irc",
        "homeassistant",
        "sms",
        "whatsapp",
        "signal",
        "email",
    }
)
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
    timezone: str = ""
    """IANA zone for times shown and scheduled (cron uses it unless ``cron.timezone``)."""
    session_reset: SessionResetConfig = field(default_factory=SessionResetConfig)
    reset_by_platform: dict[str, SessionResetOverride] = field(default_factory=dict)
    """Per-platform reset policy (Hermes' ``reset_by_platform``); wins over ``reset_by_type``."""
    reset_by_type: dict[str, SessionResetOverride] = field(default_factory=dict)
    """Per-chat-type reset policy (``dm``, ``group``, ``channel``, ``thread``)."""
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    group_sessions_per_user: bool = True
    """In a group or channel each participant has a session of their own (Hermes Agent's
    default); false: everyone in it shares one. Top level or under ``gateway:``."""
    thread_sessions_per_user: bool = False
    """The same inside threads (forum topics, Discord/Slack threads), shared by default."""
    unauthorized_dm_behavior: UnauthorizedDm = "pair"
    """What strangers writing a DM get on every platform that does not say otherwise."""
    paths: HermesPaths = field(default_factory=lambda: HermesPaths(Path("~/.hermes").expanduser()))
    env: dict[str, str] = field(default_factory=dict, repr=False)
    """The merged .env + environment, for adapters that read their own variables."""
    warnings: list[str] = field(default_factory=list, repr=False)
    """Things a person should know at start (e.g. the Hermes Agent keys ignored here); the
    gateway logs them and publishes each as a Notice when it starts."""
    report: list[KeyReport] = field(default_factory=list, repr=False)
    """What became of every key and variable read (``hermes config check`` prints it)."""


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
    ("SLACK_BOT_TOKEN", "platforms.slack.token"),
    ("SLACK_APP_TOKEN", "platforms.slack.app_token"),
    ("SLACK_API_BASE", "platforms.slack.api_base"),
    ("SLACK_HOME_CHANNEL", "platforms.slack.home_channel"),
    ("SLACK_HOME_CHANNEL_THREAD_ID", "platforms.slack.home_thread_id"),
    ("SLACK_ALLOWED_USERS", "platforms.slack.allowed_users"),
    ("SLACK_ALLOW_ALL_USERS", "platforms.slack.allow_all_users"),
    ("SLACK_REQUIRE_MENTION", "platforms.slack.require_mention"),
    ("SLACK_FREE_RESPONSE_CHANNELS", "platforms.slack.free_response_channels"),
    ("SLACK_ALLOWED_CHANNELS", "platforms.slack.allowed_channels"),
    ("MATTERMOST_URL", "platforms.mattermost.url"),
    ("MATTERMOST_TOKEN", "platforms.mattermost.token"),
    ("MATTERMOST_HOME_CHANNEL", "platforms.mattermost.home_channel"),
    ("MATTERMOST_HOME_CHANNEL_THREAD_ID", "platforms.mattermost.home_thread_id"),
    ("MATTERMOST_ALLOWED_USERS", "platforms.mattermost.allowed_users"),
    ("MATTERMOST_ALLOW_ALL_USERS", "platforms.mattermost.allow_all_users"),
    ("MATTERMOST_REQUIRE_MENTION", "platforms.mattermost.require_mention"),
    ("MATTERMOST_FREE_RESPONSE_CHANNELS", "platforms.mattermost.free_response_channels"),
    ("MATTERMOST_ALLOWED_CHANNELS", "platforms.mattermost.allowed_channels"),
    ("MATTERMOST_REPLY_MODE", "platforms.mattermost.reply_mode"),
    ("MATRIX_HOMESERVER", "platforms.matrix.homeserver"),
    ("MATRIX_ACCESS_TOKEN", "platforms.matrix.token"),
    ("MATRIX_USER_ID", "platforms.matrix.user_id"),
    ("MATRIX_PASSWORD", "platforms.matrix.password"),
    ("MATRIX_DEVICE_ID", "platforms.matrix.device_id"),
    ("MATRIX_HOME_ROOM", "platforms.matrix.home_channel"),
    ("MATRIX_ALLOWED_USERS", "platforms.matrix.allowed_users"),
    ("MATRIX_ALLOW_ALL_USERS", "platforms.matrix.allow_all_users"),
    ("MATRIX_REQUIRE_MENTION", "platforms.matrix.require_mention"),
    ("MATRIX_FREE_RESPONSE_ROOMS", "platforms.matrix.free_response_rooms"),
    ("MATRIX_ALLOWED_ROOMS", "platforms.matrix.allowed_rooms"),
    ("MATRIX_AUTO_THREAD", "platforms.matrix.auto_thread"),
    ("MATRIX_MAX_MESSAGE_LENGTH", "platforms.matrix.max_message_length"),
    ("TWILIO_ACCOUNT_SID", "platforms.sms.account_sid"),
    ("TWILIO_AUTH_TOKEN", "platforms.sms.token"),
    ("TWILIO_PHONE_NUMBER", "platforms.sms.phone_number"),
    ("SMS_WEBHOOK_URL", "platforms.sms.webhook_url"),
    ("SMS_WEBHOOK_HOST", "platforms.sms.webhook_host"),
    ("SMS_WEBHOOK_PORT", "platforms.sms.webhook_port"),
    ("SMS_INSECURE_NO_SIGNATURE", "platforms.sms.insecure_no_signature"),
    ("SMS_ALLOWED_USERS", "platforms.sms.allowed_users"),
    ("SMS_ALLOW_ALL_USERS", "platforms.sms.allow_all_users"),
    ("SMS_HOME_CHANNEL", "platforms.sms.home_channel"),
    ("WHATSAPP_CLOUD_PHONE_NUMBER_ID", "platforms.whatsapp.phone_number_id"),
    ("WHATSAPP_CLOUD_ACCESS_TOKEN", "platforms.whatsapp.token"),
    ("WHATSAPP_CLOUD_APP_SECRET", "platforms.whatsapp.app_secret"),
    ("WHATSAPP_CLOUD_VERIFY_TOKEN", "platforms.whatsapp.verify_token"),
    ("WHATSAPP_CLOUD_APP_ID", "platforms.whatsapp.app_id"),
    ("WHATSAPP_CLOUD_WABA_ID", "platforms.whatsapp.waba_id"),
    ("WHATSAPP_CLOUD_WEBHOOK_HOST", "platforms.whatsapp.webhook_host"),
    ("WHATSAPP_CLOUD_WEBHOOK_PORT", "platforms.whatsapp.webhook_port"),
    ("WHATSAPP_CLOUD_WEBHOOK_PATH", "platforms.whatsapp.webhook_path"),
    ("WHATSAPP_CLOUD_API_VERSION", "platforms.whatsapp.api_version"),
    ("WHATSAPP_CLOUD_ALLOWED_USERS", "platforms.whatsapp.allowed_users"),
    ("WHATSAPP_CLOUD_ALLOW_FROM", "platforms.whatsapp.allowed_users"),
    ("WHATSAPP_CLOUD_ALLOW_ALL_USERS", "platforms.whatsapp.allow_all_users"),
    ("WHATSAPP_CLOUD_HOME_CHANNEL", "platforms.whatsapp.home_channel"),
    ("SIGNAL_HTTP_URL", "platforms.signal.http_url"),
    ("SIGNAL_ACCOUNT", "platforms.signal.account"),
    ("SIGNAL_ALLOWED_USERS", "platforms.signal.allowed_users"),
    ("SIGNAL_GROUP_ALLOWED_USERS", "platforms.signal.group_allowed_users"),
    ("SIGNAL_ALLOW_ALL_USERS", "platforms.signal.allow_all_users"),
    ("SIGNAL_REQUIRE_MENTION", "platforms.signal.require_mention"),
    ("SIGNAL_IGNORE_STORIES", "platforms.signal.ignore_stories"),
    ("SIGNAL_HOME_CHANNEL", "platforms.signal.home_channel"),
    ("EMAIL_ADDRESS", "platforms.email.address"),
    ("EMAIL_PASSWORD", "platforms.email.password"),
    ("EMAIL_IMAP_HOST", "platforms.email.imap_host"),
    ("EMAIL_IMAP_PORT", "platforms.email.imap_port"),
    ("EMAIL_SMTP_HOST", "platforms.email.smtp_host"),
    ("EMAIL_SMTP_PORT", "platforms.email.smtp_port"),
    ("EMAIL_POLL_INTERVAL", "platforms.email.poll_interval"),
    ("EMAIL_HOME_ADDRESS", "platforms.email.home_channel"),
    ("EMAIL_ALLOWED_USERS", "platforms.email.allowed_users"),
    ("EMAIL_ALLOW_ALL_USERS", "platforms.email.allow_all_users"),
    ("EMAIL_TRUST_FROM_HEADER", "platforms.email.trust_from_header"),
    ("EMAIL_AUTHSERV_ID", "platforms.email.authserv_id"),
    ("IRC_SERVER", "platforms.irc.server"),
    ("IRC_PORT", "platforms.irc.port"),
    ("IRC_NICKNAME", "platforms.irc.nickname"),
    ("IRC_CHANNEL", "platforms.irc.channel"),
    ("IRC_USE_TLS", "platforms.irc.use_tls"),
    ("IRC_SERVER_PASSWORD", "platforms.irc.server_password"),
    ("IRC_NICKSERV_PASSWORD", "platforms.irc.nickserv_password"),
    ("IRC_SASL_USERNAME", "platforms.irc.sasl_username"),
    ("IRC_SASL_PASSWORD", "platforms.irc.sasl_password"),
    ("IRC_HOME_CHANNEL", "platforms.irc.home_channel"),
    ("IRC_ALLOWED_USERS", "platforms.irc.allowed_users"),
    ("IRC_ALLOW_ALL_USERS", "platforms.irc.allow_all_users"),
    ("HASS_TOKEN", "platforms.homeassistant.token"),
    ("HASS_URL", "platforms.homeassistant.url"),
    ("HASS_ALLOWED_USERS", "platforms.homeassistant.allowed_users"),
    ("HASS_ALLOW_ALL_USERS", "platforms.homeassistant.allow_all_users"),
    ("HASS_HOME_CHANNEL", "platforms.homeassistant.home_channel"),
    ("API_SERVER_ENABLED", "platforms.api_server.enabled"),
    ("API_SERVER_HOST", "platforms.api_server.host"),
    ("API_SERVER_PORT", "platforms.api_server.port"),
    ("API_SERVER_KEY", "platforms.api_server.key"),
    # Hermes Agent's names for settings we have (same meaning, same default).
    ("HERMES_TOOL_PROGRESS_MODE", "display.tool_progress"),
    ("HERMES_GATEWAY_BUSY_INPUT_MODE", "gateway.busy_mode"),
    ("HERMES_GATEWAY_BUSY_ACK_ENABLED", "gateway.busy_ack"),
    ("HERMES_GATEWAY_BUSY_STEER_ACK_ENABLED", "gateway.busy_steer_ack"),
    ("HERMES_MAX_ITERATIONS", "agent.max_iterations"),
    ("TERMINAL_CWD", "agent.cwd"),
    ("TERMINAL_TIMEOUT", "agent.terminal_timeout"),
    ("SESSION_IDLE_MINUTES", "session_reset.idle_minutes"),
    ("SESSION_RESET_HOUR", "session_reset.at_hour"),
    ("TELEGRAM_REQUIRE_MENTION", "platforms.telegram.require_mention"),
    ("TELEGRAM_HOME_CHANNEL_THREAD_ID", "platforms.telegram.home_thread_id"),
    ("DISCORD_REQUIRE_MENTION", "platforms.discord.require_mention"),
    ("DISCORD_AUTO_THREAD", "platforms.discord.auto_thread"),
    ("DISCORD_FREE_RESPONSE_CHANNELS", "platforms.discord.free_response_channels"),
    ("DISCORD_ALLOWED_CHANNELS", "platforms.discord.allowed_channels"),
    ("DISCORD_HOME_CHANNEL_THREAD_ID", "platforms.discord.home_thread_id"),
    ("API_SERVER_MODEL_NAME", "platforms.api_server.model_name"),
    ("API_SERVER_CORS_ORIGINS", "platforms.api_server.cors_origins"),
    ("WEBHOOK_ENABLED", "platforms.webhook.enabled"),
    ("WEBHOOK_PORT", "platforms.webhook.port"),
    ("WEBHOOK_SECRET", "platforms.webhook.secret"),
)

_OTHER_ENV = frozenset({"HERMES_HOME", "TZ"})
"""Variables we read outside ``ENV_KEYS`` (the home's path; cron's zone fallback)."""


def _legacy_tool_progress(value: str) -> str:
    """Hermes Agent's old ``HERMES_TOOL_PROGRESS=true|false`` switch: true is ``all``."""
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return "all"
    if lowered in {"0", "false", "no"}:
        return "off"
    return lowered


def _busy_input(value: str) -> str:
    return value.strip().lower()


_ENV_TRANSFORMS: dict[str, Any] = {
    "HERMES_TOOL_PROGRESS": _legacy_tool_progress,
    "HERMES_TOOL_PROGRESS_MODE": _legacy_tool_progress,
    "HERMES_GATEWAY_BUSY_INPUT_MODE": _busy_input,
}

_NOT_SETTABLE = {"paths", "env", "warnings", "report"}

_POSITIVE = (0.0, False)
"""``(minimum, minimum allowed)``: above zero."""

# Numbers beyond "not negative": (owning class, field) -> (minimum, whether the minimum itself is
# allowed, maximum or None). Subclasses inherit their base's limits (ChatPlatformConfig's).
_LIMITS: dict[tuple[type, str], tuple[float, bool, float | None]] = {
    (ModelConfig, "timeout"): (*_POSITIVE, None),
    (ModelConfig, "connect_timeout"): (*_POSITIVE, None),
    (AgentConfig, "max_iterations"): (1, True, None),
    (AgentConfig, "terminal_timeout"): (*_POSITIVE, None),
    (AgentConfig, "tool_output_cap"): (1, True, None),
    (GatewayConfig, "loop_lag_threshold_ms"): (*_POSITIVE, None),
    (GatewayConfig, "approval_timeout"): (*_POSITIVE, None),
    (TelegramConfig, "reconnect_initial"): (*_POSITIVE, None),
    (TelegramConfig, "reconnect_cap"): (*_POSITIVE, None),
    (EmailConfig, "imap_port"): (1, True, 65535),
    (EmailConfig, "smtp_port"): (1, True, 65535),
    (EmailConfig, "poll_interval"): (*_POSITIVE, None),
    (EmailConfig, "idle_refresh"): (*_POSITIVE, None),
    (EmailConfig, "reconnect_initial"): (*_POSITIVE, None),
    (EmailConfig, "reconnect_cap"): (*_POSITIVE, None),
    (EmailConfig, "timeout"): (*_POSITIVE, None),
    (IrcConfig, "port"): (0, True, 65535),
    (HomeAssistantConfig, "message_limit"): (1, True, None),
    (HomeAssistantConfig, "reconnect_initial"): (*_POSITIVE, None),
    (HomeAssistantConfig, "reconnect_cap"): (*_POSITIVE, None),
    (IrcConfig, "max_message_length"): (1, True, 510),
    (IrcConfig, "flood_burst"): (1, True, None),
    (IrcConfig, "connect_timeout"): (*_POSITIVE, None),
    (IrcConfig, "ping_interval"): (*_POSITIVE, None),
    (IrcConfig, "reconnect_initial"): (*_POSITIVE, None),
    (IrcConfig, "reconnect_cap"): (*_POSITIVE, None),
    (ApiServerConfig, "port"): (0, True, 65535),
    (ApiServerConfig, "max_concurrency"): (1, True, None),
    (ApiServerConfig, "max_body_bytes"): (1, True, None),
    (WebhookServerConfig, "port"): (0, True, 65535),
    (SmsConfig, "webhook_port"): (0, True, 65535),
    (SmsConfig, "segments_per_message"): (1, True, 10),
    (SmsConfig, "max_segments"): (1, True, None),
    (WhatsAppConfig, "webhook_port"): (0, True, 65535),
    (SessionResetConfig, "at_hour"): (0, True, 23),
    (SessionResetConfig, "idle_minutes"): (1, True, None),
    (ModelConfig, "context_length"): (0, True, None),
    (SessionResetOverride, "at_hour"): (0, True, 23),
    (SessionResetOverride, "idle_minutes"): (1, True, None),
    (CompressionConfig, "threshold"): (0, False, 1),
    (CompressionConfig, "target_ratio"): (0, False, 1),
    (CompressionConfig, "timeout"): (*_POSITIVE, None),
    (ApiServerConfig, "responses_keep"): (1, True, None),
}


def _check_limits(owner: type, name: str, number: Any, key: str, source: str) -> None:
    """Refuse a number outside its field's range (see ``_LIMITS``)."""
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return
    for cls in owner.__mro__:
        limits = _LIMITS.get((cls, name))
        if limits is None:
            continue
        low, inclusive, high = limits
        if number < low or (number == low and not inclusive):
            relation = "at least" if inclusive else "greater than"
            raise ConfigError(key, source, f"must be {relation} {low:g}, got {number!r}")
        if high is not None and number > high:
            raise ConfigError(key, source, f"must be at most {high:g}, got {number!r}")
        return


def load_config(paths: HermesPaths | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read every source and return validated settings, or raise ConfigError.

    Every wrong setting is collected and raised together (:class:`ConfigErrors` when there are
    several); only an unreadable file stops the reading at once.
    """
    config, errors = inspect_config(paths, environ, strict=True)
    _raise_collected(errors)
    return config


def inspect_config(
    paths: HermesPaths | None = None,
    environ: dict[str, str] | None = None,
    *,
    strict: bool = False,
) -> tuple[Config, list[ConfigError]]:
    """The settings as far as they could be applied, every error, and ``config.report``.

    ``hermes config check`` uses this to show everything at once; with ``strict`` an
    unreadable file raises at once (nothing else can be trusted then).
    """
    base_env = dict(os.environ if environ is None else environ)
    paths = paths or HermesPaths.from_env(base_env)
    errors: list[ConfigError] = []
    source = str(paths.config_file)
    try:
        dotenv = _read_dotenv(paths.env_file, errors)
    except ConfigError as exc:
        if strict:
            raise
        errors.append(exc)
        dotenv = {}
    env = {**dotenv, **base_env}
    config = Config(paths=paths, env=env)
    try:
        raw = _read_yaml(paths.config_file)
    except ConfigError as exc:
        if strict:
            raise
        errors.append(exc)
        raw = {}

    explicit: set[str] = set()
    _apply_yaml(config, raw, source, errors, explicit)
    _apply_env(config, env, dotenv, base_env, paths, errors, explicit)
    _finish(config, env, source, errors, explicit)
    reported = {r.key for r in config.report if r.status == "error"}
    config.report.extend(
        KeyReport(e.key, e.source, "error", e.reason)
        for e in errors
        if e.key not in reported and not e.source.startswith("environment variable")
    )
    return config, errors


def _apply_yaml(
    config: Config,
    raw: dict[str, Any],
    source: str,
    errors: list[ConfigError],
    explicit: set[str],
) -> None:
    """Our keys as before, then Hermes Agent's keys mapped onto ours (see config_hermes)."""
    tr = translate(raw, _is_ours)
    seen: list[str] = []
    _apply_mapping(config, tr.native, prefix="", source=source, errors=errors, seen=seen)
    report = config.report
    for key in seen:
        explicit.add(key)
        report.append(KeyReport(key, source, _status(key)))
    for move in tr.moves:
        try:
            _set_path(config, move.target, move.value, key=move.key, source=source)
        except ConfigError as exc:
            _collect(errors, exc)
            continue
        explicit.add(move.target)
        detail = move.detail or (f"as {move.target}" if move.target != move.key else "")
        report.append(KeyReport(move.key, source, _status(move.target), detail))
        if move.detail:
            config.warnings.append(f"{move.key}: {move.detail}")
    for key in tr.accepted:
        report.append(KeyReport(key, source, "honoured"))
    for key, why in tr.errors:
        errors.append(ConfigError(key, source, why))
    for key, candidates in tr.unknown:
        close = difflib.get_close_matches(key.rsplit(".", 1)[-1], candidates, n=1)
        hint = f" (did you mean '{key.rsplit('.', 1)[0]}.{close[0]}'?)" if close else ""
        errors.append(ConfigError(key, source, f"unknown key{hint}"))
    for key, why in tr.ignored:
        report.append(KeyReport(key, source, "ignored", why))
    ignored = [key for key, _ in tr.ignored]
    if ignored:
        config.warnings.insert(
            0,
            "Hermes Agent settings not supported here, ignored: "
            + summarize_ignored(ignored)
            + " (hermes config check lists them)",
        )


def _status(dotted: str) -> KeyStatus:
    return "accepted" if not_enforced(dotted) else "honoured"


def _apply_env(
    config: Config,
    env: dict[str, str],
    dotenv: dict[str, str],
    base_env: dict[str, str],
    paths: HermesPaths,
    errors: list[ConfigError],
    explicit: set[str],
) -> None:
    """``ENV_KEYS`` onto the settings; every ``.env`` variable gets a line in the report."""
    env_file = str(paths.env_file)

    def where(var: str) -> str:
        return env_file if var in dotenv and var not in base_env else "environment"

    used: set[str] = set(_OTHER_ENV)
    for var, dotted in ENV_KEYS:
        value = env.get(var)
        if not value:
            continue
        used.add(var)
        transform = _ENV_TRANSFORMS.get(var)
        try:
            _set_dotted(
                config,
                dotted,
                transform(value) if transform else value,
                source=f"environment variable {var}",
            )
        except ConfigError as exc:
            _collect(errors, exc)
            config.report.append(KeyReport(var, where(var), "error", exc.reason))
            continue
        explicit.add(dotted)
        detail = f"as {dotted}"
        config.report.append(KeyReport(var, where(var), _status(dotted), detail))
    backend = env.get("TERMINAL_ENV", "").strip()
    if backend:
        used.add("TERMINAL_ENV")
        if backend.lower() == "local":
            config.report.append(KeyReport("TERMINAL_ENV", where("TERMINAL_ENV"), "honoured"))
        else:
            reason = (
                f"{backend!r} is not supported here: commands would run directly on this "
                "machine, not in that sandbox; remove it or set it to local"
            )
            errors.append(ConfigError("TERMINAL_ENV", where("TERMINAL_ENV"), reason))
            config.report.append(KeyReport("TERMINAL_ENV", where("TERMINAL_ENV"), "error", reason))
    provider = OPENAI_COMPATIBLE_PROVIDERS.get(config.model.provider.strip().lower())
    if provider is not None:
        used.update(provider[1])
    ours = sorted({var for var, _ in ENV_KEYS} | _OTHER_ENV)
    for var in dotenv:
        if var in used:
            if var in _OTHER_ENV or (provider is not None and var in provider[1]):
                config.report.append(KeyReport(var, env_file, "honoured"))
            continue
        if var in ours:
            config.report.append(KeyReport(var, env_file, "honoured", "empty"))
        elif hermes_env_known(var):
            config.report.append(KeyReport(var, env_file, "ignored", "not supported here"))
        else:
            close = difflib.get_close_matches(var, ours, n=1, cutoff=0.88)
            if close:
                reason = f"unknown variable (did you mean {close[0]}?)"
                errors.append(ConfigError(var, env_file, reason))
                config.report.append(KeyReport(var, env_file, "error", reason))
            else:
                config.report.append(
                    KeyReport(var, env_file, "ignored", "not a setting of ours (kept in env)")
                )


def _finish(
    config: Config,
    env: dict[str, str],
    source: str,
    errors: list[ConfigError],
    explicit: set[str],
) -> None:
    """Settings that depend on others: Hermes Agent's rules, then the cross-checks."""
    platforms = config.platforms
    if env.get("API_SERVER_KEY"):
        platforms.api_server.enabled = True  # Hermes: the key alone turns the API on
    for name in sorted(_CHAT_SECTIONS):
        section = platforms.chat(name)
        if section is None:
            continue
        if name == "email":
            # No pairing codes by mail: From: is forgeable and a reply to a stranger is
            # backscatter (Hermes Agent drops unlisted senders before its pairing too).
            section.unauthorized_dm = "ignore"
            # Addresses are compared as written in lower case (the adapter lowers senders).
            section.allowed_users = [u.strip().lower() for u in section.allowed_users]
        elif f"platforms.{name}.unauthorized_dm" not in explicit:
            section.unauthorized_dm = config.unauthorized_dm_behavior
        interval = config.streaming.edit_interval
        if interval > 0 and f"platforms.{name}.edit_interval" not in explicit:
            section.edit_interval = interval
    platforms.whatsapp.allowed_users = [_wa_id(u) for u in platforms.whatsapp.allowed_users]
    irc = platforms.irc
    # IRC compares nicks without case: fold the allowlist as inbound folds the sender.
    irc.allowed_users = [u if u == "*" else irc.fold(u.strip()) for u in irc.allowed_users]
    irc.channel = [c.strip() for c in irc.channel if c.strip()]
    if not irc.home_channel and irc.channel:
        irc.home_channel = irc.channel[0]  # Hermes: IRC_HOME_CHANNEL defaults to IRC_CHANNEL
    hass = platforms.homeassistant
    if hass.watching and HA_SYSTEM_USER not in hass.allowed_users:
        # Hermes: state changes come from Home Assistant itself, authenticated by the token.
        hass.allowed_users = [*hass.allowed_users, HA_SYSTEM_USER]
    _resolve_provider(config, env)
    for key, zone in (("cron.timezone", config.cron.timezone), ("timezone", config.timezone)):
        if zone and not _known_zone(zone):
            errors.append(
                ConfigError(key, source, f"{zone!r} is not a known time zone (e.g. Europe/Berlin)")
            )
    if config.personality and config.personality not in config.personalities:
        known = ", ".join(sorted(config.personalities)) or "none defined"
        errors.append(
            ConfigError(
                "personality",
                source,
                f"{config.personality!r} is not in 'personalities' ({known})",
            )
        )


def _wa_id(entry: str) -> str:
    """A WhatsApp allowlist entry as the Cloud API names users (a bare wa_id: digits): Hermes
    Agent accepts ``+1 555-123``, ``15551234567@s.whatsapp.net`` and the like."""
    if entry.strip() == "*":
        return "*"
    digits = re.sub(r"\D", "", entry.split("@", 1)[0])
    return digits or entry


def _resolve_provider(config: Config, env: dict[str, str]) -> None:
    """``model.provider`` as Hermes Agent names it: an OpenAI-compatible provider's address
    and key variable fill an empty ``base_url``/``api_key``; others are named in a warning."""
    model = config.model
    name = model.provider.strip().lower()
    if not name or name == "custom" or model.base_url:
        return
    known = OPENAI_COMPATIBLE_PROVIDERS.get(name)
    if known is None:
        why = (
            f"{model.provider!r} is not an OpenAI-compatible provider this gateway can reach "
            "by name; set model.base_url (and OPENAI_API_KEY) to use it"
        )
        config.warnings.append(f"model.provider {why}")
        config.report[:] = [
            KeyReport(r.key, r.source, "ignored", why) if r.key == "model.provider" else r
            for r in config.report
        ]
        return
    model.base_url, key_vars = known
    if not model.api_key:
        model.api_key = next((env[v] for v in key_vars if env.get(v)), "")


def _known_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return False
    return True


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """A settings class's field types (evaluated once: every key of a file asks)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _is_ours(dotted: str) -> bool:
    """Whether ``dotted`` names one of our settings (any key below a mapping setting is)."""
    target: Any = Config
    for part in dotted.split("."):
        if get_origin(target) is dict:
            return True
        if not (isinstance(target, type) and dataclasses.is_dataclass(target)):
            return False
        names = {f.name for f in dataclasses.fields(target)} - _NOT_SETTABLE
        if part not in names:
            return False
        target = _hints(target)[part]
    return True


def _read_text(path: Path) -> str:
    """A settings file's text; unreadable or not UTF-8 is a ConfigError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "(file)",
            str(path),
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8",
        ) from None
    except OSError as exc:
        raise ConfigError("(file)", str(path), f"cannot be read: {exc.strerror or exc}") from None


def _read_dotenv(path: Path, errors: list[ConfigError]) -> dict[str, str]:
    """``KEY=value`` lines; a line python-dotenv cannot parse is an error naming its number
    (dotenv itself only logs a warning and drops it, so a token would silently go missing)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    text = _read_text(path)
    before = len(errors)
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            # Name the key, never the value: the line may hold a token.
            name, eq, _ = binding.original.string.strip().partition("=")
            what = f"the line for {name.strip()[:40]!r}" if eq and name.strip() else "this line"
            errors.append(
                ConfigError(
                    f"line {binding.original.line}",
                    str(path),
                    f"cannot parse {what} (expected KEY=value, quotes closed)",
                )
            )
    if len(errors) > before:
        return {}  # the load fails anyway; dotenv would only repeat the warning on stderr
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml

    text = _read_text(path)
    try:
        # libyaml's parser when present: a full Hermes Agent config.yaml (~800 lines) takes
        # ~25 ms instead of ~200 ms with the pure-Python one, and the start waits for it.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(top)"
        reason = " ".join(str(exc).split())  # one line: PyYAML's message spans several
        raise ConfigError(where, str(path), f"not valid YAML: {reason}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("(top)", str(path), "must be a mapping of settings")
    return data


def _apply_mapping(
    target: Any,
    raw: dict[str, Any],
    *,
    prefix: str,
    source: str,
    errors: list[ConfigError],
    seen: list[str] | None = None,
) -> None:
    """Set ``raw`` onto the dataclass ``target``, appending every wrong key to ``errors`` and
    every key set to ``seen``."""
    fields = {f.name: f for f in dataclasses.fields(target) if f.name not in _NOT_SETTABLE}
    hints = _hints(type(target))
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            names = set(fields) | hermes_children(prefix)
            close = difflib.get_close_matches(str(key), sorted(names), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            errors.append(ConfigError(dotted, source, f"unknown key{hint}"))
            continue
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                errors.append(ConfigError(dotted, source, "must be a mapping"))
                continue
            _apply_mapping(
                current, value, prefix=f"{dotted}.", source=source, errors=errors, seen=seen
            )
            continue
        try:
            coerced = _coerce(value, hints[key], dotted, source)
            _check_limits(type(target), key, coerced, dotted, source)
        except ConfigError as exc:
            _collect(errors, exc)
            continue
        setattr(target, key, coerced)
        if seen is not None:
            seen.append(dotted)


def _set_dotted(config: Config, dotted: str, value: str, *, source: str) -> None:
    _set_path(config, dotted, value, key=dotted, source=source)


def _set_path(config: Config, dotted: str, value: Any, *, key: str, source: str) -> None:
    """Set one setting; a wrong value is reported under ``key``, the name the user wrote."""
    *parents, last = dotted.split(".")
    target: Any = config
    for part in parents:
        target = getattr(target, part)
    hints = _hints(type(target))
    coerced = _coerce(value, hints[last], key, source)
    _check_limits(type(target), last, coerced, key, source)
    setattr(target, last, coerced)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against a field's type; accept strings for numbers and booleans."""
    origin = get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(key, source, "must be a mapping")
        instance = hint()
        errors: list[ConfigError] = []
        _apply_mapping(instance, value, prefix=f"{key}.", source=source, errors=errors)
        _raise_collected(errors)
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
        if hint is int and isinstance(value, float) and value.is_integer():
            value = int(value)  # 3.0 is a whole number
        try:
            number = hint(value)
        except (TypeError, ValueError, OverflowError):
            what = "a whole number" if hint is int else "a number"
            raise ConfigError(key, source, f"must be {what}, got {value!r}") from None
        if hint is int and isinstance(value, float):
            raise ConfigError(key, source, f"must be a whole number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(key, source, f"must be a finite number, got {value!r}")
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
