"""The operator's controls: everything the person at the screen may do to the gateway.

The TUI acts on the gateway only through :class:`OperatorControl` (select a chat, step in,
pause and resume, stop, reset) and learns what changed from events, never from the runner's
dictionaries. Selecting a chat loads it from the store whether or not it has been active
since start, so chats from before a restart are as usable as live ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hermes_gateway.models import LOCAL_PLATFORM, MessageEvent, SessionSource, key_user

if TYPE_CHECKING:
    from hermes_gateway.commands.registry import CommandRegistry
    from hermes_gateway.platforms.local import LocalAdapter
    from hermes_gateway.runner import GatewayRunner
    from hermes_gateway.store import SearchHit, SessionRecord, StoredMessage, TranscriptNote

__all__ = ["OperatorControl", "SessionView", "peek_sessions", "source_of"]


async def peek_sessions(
    db_path: Path, limit: int
) -> tuple[list[SessionRecord], dict[str, int]] | None:
    """The chats a home has, read before the gateway is up (None if it has no database yet).

    Why: starting the gateway (network libraries, platforms) takes a second or two; the
    Sessions list of a used home can be shown long before that.
    """
    from hermes_gateway.store import SessionStore

    if not await asyncio.to_thread(db_path.exists):
        return None
    store = await SessionStore.open(db_path)
    try:
        records = await store.list_sessions(limit=limit, include_ended=False)
        return records, await store.past_session_counts()
    finally:
        await store.close()


def source_of(record: SessionRecord) -> SessionSource:
    """The chat a stored session belongs to, rebuilt from its row (to answer it again)."""
    source = SessionSource(
        platform=record.platform,
        chat_id=record.chat_id,
        chat_type=record.chat_type,  # type: ignore[arg-type]
        thread_id=record.thread_id,
        user_id=record.user_id,
        chat_name=record.display_name,
    )
    if key_user(record.session_key) is not None:  # one participant's session in a group
        source = replace(source, per_user=True, user_id=key_user(record.session_key))
    return source


@dataclass(frozen=True)
class SessionView:
    """One chat as the screen shows it when selected."""

    key: str
    record: SessionRecord | None
    messages: list[StoredMessage]
    source: SessionSource | None
    paused: bool
    model: str
    busy: bool
    notes: list[TranscriptNote] = field(default_factory=list)
    """Commands, replies and errors shown besides the messages (see ``transcript``)."""
    current: bool = True
    """The chat's current session (False: an earlier one, opened from the list or a search)."""

    @property
    def remote(self) -> bool:
        return self.source is not None and self.source.platform != LOCAL_PLATFORM

    @property
    def transcript(self) -> list[StoredMessage | TranscriptNote]:
        """What the screen shows, in the order it was shown."""
        from hermes_gateway.store import merge_transcript

        return merge_transcript(self.messages, self.notes)


class OperatorControl:
    """The gateway as the operator drives it."""

    def __init__(self, runner: GatewayRunner, local: LocalAdapter) -> None:
        self._runner = runner
        self._local = local

    @property
    def commands(self) -> CommandRegistry:
        return self._runner.commands

    @property
    def local_key(self) -> str:
        return self._local.source.session_key

    async def open_local(self) -> str:
        """Make sure the terminal's own session exists; its key."""
        rt = await self._runner.runtime(self._local.source)
        return rt.key

    async def select(self, key: str, session_id: str | None = None) -> SessionView:
        """A chat's session and transcript, live or only stored: its current one, or the
        session ``session_id`` (an earlier one of the chat, e.g. a search hit)."""
        runner, store = self._runner, self._runner.store
        rt = runner.sessions.get(key)
        current = rt.record if rt is not None else await store.get_active_session(key)
        record = current
        if session_id is not None and (current is None or current.id != session_id):
            found = await store.get_session(session_id)
            if found is not None and found.session_key == key:
                record = found
        messages = await store.get_messages(record.id) if record is not None else []
        notes = await store.get_notes(record.id) if record is not None else []
        source = rt.source if rt is not None else source_of(record) if record else None
        model = runner.model_for(rt).name if rt is not None else runner.config.model.name
        return SessionView(
            key=key,
            record=record,
            messages=messages,
            source=source,
            paused=key in runner.paused_sessions,
            model=model,
            busy=rt is not None and rt.busy,
            notes=notes,
            current=record is None or current is None or record.id == current.id,
        )

    async def submit(self, key: str | None, text: str) -> None:
        """Local chat: a message to the agent. A remote chat: the operator steps in as the
        bot (commands act on that chat)."""
        await self._runner.store.add_input_history(text)
        source = await self._source(key)
        if source is None or source.platform == LOCAL_PLATFORM:
            await self._local.submit(text)
            return
        await self._runner.handle(MessageEvent(text=text, source=source, from_operator=True))

    async def _source(self, key: str | None) -> SessionSource | None:
        if key is None:
            return None
        rt = self._runner.sessions.get(key)
        if rt is not None:
            return rt.source
        record = await self._runner.store.get_active_session(key)
        return source_of(record) if record is not None else None

    def stop(self, key: str) -> bool:
        """Stop the answer being written in a chat; True if there was one."""
        return self._runner.interrupt(key)

    async def pause_session(self, key: str, paused: bool) -> None:
        """The operator answers this chat by hand (True) or hands it back to the agent."""
        source = await self._source(key)
        if source is not None:
            await self._runner.runtime(source)  # so the change is published for the screen
        self._runner.set_session_paused(key, paused)

    def pause_platform(self, platform: str, paused: bool) -> None:
        self._runner.set_platform_paused(platform, paused)

    def session_paused(self, key: str) -> bool:
        return key in self._runner.paused_sessions

    def platform_paused(self, platform: str) -> bool:
        return platform in self._runner.paused_platforms

    async def reset(self, key: str) -> SessionRecord | None:
        source = await self._source(key)
        return await self._runner.reset_session(source) if source is not None else None

    async def recent_sessions(self, limit: int = 50) -> list[SessionRecord]:
        return await self._runner.store.list_sessions(limit=limit, include_ended=False)

    async def past_session_counts(self) -> dict[str, int]:
        """Earlier sessions per chat, for the folds of the Sessions list."""
        return await self._runner.store.past_session_counts()

    async def sessions_of(self, key: str) -> list[SessionRecord]:
        """A chat's sessions, newest first (its current one included)."""
        return await self._runner.store.sessions_of(key)

    async def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        return await self._runner.store.search(query, limit=limit)

    async def model_choices(self) -> list[str]:
        """Models ``/model`` accepts: the configured ones, then what the server lists."""
        from hermes_gateway.agent.server_models import listed_models

        model = self._runner.config.model
        names = [model.name, *model.models, *(await listed_models(model) or [])]
        return [n for i, n in enumerate(names) if n and n not in names[:i]]

    async def input_history(self) -> list[str]:
        return await self._runner.store.get_input_history()
