"""How a chat platform wires one answer's delivery, in one place.

Every adapter that answers in chats stacks the same pieces around the delivery of the text
(streamed by edits, or sent once when final): ``MediaTurn`` (``MEDIA:/path`` lines become
uploads, only from the chat's workspace) and ``TypingTurn`` (the typing indicator refreshed
until the answer is final, cancelled when the adapter stops). What differs per platform is
only its callables and numbers, which an adapter gives once to :class:`AnswerTurns`; each
``begin_turn`` then asks it for the turn.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hermes_gateway.delivery.media_turn import MediaTurn, workspace_refusal
from hermes_gateway.delivery.rate_gate import RateGate
from hermes_gateway.delivery.stream_consumer import MessageTransport, StreamingTurn
from hermes_gateway.delivery.tool_progress import ToolProgressMode
from hermes_gateway.delivery.typing import TypingTurn
from hermes_gateway.models import SessionSource
from hermes_gateway.platforms.base import TurnDelivery

__all__ = ["AnswerTurns", "ChatCall", "Pacing"]

ChatCall = Callable[[str], Awaitable[None]]
"""Something done in a chat, named by the platform's target (typing on, typing off)."""


class Pacing(Protocol):
    """A platform's streaming settings (its ``ChatPlatformConfig``), read at each turn."""

    edit_interval: float

    def progress_mode(self, display: Any) -> ToolProgressMode: ...


@dataclass(eq=False)
class AnswerTurns:
    """One platform's answer wiring: text delivery -> uploads -> typing indicator.

    ``upload`` None: the platform does not upload files named by ``MEDIA:`` lines. ``typing``
    None: no indicator is kept alive. ``typing_off`` withdraws the indicator once the answer is
    delivered (where the platform would show it until its own timeout). The callables are
    looked up on the adapter when called, so a gate or connection replaced on restart is the
    one used.
    """

    platform: str
    """The adapter's name: the workspace boundary's platform and the typing task's name."""
    home: Path
    """HERMES_HOME, whose chat workspaces bound what an answer may upload."""
    upload: Callable[[str, Path], Awaitable[None]] | None = None
    typing: ChatCall | None = None
    typing_every: float = 0.0
    """Seconds between typing refreshes (the platform shows one for a few seconds)."""
    typing_off: ChatCall | None = None
    pacing: Pacing | None = None
    """Edit interval and tool-progress mode of streamed answers (with ``display``)."""
    display: Any = None
    """The gateway's ``display`` settings (the tool-progress default for every platform)."""
    live: weakref.WeakSet[TypingTurn] = field(default_factory=weakref.WeakSet, init=False)
    """Turns whose typing refresher may still run (cancelled by :meth:`cancel`)."""

    def streamed(
        self, transport: MessageTransport, gate: RateGate, source: SessionSource, chat: str
    ) -> TurnDelivery:
        """For a platform that can edit: the answer streamed into one message plus tool
        progress, sent through the chat's ``gate``, paced by ``pacing``."""
        assert self.pacing is not None, f"{self.platform}: streamed answers need its pacing"
        streaming = StreamingTurn(
            transport,
            chat,
            gate,
            tool_progress=self.pacing.progress_mode(self.display),
            edit_interval=self.pacing.edit_interval,
        )
        return self.around(streaming, source, chat)

    def around(self, inner: TurnDelivery, source: SessionSource, chat: str) -> TurnDelivery:
        """``inner`` (a platform that cannot edit gives ``FinalOnlyDelivery``: the answer
        sent once, complete) with this platform's uploads and typing indicator around it."""
        turn = inner
        if self.upload is not None:
            turn = MediaTurn(
                turn,
                chat,
                send_file=self.upload,
                refusal=workspace_refusal(self.home, self.platform, source.session_key),
            )
        if self.typing is not None:
            typing, off = self.typing, self.typing_off
            typed = TypingTurn(
                turn,
                lambda: typing(chat),
                self.typing_every,
                name=f"{self.platform}-typing:{chat}",
                off=None if off is None else (lambda: off(chat)),
            )
            self.live.add(typed)
            turn = typed
        return turn

    def cancel(self) -> None:
        """Stop every running turn's typing refresher (the adapter is stopping)."""
        for turn in list(self.live):
            turn.cancel()
