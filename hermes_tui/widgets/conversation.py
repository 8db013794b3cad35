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
import re

from rich.text import Text
from textual import on
from textual.app import RenderResult
from textual.containers import VerticalScroll
from textual.widget import MountError
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream

from hermes_gateway.store import StoredMessage, TranscriptNote
from hermes_tui import gateway_messages as gm
from hermes_tui.messages import SessionSelected
from hermes_tui.widgets.follow import follow, unfollow
from hermes_tui.widgets.transcript_items import (
    AgentResponse,
    CommandReply,
    NoticeLine,
    OperatorMessage,
    ToolBlock,
    UserMessage,
    widgets_for,
)

_FENCE = re.compile(r"^ {0,3}(?:```|~~~)[^\n]*\n(.*?)^ {0,3}(?:```|~~~)[ \t]*$", re.S | re.M)

__all__ = [
    "AgentResponse",
    "CommandReply",
    "ConversationView",
    "NoticeLine",
    "OperatorMessage",
    "ToolBlock",
    "UserMessage",
]


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
        self.session_id: str | None = None
        """The stored session shown (a chat's current one, or an earlier one)."""
        self._tools: dict[str, ToolBlock] = {}
        """Tool blocks of the shown session's running turn, by call id."""
        self._split = False
        """A tool call split the running answer: its final text is already on screen."""
        self.unseen = 0
        """Things added while the reader was scrolled up (the "↓ N new" mark)."""
        self.status_note = ""
        """The screen's note for the bottom border (a remote chat's state)."""
        self._lock = asyncio.Lock()

    def render(self) -> RenderResult:
        """The empty state: a blank pane would look broken, so say what goes here."""
        if self.children:
            return super().render()
        if self.session_key is None or self.session_key.startswith("local"):
            hint = "Nothing here yet. Type a message below; / lists the commands, F1 the keys."
        else:
            hint = "No messages in this chat yet. What you type below is sent as the bot."
        return Text(f"\n{hint}", style="dim italic", justify="center")

    async def show_session(
        self,
        key: str,
        items: list[StoredMessage | TranscriptNote],
        *,
        session_id: str | None = None,
        current: bool = True,
    ) -> None:
        """Show a session's stored transcript plus, for a chat's current session, its answer
        in progress. ``current`` False: an earlier session, which takes no live output."""
        async with self._lock:
            self.session_key = key if current else None
            self.session_id = session_id
            messages = [m for m in items if isinstance(m, StoredMessage)]
            partial = "".join(self.partial.get(key, [])) if current else ""
            started = self.turn_started_at.get(key)
            if partial and messages and started is not None:
                last = messages[-1]
                if last.role == "assistant" and (last.created_at or 0) >= started:
                    partial = ""  # the answer was stored before its TurnFinished reached us
            await self.show_transcript(items, partial)

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
            if event.session_key == self.session_key and not event.is_command:
                await self.add_user(
                    event.text, from_operator=event.from_operator, message_id=event.message_id
                )

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

    @on(gm.ToolStarted)
    async def _on_tool_started(self, message: gm.ToolStarted) -> None:
        event = message.event
        async with self._lock:
            if event.session_key == self.session_key:
                await self.add_tool(event.call_id, event.name, event.preview, event.arguments)

    @on(gm.ToolFinished)
    def _on_tool_finished(self, message: gm.ToolFinished) -> None:
        event = message.event
        if event.session_key == self.session_key:
            block = self._tools.pop(event.call_id, None)
            if block is not None:
                block.finish(event.ok, event.summary, event.output, event.duration)

    @on(gm.TranscriptRewound)
    async def _on_rewound(self, message: gm.TranscriptRewound) -> None:
        event = message.event
        if event.session_key != self.session_key:
            return
        async with self._lock:
            if not await self.drop_from(event.from_message_id):
                # Not on screen as expected (it was shown before ids were known): reload.
                self.post_message(SessionSelected(event.session_key, event.session_id))

    @on(gm.CommandReplied)
    async def _on_command_replied(self, message: gm.CommandReplied) -> None:
        event = message.event
        if event.session_key != self.session_key or event.action is not None:
            return  # an action (quit, search) is the screen's to carry out
        async with self._lock:
            await self.add_command_reply(event.text, ok=event.ok, invocation=event.invocation)

    @on(gm.Notice)
    async def _on_notice(self, message: gm.Notice) -> None:
        event = message.event
        if event.session_key is None or event.session_key == self.session_key:
            async with self._lock:
                await self.add_notice(event.text, event.level)

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    @property
    def at_end(self) -> bool:
        if self.follow_paused:
            return False
        return self.is_anchored or self.scroll_y >= self.max_scroll_y - 1

    def read_back(self) -> None:
        """The reader scrolled up (keys or wheel): stop following until they come back down."""
        self.follow_paused = True
        self.anchor(False)

    def on_mouse_scroll_up(self) -> None:
        if self.max_scroll_y > 0:
            self.read_back()

    def _scrolled(self, _old: float, new: float) -> None:
        if self.follow_paused and self.max_scroll_y > 0 and new >= self.max_scroll_y - 1:
            self.follow_paused = False  # back at the end: follow again
            self.unseen = 0
            self._show_subtitle()

    def _added(self) -> None:
        """New output: followed when the reader is at the end, counted when scrolled up."""
        if self.follow_paused and self.session_key is not None:
            self.unseen += 1
            self._show_subtitle()
        follow(self)

    def set_status_note(self, note: str) -> None:
        self.status_note = note
        self._show_subtitle()

    def _show_subtitle(self) -> None:
        parts = [f"↓ {self.unseen} new (Ctrl+End)"] if self.unseen else []
        if self.status_note:
            parts.append(self.status_note)
        self.border_subtitle = "  ·  ".join(parts)

    def jump_to_end(self) -> None:
        """Back to the newest output (sending does this): the reader sees the answer come."""
        self.follow_paused = False
        self.unseen = 0
        self._show_subtitle()
        self.scroll_end(animate=False, immediate=True)
        if self.virtual_size.height > self.scrollable_content_region.height:
            self.anchor()

    async def clear(self) -> None:
        await self._stop_stream()
        self._response = None
        await self.remove_children()
        unfollow(self)
        self.follow_paused = False
        self.unseen = 0
        self._show_subtitle()

    async def show_transcript(
        self, items: list[StoredMessage | TranscriptNote], partial: str = ""
    ) -> None:
        """Replace the pane with a stored transcript (+ the answer being written, if any)."""
        await self.clear()
        widgets = widgets_for(items)
        if widgets:
            await self.mount_all(widgets)
        if partial:
            await self.append_delta(partial)
        follow(self)

    async def add_user(
        self, text: str, *, from_operator: bool = False, message_id: int | None = None
    ) -> None:
        widget_id = f"msg-{message_id}" if message_id is not None else None
        if widget_id is not None and self.query(f"#{widget_id}"):
            return  # already shown: the transcript was loaded after it was stored
        await self._stop_stream()
        self._response = None
        widget = (
            OperatorMessage(text, id=widget_id)
            if from_operator
            else UserMessage(text, markup=False, id=widget_id)
        )
        await self.mount(widget)
        self._added()

    async def begin_answer(self) -> None:
        """A new answer starts: the next delta opens a new response widget."""
        await self._stop_stream()
        self._response = None
        self._split = False
        self._tools.clear()

    async def add_tool(self, call_id: str, name: str, preview: str, arguments: str) -> None:
        """A tool call interrupts the answer's text: its block goes in between."""
        await self._stop_stream()
        self._response = None
        self._split = True
        block = ToolBlock(call_id, name, preview, arguments)
        self._tools[call_id] = block
        await self.mount(block)
        self._added()

    async def drop_from(self, message_id: int) -> bool:
        """Remove the message ``message_id`` and everything shown after it; False if that
        message is not on screen."""
        found = self.query(f"#msg-{message_id}")
        if not found:
            return False
        await self._stop_stream()
        self._response = None
        children = list(self.children)
        start = children.index(found.first())
        await self.remove_children(children[start:])
        return True

    async def append_delta(self, text: str) -> None:
        # Created on the first delta, never before: Textual's MarkdownStream.stop() on a
        # stream whose task never ran re-raises CancelledError into the caller.
        if self._response is not None and not self._response.is_attached:
            await self._stop_stream()
            self._response = None
        if self._stream is None:
            if self._response is None:
                self._response = AgentResponse("")
                await self.mount(self._response)
                self._added()
            self._stream = Markdown.get_stream(self._response)
        await self._stream.write(text)
        follow(self)

    async def end_answer(
        self, text: str, *, interrupted: bool = False, error: str | None = None
    ) -> None:
        await self._stop_stream()
        self._drop_detached()
        if self._split:
            pass  # the text is on screen in pieces around the tool blocks
        elif self._response is not None and text:
            await self._response.update(text)
        elif self._response is None and text:
            await self.mount(AgentResponse(text))
        self._response = None
        self._split = False
        self._tools.clear()
        if interrupted:
            await self.mount(NoticeLine("⏹ interrupted", classes="warning"))
        if error:
            await self.mount(NoticeLine(f"⚠ {error}", classes="error", markup=False))
        self._added()

    async def add_command_reply(self, text: str, *, ok: bool = True, invocation: str = "") -> None:
        await self._stop_stream()
        self._response = None
        await self.mount(CommandReply(invocation, text, ok=ok))
        self._added()

    async def add_notice(self, text: str, level: str = "info") -> None:
        await self.mount(NoticeLine(text, classes=level, markup=False))
        self._added()

    def last_answer(self) -> str | None:
        """The newest answer shown (its Markdown source), or None."""
        answers = [w for w in self.children if isinstance(w, AgentResponse) and w.source.strip()]
        return answers[-1].source.strip() if answers else None

    def last_code_block(self) -> str | None:
        """The last fenced code block in the answers shown, or None."""
        for widget in reversed(self.children):
            if isinstance(widget, AgentResponse | OperatorMessage):
                blocks = _FENCE.findall(widget.source)
                if blocks:
                    return blocks[-1].rstrip("\n")
        return None

    def highlight_message(self, message_id: int) -> bool:
        """Scroll a stored message into view and mark it (a search hit)."""
        for widget in self.query(f"#msg-{message_id}"):
            self.anchor(False)
            widget.add_class("hit")
            if isinstance(widget, ToolBlock):
                widget.collapsed = False
            self.call_after_refresh(self.scroll_to_widget, widget, animate=False, top=True)
            return True
        return False

    def _drop_detached(self) -> None:
        """Forget an answer widget that is no longer on screen (the pane was rebuilt while
        its turn ran): the next text goes into a fresh one instead of a detached widget."""
        if self._response is not None and not self._response.is_attached:
            self._response = None

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            try:
                await stream.stop()
            except MountError:
                # The answer's widget left the screen first (the app is closing): the text
                # is in the store, nothing to finish here.
                pass
