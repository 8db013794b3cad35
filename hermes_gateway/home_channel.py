"""``/sethome``: make the chat it is sent from its platform's home channel.

As in Hermes Agent, the choice is saved in ``HERMES_HOME/.env`` as ``<PLATFORM>_HOME_CHANNEL``
(the chat) and ``<PLATFORM>_HOME_CHANNEL_THREAD_ID`` (the topic or thread, emptied when the
command comes from outside one), so a Hermes Agent home keeps working with both programs. The
running gateway takes it at once: the delivery router reads ``platforms.<name>.home_channel``
from the live config at each delivery, so the next cron result goes there without a restart.

Who may: Hermes Agent lets anyone who may talk to the bot. Here that holds for users let in by
name (an allowlist entry, an allowed Discord role, an approved pairing), not for anyone a bot
open to all (``*``, ``*_ALLOW_ALL_USERS``) lets in: in such a bot a passer-by could otherwise
send every cron result to their own chat (:meth:`AccessPolicy.vouched`). Strangers never reach
the command at all (the access check comes first).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from hermes_gateway.commands.registry import CommandContext, CommandResult
from hermes_gateway.config import ENV_KEYS, Config
from hermes_gateway.env_file import EnvFileError, update_env_file
from hermes_gateway.events import GatewayEvent

if TYPE_CHECKING:
    from hermes_gateway.access.policy import AccessPolicy
    from hermes_gateway.features import FeatureContext

__all__ = ["HomeChannelFeature", "home_variables"]

log = logging.getLogger(__name__)


_LABELS = {"irc": "IRC", "homeassistant": "Home Assistant"}


def label(platform: str) -> str:
    """A platform's name as people write it."""
    return _LABELS.get(platform, platform.capitalize())


def home_platforms() -> list[str]:
    """The platforms that have a home channel (the ones ``/sethome`` works on)."""
    found = [d.split(".")[1] for _, d in ENV_KEYS if d.endswith(".home_channel")]
    return list(dict.fromkeys(found))


def home_variables(platform: str) -> tuple[str, str | None] | None:
    """The ``.env`` names of a platform's home channel and its thread (None: it has none)."""
    names = {dotted: var for var, dotted in reversed(ENV_KEYS)}  # the first name wins
    chat = names.get(f"platforms.{platform}.home_channel")
    if chat is None:
        return None
    return chat, names.get(f"platforms.{platform}.home_thread_id")


class HomeChannelFeature:
    """Installs ``/sethome``."""

    name = "sethome"
    event_types: tuple[type[GatewayEvent], ...] = ()

    def __init__(self) -> None:
        self._config: Config | None = None
        self._policy: AccessPolicy | None = None

    def install(self, ctx: FeatureContext) -> None:
        self._config, self._policy = ctx.runner.config, ctx.policy
        ctx.runner.commands.command(
            "sethome",
            "Make this chat the platform's home channel (cron results go here)",
            aliases=("set-home",),
            category="Settings",
        )(self._sethome)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def describe(self, event: GatewayEvent) -> tuple[int, str] | None:
        return None

    async def _sethome(self, ctx: CommandContext) -> CommandResult:
        config, policy = self._config, self._policy
        assert config is not None and policy is not None
        source = ctx.source
        names = home_variables(source.platform)
        section = config.platforms.chat(source.platform)
        if names is None or section is None:
            labels = [label(p) for p in home_platforms()]
            where = ", ".join(labels[:-1]) + f" or {labels[-1]}"
            return CommandResult(
                f"/sethome works in a chat on {where}: send it there to make that chat the "
                "platform's home channel.",
                ok=False,
            )
        if not await policy.vouched(source, ctx.event.roles):
            log.info("/sethome refused on %s: sender not named in an allowlist", source.platform)
            return CommandResult(
                "Only a user named in the allowlist (or paired) can set the home channel.",
                ok=False,
            )
        chat_var, thread_var = names
        thread = source.thread_id or ""
        values: dict[str, str | None] = {chat_var: source.chat_id}
        add = [chat_var]
        if thread_var is not None:
            values[thread_var] = thread
            if thread:
                add.append(thread_var)
        try:
            await asyncio.to_thread(update_env_file, config.paths.env_file, values, add=add)
        except EnvFileError as exc:
            log.error("/sethome could not save: %s", exc)
            return CommandResult(f"Could not save the home channel: {exc}", ok=False)
        section.home_channel, section.home_thread_id = source.chat_id, thread
        config.env[chat_var] = source.chat_id
        platform = label(source.platform)
        text = (
            f"This chat is now the {platform} home channel: cron results and messages sent to "
            f"“{source.platform}” arrive here. Saved as {chat_var} in .env."
        )
        shadow = os.environ.get(chat_var)
        if shadow is not None and shadow != source.chat_id:
            text += (
                f" Note: {chat_var} is also set in the environment, which wins at the next start."
            )
        log.info("home channel of %s set (%s)", source.platform, chat_var)
        return CommandResult(text)
