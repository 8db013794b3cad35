"""A background run as it is kept in the store, so a restart or a kill never loses one.

Each run in flight has one kv entry ``background_run:<id>`` (JSON), written before the run
starts and deleted only once its chat was told how it ended. What a restart finds there is
reported to the chat, never run again:

- ``running``: the process ended mid-run; the chat is told it was interrupted.
- ``answered``: the run ended and its message (``text``) was not confirmed sent: it is sent.
- ``done``: written by versions before the command receipts (which kept the entry a day to
  recognise a replayed ``/background``); deleted at start. A replayed ``/background`` is now
  dropped before it runs, like every command, by the runner's command guard
  (``runner/command_guard.py``), and an entry is deleted once its chat was told.

The run's own conversation is an ordinary session on the ``background`` platform (key
``background:dm:<id>``), so its transcript stays in the history and search.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hermes_gateway.models import SessionSource
from hermes_gateway.text import one_line

if TYPE_CHECKING:
    from hermes_gateway.store import SessionStore

log = logging.getLogger(__name__)

__all__ = [
    "BACKGROUND_PLATFORM",
    "KV_PREFIX",
    "BackgroundRun",
    "RunLedger",
    "new_run_id",
    "preview",
]

BACKGROUND_PLATFORM = "background"
"""The platform of the runs' own sessions (no adapter has it: nothing is sent there)."""
KV_PREFIX = "background_run:"
PREVIEW = 60
"""Characters of a prompt quoted in replies and listings."""

Stored = Literal["running", "answered", "done"]
STATES = ("running", "answered", "done")


def new_run_id(now: float | None = None) -> str:
    """``bg_HHMMSS_xxxxxx``: readable in a chat, unique enough (Hermes Agent's form)."""
    stamp = time.strftime("%H%M%S", time.localtime(now))
    return f"bg_{stamp}_{secrets.token_hex(3)}"


def preview(prompt: str) -> str:
    """A prompt as one short line, for replies and the pane."""
    return one_line(prompt, PREVIEW)


@dataclass
class BackgroundRun:
    """One ``/background`` run: who asked, what, and where it stands."""

    id: str
    origin: SessionSource
    """The chat that asked: its result goes there; its tools rules apply."""
    prompt: str
    started_at: float
    state: Stored = "running"
    text: str = ""
    """Once ``answered``: the message for the chat."""
    model_name: str | None = None
    # --- in memory only ----------------------------------------------------------------
    steps: int = field(default=0, compare=False)
    session_id: str = field(default="", compare=False)
    stop_requested: bool = field(default=False, compare=False)

    @property
    def source(self) -> SessionSource:
        """The run's own conversation (a fresh session key per run)."""
        return SessionSource(
            platform=BACKGROUND_PLATFORM,
            chat_id=self.id,
            chat_type="dm",
            user_id=self.origin.user_id,
            user_name=self.origin.user_name,
            chat_name=f"background: {preview(self.prompt)}",
        )

    @property
    def key(self) -> str:
        return self.source.session_key

    @property
    def origin_key(self) -> str:
        return self.origin.session_key

    def to_json(self) -> str:
        o = self.origin
        origin = {
            "platform": o.platform,
            "chat_id": o.chat_id,
            "chat_type": o.chat_type,
            "thread_id": o.thread_id,
            "user_id": o.user_id,
            "user_name": o.user_name,
            "chat_name": o.chat_name,
        }
        data = {
            "id": self.id,
            "origin": origin,
            "prompt": self.prompt,
            "started_at": self.started_at,
            "state": self.state,
            "text": self.text,
            "model_name": self.model_name,
        }
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> BackgroundRun:
        """Raises ValueError (KeyError, TypeError included) for an entry that is not one."""
        data: dict[str, Any] = json.loads(raw)
        o = data["origin"]
        origin = SessionSource(
            platform=str(o["platform"]),
            chat_id=str(o["chat_id"]),
            chat_type=o.get("chat_type") or "dm",
            thread_id=o.get("thread_id"),
            user_id=o.get("user_id"),
            user_name=o.get("user_name"),
            chat_name=o.get("chat_name"),
        )
        origin.session_key  # noqa: B018 -- a key that cannot be built is not ours
        state = data.get("state", "running")
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        return cls(
            id=str(data["id"]),
            origin=origin,
            prompt=str(data["prompt"]),
            started_at=float(data.get("started_at") or 0.0),
            state=state,
            text=str(data.get("text") or ""),
            model_name=data.get("model_name"),
        )


class RunLedger:
    """The kv entries of the runs in flight (see the module docstring)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def save(self, run: BackgroundRun) -> None:
        await self.store.kv_set(KV_PREFIX + run.id, run.to_json())

    async def delete(self, run_id: str) -> None:
        await self.store.kv_delete(KV_PREFIX + run_id)

    async def load(self) -> list[BackgroundRun]:
        """Every run left in flight, oldest first. An entry that cannot be read is logged
        and removed (there is no chat to tell)."""
        runs: list[BackgroundRun] = []
        for key, raw in await self.store.kv_items(KV_PREFIX):
            try:
                runs.append(BackgroundRun.from_json(raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("dropping an unreadable background run entry %s: %s", key, exc)
                await self.store.kv_delete(key)
        runs.sort(key=lambda r: r.started_at)
        return runs
