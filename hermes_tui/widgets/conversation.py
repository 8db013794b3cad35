"""The Conversation pane: one session's transcript, with the answer streaming in.

Answers stream through ``Markdown.get_stream``, which batches updates that arrive faster than
frames, and the scroll container is anchored so it follows the answer until the user
scrolls up.
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from hermes_gateway.store import StoredMessage
from hermes_tui.widgets.follow import follow, unfollow


class UserMessage(Static):
    """What the person (or a remote user) wrote."""


class AgentResponse(Markdown):
    """One answer of the agent, rendered as Markdown."""


class CommandReply(Markdown):
    """The result of a slash command."""


class NoticeLine(Static):
    """Errors, retries and interruptions: not part of the conversation itself."""


class ConversationView(VerticalScroll):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._response: AgentResponse | None = None
        self._stream: MarkdownStream | None = None

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
        widgets = []
        for message in messages:
            if message.role == "user" and message.content:
                widgets.append(self._user_widget(message.content, message.meta))
            elif message.role == "assistant" and message.content:
                widgets.append(AgentResponse(message.content))
                if message.interrupted:
                    widgets.append(NoticeLine("⏹ interrupted", classes="warning"))
        if widgets:
            await self.mount_all(widgets)
        if partial:
            await self.append_delta(partial)
        follow(self)

    def _user_widget(self, text: str, meta: dict | None = None) -> UserMessage:
        operator = bool(meta and meta.get("from_operator"))
        return UserMessage(text, classes="operator" if operator else "", markup=False)

    async def add_user(self, text: str, *, from_operator: bool = False) -> None:
        await self._stop_stream()
        self._response = None
        await self.mount(self._user_widget(text, {"from_operator": from_operator}))
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

    async def add_command_reply(self, text: str, *, ok: bool = True) -> None:
        await self.mount(CommandReply(text, classes="" if ok else "error"))
        follow(self)

    async def add_notice(self, text: str, level: str = "info") -> None:
        await self.mount(NoticeLine(text, classes=level, markup=False))
        follow(self)

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
