"""What a slash command may do, instead of reaching into the runner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hermes_gateway.config import BusyMode, Config, ModelConfig
    from hermes_gateway.events import PlatformStatus
    from hermes_gateway.models import MessageEvent, SessionSource
    from hermes_gateway.runner.context import Compressed
    from hermes_gateway.runner.sessions import SessionRuntime
    from hermes_gateway.store import SessionRecord, SessionStore, StoredMessage

__all__ = ["CommandHost"]


class CommandHost(Protocol):
    """What a slash command may do: sessions of the chat it came from, the store, settings."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> SessionStore: ...

    def help_text(self, platform: str) -> str:
        """``/help`` for a platform (the commands it may run)."""
        ...

    async def runtime(self, source: SessionSource) -> SessionRuntime:
        """The chat's live session (created on first contact)."""
        ...

    async def reset_session(self, source: SessionSource) -> SessionRecord: ...

    async def activate_session(self, source: SessionSource, record: SessionRecord) -> None: ...

    def interrupt(self, session_key: str, *, drop_pending: bool = True) -> bool: ...

    async def rewind_last_turn(self, source: SessionSource) -> list[StoredMessage]:
        """Remove the chat's last exchange from the store and every screen showing it."""
        ...

    async def handle(self, event: MessageEvent) -> None:
        """Run a message through the pipeline again (``/retry``)."""
        ...

    async def submit(self, event: MessageEvent, mode: BusyMode) -> str:
        """Store a message a command carries and give it to its session as ``mode`` says
        (``/queue``, ``/steer``); what became of it (``steered``, ``queued``, ...)."""
        ...

    def model_for(self, rt: SessionRuntime) -> ModelConfig: ...

    async def compress_session(self, rt: SessionRuntime) -> Compressed:
        """Fold the session's older turns into a stored summary (``/compress``)."""
        ...

    async def context_use(self, rt: SessionRuntime) -> tuple[int, int]:
        """Tokens the session's next prompt takes, and its model's window."""
        ...

    def publish_session(self, rt: SessionRuntime, reason: str) -> None: ...

    @property
    def platform_state(self) -> Mapping[str, PlatformStatus]: ...
