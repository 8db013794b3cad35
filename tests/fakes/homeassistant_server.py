"""A fake Home Assistant websocket API on 127.0.0.1, following HA's documented message formats.

``GET /api/websocket``: the server speaks first with ``auth_required``; the client answers
``{"type": "auth", "access_token": ...}`` and gets ``auth_ok`` or ``auth_invalid`` (then the
socket closes). After that every command carries an ``id`` that must increase (else an
``id_reuse`` error) and gets ``{"id", "type": "result", "success", "result" | "error"}``.
Implemented commands: ``subscribe_events`` (optionally one ``event_type``; events come as
``{"id": <subscription id>, "type": "event", "event": {...}}`` with ``context.user_id``),
``unsubscribe_events``, ``call_service`` (known services only, else ``not_found``),
``fire_event``, ``ping`` (``pong``). Anything else: ``unknown_command``.

Test controls: :meth:`fire` (an event as a user, or HA itself, causes it), :meth:`drop`
(close every socket, as a restart of HA does), ``refuse`` (answer no websocket while set),
and the records ``service_calls``, ``auths``, ``commands``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["FakeHomeAssistant", "ServiceCall"]

HA_VERSION = "2026.11.3"


@dataclass
class ServiceCall:
    domain: str
    service: str
    data: dict[str, Any]
    user_id: str | None = None


@dataclass
class _Client:
    ws: web.WebSocketResponse
    subscriptions: dict[int, str | None] = field(default_factory=dict)
    last_id: int = 0


class FakeHomeAssistant:
    """One HA instance: a token, notify services, and the connected websocket clients."""

    def __init__(self, token: str = "good-token", *, services: tuple[str, ...] = ()) -> None:
        self.token = token
        self.services: set[str] = {"notify.notify", "persistent_notification.create", *services}
        self.port = 0
        self.auths: list[bool] = []
        """One entry per ``auth`` message: whether it was accepted."""
        self.commands: list[dict[str, Any]] = []
        self.service_calls: list[ServiceCall] = []
        self.fired: list[dict[str, Any]] = []
        self.refuse = False
        self._clients: list[_Client] = []
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def subscriptions(self) -> list[str | None]:
        """Event types subscribed to, over all connected clients (``None``: every type)."""
        return [t for c in self._clients for t in c.subscriptions.values()]

    async def __aenter__(self) -> FakeHomeAssistant:
        app = web.Application()
        app.router.add_get("/api/websocket", self._websocket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.drop()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- test controls ------------------------------------------------------------------

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def _context(self, user_id: str | None) -> dict[str, Any]:
        return {"id": uuid.uuid4().hex.upper()[:26], "parent_id": None, "user_id": user_id}

    async def fire(
        self, event_type: str, data: dict[str, Any], *, user_id: str | None = None
    ) -> dict[str, Any]:
        """Fire an event on the bus; every matching subscription gets it. Returns the event."""
        event = {
            "event_type": event_type,
            "data": data,
            "origin": "LOCAL",
            "time_fired": datetime.now(UTC).isoformat(),
            "context": self._context(user_id),
        }
        for client in list(self._clients):
            for sub_id, wanted in client.subscriptions.items():
                if wanted in (None, event_type):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await client.ws.send_json({"id": sub_id, "type": "event", "event": event})
        return event

    async def state_change(
        self, entity_id: str, old: str, new: str, **attributes: Any
    ) -> dict[str, Any]:
        def state(value: str) -> dict[str, Any]:
            return {"entity_id": entity_id, "state": value, "attributes": attributes}

        return await self.fire(
            "state_changed",
            {"entity_id": entity_id, "old_state": state(old), "new_state": state(new)},
        )

    async def drop(self) -> None:
        """Close every websocket, as an HA restart does."""
        for client in list(self._clients):
            await client.ws.close()
        self._clients.clear()
        self._changed.set()

    # --- the websocket API --------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.refuse:
            return web.Response(status=502, text="Bad Gateway")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "auth_required", "ha_version": HA_VERSION})
        try:
            first = await asyncio.wait_for(ws.receive_json(), 10)
        except (TimeoutError, ValueError, TypeError):
            await ws.close()
            return ws
        if first.get("type") != "auth" or first.get("access_token") != self.token:
            self.auths.append(False)
            self._changed.set()
            await ws.send_json(
                {"type": "auth_invalid", "message": "Invalid access token or password"}
            )
            await ws.close()
            return ws
        self.auths.append(True)
        await ws.send_json({"type": "auth_ok", "ha_version": HA_VERSION})
        client = _Client(ws)
        self._clients.append(client)
        self._changed.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                await self._command(client, msg.json())
        finally:
            if client in self._clients:
                self._clients.remove(client)
            self._changed.set()
        return ws

    async def _result(self, client: _Client, msg_id: int, result: Any = None) -> None:
        await client.ws.send_json(
            {"id": msg_id, "type": "result", "success": True, "result": result}
        )

    async def _error(self, client: _Client, msg_id: int, code: str, message: str) -> None:
        await client.ws.send_json(
            {
                "id": msg_id,
                "type": "result",
                "success": False,
                "error": {"code": code, "message": message},
            }
        )

    async def _command(self, client: _Client, command: dict[str, Any]) -> None:
        self.commands.append(command)
        self._changed.set()
        msg_id = command.get("id")
        kind = command.get("type")
        if not isinstance(msg_id, int) or msg_id <= client.last_id:
            await self._error(
                client, int(msg_id or 0), "id_reuse", "Identifier values have to increase."
            )
            return
        client.last_id = msg_id
        if kind == "ping":
            await client.ws.send_json({"id": msg_id, "type": "pong"})
        elif kind == "subscribe_events":
            client.subscriptions[msg_id] = command.get("event_type")
            await self._result(client, msg_id)
        elif kind == "unsubscribe_events":
            if client.subscriptions.pop(command.get("subscription", -1), "missing") == "missing":
                await self._error(client, msg_id, "not_found", "Subscription not found.")
            else:
                await self._result(client, msg_id)
        elif kind == "call_service":
            name = f"{command.get('domain')}.{command.get('service')}"
            if name not in self.services:
                await self._error(client, msg_id, "not_found", f"Service {name} not found.")
                return
            data = command.get("service_data") or {}
            self.service_calls.append(
                ServiceCall(str(command.get("domain")), str(command.get("service")), data)
            )
            self._changed.set()
            await self._result(client, msg_id, {"context": self._context(None), "response": None})
        elif kind == "fire_event":
            self.fired.append(command)
            await self._result(client, msg_id, {"context": self._context(None)})
        else:
            await self._error(client, msg_id, "unknown_command", "Unknown command.")
