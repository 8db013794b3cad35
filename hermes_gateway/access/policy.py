"""Who may talk to the agent: deny by default.

Order of checks for a remote message: the platform's allow-all flag or the global one ->
the platform's allowlist -> GATEWAY_ALLOWED_USERS -> approved pairings (added by the pairing
feature through ``extra_checks``) -> deny. The local terminal is always allowed: whoever sits
at it already owns the machine.

Denied senders are logged with a hashed id so logs can correlate attempts without holding
anyone's identity.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

from hermes_gateway.config import Config, DiscordConfig
from hermes_gateway.models import LOCAL_PLATFORM, MessageEvent, SessionSource

log = logging.getLogger(__name__)

DenyHandler = Callable[[MessageEvent], Awaitable[None]]
ExtraCheck = Callable[[SessionSource], Awaitable[bool]]


def hash_id(value: str | None) -> str:
    """A stable, non-reversible short form of a user id for logs."""
    if not value:
        return "-"
    return hashlib.sha256(f"hermes:{value}".encode()).hexdigest()[:12]


class AccessPolicy:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.extra_checks: list[ExtraCheck] = []
        """Further ways in (e.g. approved pairings), consulted after the allowlists."""
        self.on_denied: DenyHandler | None = None
        """Called for a denied message (e.g. to offer a pairing code in a DM)."""

    def allowlisted(self, source: SessionSource, roles: tuple[str, ...] = ()) -> bool:
        """Allow-all flags and allowlists only (no pairing), with Hermes Agent's rules: the
        platform's allow-all flag opens it; ``*`` in an allowlist is everyone; the global
        allow-all (GATEWAY_ALLOW_ALL_USERS) counts only when no allowlist is set at all, so
        naming users is never silently overridden."""
        if source.platform == LOCAL_PLATFORM:
            return True
        section = self.config.platforms.chat(source.platform)
        if section is not None and section.allow_all_users:
            return True
        listed = [
            *(section.allowed_users if section is not None else ()),
            *self.config.allowed_users,
        ]
        if not listed and self.config.allow_all_users:
            return True
        user = source.user_id or ""
        if "*" in listed or (user and user in listed):
            return True
        allowed_roles = set(section.allowed_roles) if isinstance(section, DiscordConfig) else set()
        return bool(allowed_roles and allowed_roles.intersection(roles))

    async def vouched(self, source: SessionSource, roles: tuple[str, ...] = ()) -> bool:
        """Let in as a person, not as "anyone": the user's id in an allowlist (``*`` and the
        allow-all flags do not count), one of their roles allowed, or an approved pairing.

        For commands that change the gateway for everyone (``/sethome``): in a bot open to
        all, a passer-by must not redirect where cron results go.
        """
        if source.platform == LOCAL_PLATFORM:
            return True
        section = self.config.platforms.chat(source.platform)
        listed = {
            *(section.allowed_users if section is not None else ()),
            *self.config.allowed_users,
        }
        listed.discard("*")
        if source.user_id and source.user_id in listed:
            return True
        allowed_roles = set(section.allowed_roles) if isinstance(section, DiscordConfig) else set()
        if allowed_roles and allowed_roles.intersection(roles):
            return True
        for check in self.extra_checks:
            if await check(source):
                return True
        return False

    async def is_allowed(self, source: SessionSource, roles: tuple[str, ...] = ()) -> bool:
        if self.allowlisted(source, roles):
            return True
        for check in self.extra_checks:
            if await check(source):
                return True
        return False

    async def authorize(self, event: MessageEvent) -> bool:
        """The runner's gate: False means the message never reaches the agent."""
        if event.from_operator or await self.is_allowed(event.source, event.roles):
            return True
        log.info(
            "denied %s user %s in %s chat",
            event.source.platform,
            hash_id(event.source.user_id),
            event.source.chat_type,
        )
        if self.on_denied is not None:
            try:
                await self.on_denied(event)
            except Exception:
                log.exception("deny handler failed")
        return False
