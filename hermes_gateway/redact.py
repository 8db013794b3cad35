"""Keeping secrets out of what chats, events and logs show.

A model endpoint is often configured with its credentials in the URL
(``https://user:pass@host/v1?api_key=...``), and exception texts from HTTP libraries repeat
URLs and sometimes headers. Everything that puts an endpoint or an exception text in front of
a person goes through :func:`redact`: URLs lose their userinfo and the values of query
parameters whose names look secret, and every secret the configuration holds (API keys, bot
tokens, webhook secrets) is masked wherever it appears, e.g. inside a Telegram
``/bot<token>/`` path. The secrets are registered once, when a gateway is built from its
config (:func:`register_config_secrets`), so the logging filter can use them too.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from hermes_gateway.config import Config

__all__ = [
    "MASK",
    "redact",
    "redact_url",
    "register_config_secrets",
    "register_secrets",
]

MASK = "***"

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"'`]+")
_SECRET_NAME = re.compile(
    r"(?i)(key|token|secret|passw|pwd|auth|sig|credential|session|cookie|bearer)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_SECRET_ENV = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD)")
_MIN_SECRET = 6
"""Shorter values are not masked: "abc" would blank out ordinary words."""

_lock = threading.Lock()
_known: frozenset[str] = frozenset()


def register_secrets(*values: str) -> None:
    """Remember values that must never be shown (empty and very short ones are ignored)."""
    global _known
    fresh = {v for v in values if v and len(v) >= _MIN_SECRET}
    if fresh - _known:
        with _lock:
            _known = _known | fresh


def register_config_secrets(config: Config) -> None:
    """Register every secret a config holds: model key, bot tokens, API key, webhook
    secrets, and any environment value whose name says it is one (``*_KEY``, ``*_TOKEN``)."""
    values = [
        config.model.api_key,
        config.platforms.telegram.token,
        config.platforms.discord.token,
        config.platforms.slack.token,
        config.platforms.slack.app_token,
        config.platforms.email.password,
        config.platforms.api_server.key,
        *(r.secret for r in config.platforms.api_server.webhooks.values()),
        *(v for k, v in config.env.items() if _SECRET_ENV.search(k)),
    ]
    for url in (config.model.base_url,):
        parts = urlsplit(url)
        if parts.password:
            values.append(parts.password)
    register_secrets(*values)


def redact_url(url: str) -> str:
    """``url`` without userinfo and with secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_NAME.search(k) for k, _ in pairs):
            query = urlencode(
                [(k, MASK if _SECRET_NAME.search(k) else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str, secrets: frozenset[str] | None = None) -> str:
    """``text`` with URLs cleaned (:func:`redact_url`), bearer credentials and every known
    secret masked."""
    if not text:
        return text
    out = _URL.sub(lambda m: redact_url(m.group()), text)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
    for secret in sorted(_known if secrets is None else secrets, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    return out
