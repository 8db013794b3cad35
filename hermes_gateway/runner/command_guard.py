"""The one guard every slash command passes: a platform's repeat of it is never run again.

Ordinary messages are deduplicated by the inbox; commands run at once and never reach it, so
without this a command a platform delivers again after a kill (see
:mod:`hermes_gateway.store.command_receipts` for how each platform does) would run twice.
The guard is platform-neutral: it needs only the message's platform id, which every adapter
already puts on the :class:`~hermes_gateway.models.MessageEvent` for the inbox. Commands
without one (the terminal, the API) pass untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from hermes_gateway import events as ev
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.store import SessionStore
from hermes_gateway.store.command_receipts import CommandReceipts, Receipt, receipt_key
from hermes_gateway.text import clean_surrogates, clip

__all__ = ["CUT_SHORT", "CommandGuard"]

log = logging.getLogger(__name__)

CUT_SHORT = (
    "⚠ Your /{command} was cut short by a restart and was not run again. "
    "Send it again if you still need it."
)
"""Told once for a command an earlier process died running (its effect is unknown, so
running it again could do it twice: told, nothing re-run, as for ``/background``)."""

Sender = Callable[[SessionSource, str, str], Awaitable[bool]]
Dropper = Callable[[MessageEvent, str], None]


class CommandGuard:
    """Receipts around each command run (see the module docstring).

    Args:
        store: Where the receipts live.
        bus: For the notice when the store refuses a receipt.
        send: Sends a whole message to a chat; False if it failed.
        dropped: Publishes ``MessageDropped`` for a repeat.
    """

    def __init__(self, store: SessionStore, bus: ev.EventBus, send: Sender, dropped: Dropper):
        self.receipts = CommandReceipts(store)
        self.bus = bus
        self._send = send
        self._dropped = dropped
        self._live: set[tuple[str, str]] = set()
        """Receipts of commands running in this process (a repeat of one is only dropped)."""
        self._unguarded = 0
        """Commands run unrecorded since the store last took a receipt (one notice for all)."""

    async def admit(self, event: MessageEvent, command: str) -> bool:
        """Record the command before it runs; False if it is a repeat (then dealt with here).

        When the store refuses the receipt (a full disk), the command runs unguarded: /stop,
        /help or /status must still work then, and a command that writes fails with its own
        clear error. Only a crash in that state could let the platform's repeat run it twice.
        """
        key = receipt_key(event)
        if key is None:
            return True
        platform = event.source.platform
        try:
            earlier = await self.receipts.claim(platform, key, clip(command, 64))
        except Exception as exc:
            if not self._unguarded:
                self.bus.publish(
                    ev.Notice(
                        text=f"Cannot record incoming commands ({exc}); they run without "
                        "protection against a platform delivering them twice.",
                        level="warning",
                        session_key=event.session_key,
                    )
                )
            self._unguarded += 1
            log.warning("/%s on %s runs unrecorded: %s", clip(command, 64), platform, exc)
            return True
        self._unguarded = 0
        if earlier is None:
            self._live.add((platform, key))
            return True
        await self._repeat(event, key, earlier)
        return False

    async def replying(self, event: MessageEvent, reply: str) -> None:
        """The command ran and ``reply`` is about to be sent: kept until it was."""
        key = receipt_key(event)
        if key is None or (event.source.platform, key) not in self._live:
            return  # no receipt (none wanted, or the store refused it)
        try:
            await self.receipts.answered(event.source.platform, key, reply)
        except Exception:
            log.exception("could not record the reply of a command")

    async def finished(self, event: MessageEvent, *, delivered: bool = True) -> None:
        """Done with the command (``delivered``: its reply, if any, reached the chat; if it
        did not, the receipt stays ``answered`` and a repeat delivers it)."""
        key = receipt_key(event)
        if key is None or (event.source.platform, key) not in self._live:
            return  # no receipt (none wanted, or the store refused it)
        self._live.discard((event.source.platform, key))
        if not delivered:
            return
        try:
            await self.receipts.done(event.source.platform, key)
        except Exception:
            log.exception("could not record a command as done")

    async def prune(self) -> None:
        """Forget old receipts (at start, as the inbox prunes its done rows)."""
        pruned = await self.receipts.prune()
        if pruned:
            log.debug("pruned %d old command receipt(s)", pruned)

    async def _repeat(self, event: MessageEvent, key: str, earlier: Receipt) -> None:
        platform = event.source.platform
        outcome = "dropped"
        if (platform, key) in self._live:
            outcome = "dropped (still running)"
        elif earlier.state == "answered" and earlier.reply:
            outcome = "its reply delivered again"
            if await self._send(event.source, earlier.reply, f"/{earlier.command} reply"):
                await self._done(platform, key)
        elif earlier.state != "done":
            outcome = "told it was cut short"
            text = CUT_SHORT.format(command=earlier.command)
            if await self._send(event.source, text, "a cut-short command notice"):
                await self._done(platform, key)
        log.info(
            "%s: a repeat of /%s (%s message %s) was not run again: %s",
            clean_surrogates(event.session_key),
            earlier.command,
            platform,
            clean_surrogates(clip(event.message_id or "", 40)),  # a forged id: a log line
            outcome,
        )
        self._dropped(event, "duplicate")

    async def _done(self, platform: str, key: str) -> None:
        try:
            await self.receipts.done(platform, key)
        except Exception:
            log.exception("could not record a command as done")
