"""A small file saying what the running gateway is doing, for ``hermes gateway status``.

``gateway.pid`` (with its lock) says *whether* a gateway runs and its PID; this file adds
since when and each platform's state, which another process cannot ask the gateway for.
It is written by the gateway (TUI or headless) when it starts and whenever a platform's
state changes, atomically (temp file + rename) and off the event loop, and removed at a
clean stop. A file left by a killed gateway is recognised by its PID no longer holding the
home (see :func:`read_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hermes_gateway import events as ev

__all__ = ["STATUS_FILENAME", "GatewayStatus", "StatusFile", "read_status"]

log = logging.getLogger(__name__)

#: Our own name: Hermes Agent keeps ``gateway_state.json`` in the same folder.
STATUS_FILENAME = "hermes_tui_gateway.json"


@dataclass
class GatewayStatus:
    pid: int
    started_at: float
    mode: str = "headless"
    platforms: dict[str, str] = field(default_factory=dict)
    """Platform name -> its last state (connecting, connected, failed, ...)."""
    updated_at: float = 0.0


def read_status(home: Path) -> GatewayStatus | None:
    """The status file's content, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((home / STATUS_FILENAME).read_text(encoding="utf-8"))
        return GatewayStatus(
            pid=int(data["pid"]),
            started_at=float(data["started_at"]),
            mode=str(data.get("mode") or "headless"),
            platforms={str(k): str(v) for k, v in dict(data.get("platforms") or {}).items()},
            updated_at=float(data.get("updated_at") or 0.0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class StatusFile:
    """Keeps ``HERMES_HOME/hermes_tui_gateway.json`` in step with the bus."""

    def __init__(self, home: Path, bus: ev.EventBus, *, mode: str) -> None:
        self.path = home / STATUS_FILENAME
        self.status = GatewayStatus(pid=os.getpid(), started_at=time.time(), mode=mode)
        self._bus = bus
        self._remove_listener: Any = None
        self._dirty = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def start(self, platforms: list[str]) -> None:
        for name in platforms:
            self.status.platforms.setdefault(name, "starting")
        self._remove_listener = self._bus.add_listener(self._on_event)
        self._writer = asyncio.create_task(self._write_loop(), name="status-file")
        self._dirty.set()

    def _on_event(self, event: ev.GatewayEvent) -> None:
        if isinstance(event, ev.PlatformStatus):
            self.status.platforms[event.platform] = event.state
            self._dirty.set()

    async def _write_loop(self) -> None:
        # One writer, woken by changes: a burst of state changes is one write, never a pile.
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self.status.updated_at = time.time()
            payload = json.dumps(self.status.__dict__, separators=(",", ":"))
            try:
                await asyncio.to_thread(_write_atomic, self.path, payload)
            except OSError as exc:
                log.warning("cannot write %s: %s", self.path, exc)

    async def stop(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.path.unlink, True)


def _write_atomic(path: Path, payload: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(payload, encoding="utf-8")
    os.replace(tmp, path)
