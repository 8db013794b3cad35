"""The Conversation pane: one session's transcript, with the answer streaming in.

Answers stream through ``Markdown.get_stream``, which batches updates that arrive faster than
frames, and the scroll container is anchored so it follows the answer until the user
scrolls up.

The pane receives the turn messages of every session: it keeps each session's answer in
progress (so switching sessions loses nothing) and shows those of ``session_key``. Its own
handlers and :meth:`show_session` (called by the screen) take one lock, so a transcript is
never rebuilt halfway through a delta.
"""

from __future__ import annotations

import asyncio

from textual import on
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from hermes_gateway.store import StoredMessage
from hermes_tui import gateway_messages as gm
from hermes_tui.widgets.follow import follow, unfollow


class UserMessage(Static):
    """What the person (or a remote user) wrote."""


class AgentResponse(Markdown):
    """One answer of the agent, rendered as Markdown."""


class OperatorMessage(Markdown):
    """What the operator wrote into a remote chat, as the bot."""


class CommandReply(Markdown):
    """The result of a slash command."""


class NoticeLine(Static):
    """Errors, retries and interruptions: not part of the conversation itself."""


class ConversationView(VerticalScroll):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._response: AgentResponse | None = None
        self._stream: MarkdownStream | None = None
        self.follow_paused = False
        """True while something must be read from its top (the first-run panel)."""
        self.session_key: str | None = None
        self.partial: dict[str, list[str]] = {}
        """The answer being written in each session."""
        self.turn_started_at: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def show_session(self, key: str, messages: list[StoredMessage]) -> None:
        """Show a session's stored transcript plus its answer in progress."""
        async with self._lock:
            self.session_key = key
            partial = "".join(self.partial.get(key, []))
            started = self.turn_started_at.get(key)
            if partial and messages and started is not None:
                last = messages[-1]
                if last.role == "assistant" and (last.created_at or 0) >= started:
                    partial = ""  # the answer was stored before its TurnFinished reached us
            await self.show_transcript(messages, partial)

    # --- gateway messages ----------------------------------------------------------------

    @on(gm.AgentDelta)
    async def _on_delta(self, message: gm.AgentDelta) -> None:
        event = message.event
        async with self._lock:
            self.partial.setdefault(event.session_key, []).append(event.text)
            if event.session_key == self.session_key:
                await self.append_delta(event.text)

    @on(gm.MessageReceived)
    async def _on_received(self, message: gm.MessageReceived) -> None:
        event = message.event
        async with self._lock:
            if event.session_key == self.session_key:
                await self.add_user(event.text, from_operator=event.from_operator)

    @on(gm.TurnStarted)
    async def _on_turn_started(self, message: gm.TurnStarted) -> None:
        event = message.event
        async with self._lock:
            self.partial[event.session_key] = []
            self.turn_started_at[event.session_key] = event.ts
            if event.session_key == self.session_key:
                await self.begin_answer()

    @on(gm.TurnFinished)
    async def _on_turn_finished(self, message: gm.TurnFinished) -> None:
        event = message.event
        async with self._lock:
            self.partial.pop(event.session_key, None)
            if event.session_key == self.session_key:
                await self.end_answer(event.text, interrupted=event.interrupted, error=event.error)

    @on(gm.CommandReplied)
    async def _on_command_replied(self, message: gm.CommandReplied) -> None:
        event = message.event
        if event.session_key != self.session_key or event.action is not None:
            return  # an action (quit, search) is the screen's to carry out
        async with self._lock:
            await self.add_command_reply(event.text, ok=event.ok)

    @on(gm.Notice)
    async def _on_notice(self, message: gm.Notice) -> None:
        event = message.event
        if event.session_key is None or event.session_key == self.session_key:
            async with self._lock:
                await self.add_notice(event.text, event.level)

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    async def clear(self) -> None:
        await self._stop_stream()
        self._response = None
        await self.remove_children()
        unfollow(self)

    async def show_transcript(self, messages: list[StoredMessage], partial: str = "") -> None:
        """Replace the pane with a stored transcript (+ the answer being written, if any)."""
        await self.clear()
        widgets: list[Widget] = []
        for message in messages:
            widget_id = f"msg-{message.id}" if message.id is not None else None
            if message.role == "user" and message.content:
                widgets.append(UserMessage(message.content, markup=False, id=widget_id))
            elif message.role == "assistant" and message.meta.get("from_operator"):
                widgets.append(OperatorMessage(message.content or "", id=widget_id))
            elif message.role == "assistant" and message.content:
                widgets.append(AgentResponse(message.content, id=widget_id))
                if message.interrupted:
                    widgets.append(NoticeLine("⏹ interrupted", classes="warning"))
        if widgets:
            await self.mount_all(widgets)
        if partial:
            await self.append_delta(partial)
        follow(self)

    async def add_user(self, text: str, *, from_operator: bool = False) -> None:
        await self._stop_stream()
        self._response = None
        widget = OperatorMessage(text) if from_operator else UserMessage(text, markup=False)
        await self.mount(widget)
        follow(self)

    async def begin_answer(self) -> None:
        """A new answer starts: the next delta opens a new response widget."""
        await self._stop_stream()
        self._response = None

    async def append_delta(self, text: str) -> None:
        # Created on the first delta, never before: Textual's MarkdownStream.stop() on a
        # stream whose task never ran re-raises CancelledError into the caller.
        if self._stream is None:
            if self._response is None:
                self._response = AgentResponse("")
                await self.mount(self._response)
            self._stream = Markdown.get_stream(self._response)
        await self._stream.write(text)
        follow(self)

    async def end_answer(
        self, text: str, *, interrupted: bool = False, error: str | None = None
    ) -> None:
        await self._stop_stream()
        if self._response is not None and text:
            await self._response.update(text)
        elif self._response is None and text:
            await self.mount(AgentResponse(text))
        self._response = None
        if interrupted:
            await self.mount(NoticeLine("⏹ interrupted", classes="warning"))
        if error:
            await self.mount(NoticeLine(f"⚠ {error}", classes="error", markup=False))
        follow(self)

    async def add_command_reply(self, text: str, *, ok: bool = True) -> None:
        await self.mount(CommandReply(text, classes="" if ok else "error"))
        follow(self)

    async def add_notice(self, text: str, level: str = "info") -> None:
        await self.mount(NoticeLine(text, classes=level, markup=False))
        follow(self)

    def highlight_message(self, message_id: int) -> bool:
        """Scroll a stored message into view and mark it (a search hit)."""
        for widget in self.query(f"#msg-{message_id}"):
            self.anchor(False)
            widget.add_class("hit")
            self.call_after_refresh(self.scroll_to_widget, widget, animate=False, top=True)
            return True
        return False

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
