"""Turning IRC ``PRIVMSG`` lines into the gateway's ``MessageEvent``.

Where the bot answers is decided here, with Hermes Agent's rules:

* a private message (the target is our nick): always; its session is the sender's nick;
* a channel message: when it starts with the bot's nick followed by ``:``, ``,`` or a space
  (``hermes-bot: hi``), case-insensitively; the nick is taken off the text. Other channel
  lines are handed over as not mentioned (the runner drops them) unless ``require_mention``
  is off. The session is the channel's (per participant when ``group_sessions_per_user``);
* CTCP ``ACTION`` (``/me``) becomes ``* nick text``; other CTCP requests are not messages.

Nicks and channels are compared folded (RFC 1459 case mapping): ``Alice`` and ``alice`` are
one user, so the user id and the DM's chat id are the folded nick. IRC has no message ids;
a server's IRCv3 ``msgid`` tag is used when it sends one.
"""

from __future__ import annotations

import itertools
import time

from hermes_gateway.config import IrcConfig
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.irc.protocol import Message, nick_of

__all__ = ["IrcInbound"]

_ADDRESS_MARKS = (":", ",", " ")


class IrcInbound:
    """Normalises PRIVMSGs for one bot (whose nick may change: collisions, NICK)."""

    def __init__(self, config: IrcConfig) -> None:
        self.config = config
        self.nick = config.nickname
        self._serial = itertools.count(1)
        self._boot = int(time.time() * 1000)

    def is_channel(self, target: str, chantypes: str = "#&") -> bool:
        return bool(target) and target[0] in chantypes

    def _strip_address(self, text: str) -> str | None:
        """The text without a leading ``nick:``/``nick,``/``nick `` address, or None."""
        for nick in dict.fromkeys((self.nick, self.config.nickname)):
            head = text[: len(nick) + 1]
            if (
                len(head) == len(nick) + 1
                and head[-1] in _ADDRESS_MARKS
                and IrcConfig.fold(head[:-1]) == IrcConfig.fold(nick)
            ):
                return text[len(nick) + 1 :].strip()
        return None

    def _message_id(self, msg: Message) -> str:
        msgid = msg.tags.get("msgid")
        if msgid:
            return msgid
        return f"{self._boot}-{next(self._serial)}"

    def normalize(self, msg: Message, chantypes: str = "#&") -> MessageEvent | None:
        """The event for a PRIVMSG, or None when it is nobody's message (CTCP, our own)."""
        if msg.command != "PRIVMSG" or len(msg.params) < 2:
            return None
        nick = nick_of(msg.source)
        if not nick or ("." in nick and "!" not in msg.source):
            return None  # from a server, not a user
        if IrcConfig.fold(nick) == IrcConfig.fold(self.nick):
            return None
        target, text = msg.params[0], msg.params[1]
        if text.startswith("\x01"):
            body = text.strip("\x01")
            if not body.upper().startswith("ACTION "):
                return None
            text = f"* {nick} {body[7:]}"
        user = IrcConfig.fold(nick)
        if self.is_channel(target, chantypes):
            stripped = self._strip_address(text)
            mentioned = stripped is not None or not self.config.require_mention
            source = SessionSource(
                "irc", IrcConfig.fold(target), "channel", None, user, nick, target
            )
            body = stripped if stripped is not None else text
        else:
            mentioned = True
            source = SessionSource("irc", user, "dm", None, user, nick, nick)
            body = text
        return MessageEvent(
            text=body.strip(),
            source=source,
            message_id=self._message_id(msg),
            mentioned=mentioned,
        )
