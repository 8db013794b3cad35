"""One Home Assistant websocket connection: the auth handshake, commands by id, subscriptions.

HA speaks first (``auth_required``); we answer with the token and get ``auth_ok`` or
``auth_invalid`` (after which HA closes the socket). Every later command carries an ``id``
that must increase; its answer is a ``result`` (``success`` and ``result``, or ``error`` with
``code`` and ``message``), and a subscription's events carry the subscription's id. Ids are
assigned and sent under one lock, so they reach HA in increasing order even when several
answers are sent at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

__all__ = ["AuthInvalid", "CommandFailed", "ConnectionLost", "HaWebsocket", "websocket_url"]

log = logging.getLogger(__name__)

HEARTBEAT = 30.0
"""Websocket ping interval; a server that stops answering is noticed within two of them."""

EventHandler = Callable[[dict[str, Any]], None]


class AuthInvalid(Exception):
    """HA refused the token (``auth_invalid``); its message says why."""


class ConnectionLost(Exception):
    """The websocket ended, or HA said something the protocol does not allow."""


class CommandFailed(Exception):
    """HA answered a command with ``success: false``."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


def websocket_url(base: str) -> str:
    """``http(s)://host:8123`` -> ``ws(s)://host:8123/api/websocket``."""
    base = base.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/api/websocket"


async def _receive_object(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise ConnectionLost("Home Assistant closed the websocket during the handshake")
    data = json.loads(msg.data)
    if not isinstance(data, dict):
        raise ConnectionLost("Home Assistant sent something that is not a message")
    return data


class HaWebsocket:
    """An authenticated connection; :meth:`run` reads it, :meth:`command` talks through it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, version: str) -> None:
        self._ws = ws
        self.version = version
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._handlers: dict[int, EventHandler] = {}
        self._send_lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, session: aiohttp.ClientSession, url: str, token: str, timeout: float
    ) -> HaWebsocket:
        """Open the socket and authenticate.

        Raises:
            AuthInvalid: the token was refused.
            ConnectionLost: the server did not follow the handshake.
        """
        async with asyncio.timeout(timeout):
            ws = await session.ws_connect(url, heartbeat=HEARTBEAT, autoping=True)
            try:
                first = await _receive_object(ws)
                if first.get("type") != "auth_required":
                    raise ConnectionLost(f"expected auth_required, got {first.get('type')!r}")
                await ws.send_json({"type": "auth", "access_token": token})
                reply = await _receive_object(ws)
            except BaseException:
                await ws.close()
                raise
        if reply.get("type") == "auth_invalid":
            await ws.close()
            raise AuthInvalid(str(reply.get("message") or "auth_invalid"))
        if reply.get("type") != "auth_ok":
            await ws.close()
            raise ConnectionLost(f"expected auth_ok, got {reply.get('type')!r}")
        return cls(ws, str(reply.get("ha_version", "")))

    async def close(self) -> None:
        await self._ws.close()

    async def _send(self, payload: dict[str, Any], handler: EventHandler | None) -> int:
        loop = asyncio.get_running_loop()
        async with self._send_lock:
            msg_id = next(self._ids)
            self._pending[msg_id] = loop.create_future()
            if handler is not None:
                self._handlers[msg_id] = handler  # before HA can send the first event
            await self._ws.send_json({"id": msg_id, **payload})
        return msg_id

    async def command(self, payload: dict[str, Any], timeout: float = 15.0) -> Any:
        """Send one command and return its ``result``.

        Raises:
            CommandFailed: HA answered ``success: false``.
            ConnectionLost: the connection ended before the answer.
            TimeoutError: no answer within ``timeout``.
        """
        msg_id = await self._send(payload, None)
        try:
            return await asyncio.wait_for(self._pending[msg_id], timeout)
        finally:
            self._pending.pop(msg_id, None)

    async def subscribe(self, event_type: str | None, handler: EventHandler) -> int:
        """Subscribe to one event type (None: all); ``handler`` gets each event's body."""
        payload: dict[str, Any] = {"type": "subscribe_events"}
        if event_type:
            payload["event_type"] = event_type
        msg_id = await self._send(payload, handler)
        try:
            await asyncio.wait_for(self._pending[msg_id], 15.0)
        except BaseException:
            self._handlers.pop(msg_id, None)
            raise
        finally:
            self._pending.pop(msg_id, None)
        return msg_id

    async def run(self) -> str:
        """Read until the connection ends; returns why. Pending commands then fail."""
        reason = "Home Assistant closed the websocket"
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    reason = f"websocket error: {self._ws.exception()}"
                    break
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost(reason))
        return reason

    def _dispatch(self, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("Home Assistant sent a frame that is not JSON")
            return
        if not isinstance(data, dict):
            return
        msg_id = data.get("id")
        kind = data.get("type")
        if kind == "event":
            handler = self._handlers.get(msg_id) if isinstance(msg_id, int) else None
            event = data.get("event")
            if handler is not None and isinstance(event, dict):
                try:
                    handler(event)
                except Exception:
                    log.exception("a Home Assistant event could not be handled")
            return
        future = self._pending.get(msg_id) if isinstance(msg_id, int) else None
        if future is None or future.done():
            return
        if kind == "pong":
            future.set_result(None)
        elif kind == "result" and data.get("success"):
            future.set_result(data.get("result"))
        elif kind == "result":
            raw_error = data.get("error")
            error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
            future.set_exception(
                CommandFailed(str(error.get("code", "unknown")), str(error.get("message", "")))
            )
