"""A fake signal-cli-rest-api (bbernhard) in json-rpc mode on 127.0.0.1.

As the API documents and does:

* ``GET /v1/about``: ``{"versions", "build", "mode": "json-rpc", "version", "capabilities"}``;
* ``GET /v1/accounts``: the registered numbers;
* ``GET /v1/receive/{number}``: a websocket; each incoming message is one text frame
  ``{"envelope": {"source", "sourceNumber", "sourceUuid", "sourceName", "sourceDevice",
  "timestamp", "dataMessage": {"timestamp", "message", "expiresInSeconds", "viewOnce",
  "groupInfo"?: {"groupId", "type"}, "mentions"?, "attachments"?}}, "account"}``;
* ``POST /v2/send``: 201 ``{"timestamp"}``; ``recipients`` are numbers, uuids or
  ``group.<base64 of the groupId>``; ``base64_attachments`` data URIs; ``edit_timestamp``;
* ``PUT``/``DELETE /v1/typing-indicator/{number}`` ``{"recipient"}``: 204;
* ``GET /v1/attachments/{id}``: the bytes;
* errors ``{"error": "..."}`` (400); a forced rate limit is 429 with ``challenge_tokens``.

Control: :meth:`FakeSignal.user_sends` makes a contact write (to the bot or into a group). As in
json-rpc mode, an envelope goes to the websockets connected at that moment; with
``queue_offline`` (default) it waits for the next connection instead (a test of reconnects),
and :meth:`drop_websockets` cuts them; ``replay_on_connect`` sends the last envelopes again
to a new connection (signal-cli repeating itself), which must not cause double answers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes._aiohttp_fake import AiohttpFake

__all__ = ["FakeSignal", "SignalSent"]


@dataclass
class SignalSent:
    recipient: str
    message: str
    timestamp: int
    attachments: list[str] = field(default_factory=list)
    edit_of: int | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


class FakeSignal(AiohttpFake):
    """signal-cli-rest-api for one registered account."""

    client_max_size = 128 * 1024 * 1024

    def __init__(self, *, mode: str = "json-rpc") -> None:
        super().__init__()
        self.account = "+15550001111"
        self.mode = mode
        self.registered = [self.account]
        self.sent: list[SignalSent] = []
        self.typing: list[tuple[str, bool]] = []
        self.attachments: dict[str, tuple[bytes, str]] = {}
        self.contacts: dict[str, tuple[str, str]] = {}
        """number -> (uuid, name)."""
        self.groups: dict[str, str] = {}
        """groupId -> name."""
        self.queue_offline = True
        self.replay_on_connect = 0
        self.refuse_websocket = False
        self.websocket_connections = 0
        self.rate_limited = 0
        self._pending: list[str] = []
        self._delivered: list[str] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._force_429 = 0
        self._last_ts = 0

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.base

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/about", self._about)
        app.router.add_get("/v1/accounts", self._accounts)
        app.router.add_get("/v1/receive/{number}", self._receive)
        app.router.add_post("/v2/send", self._send)
        app.router.add_route("*", "/v1/typing-indicator/{number}", self._typing)
        app.router.add_get("/v1/attachments/{id}", self._attachment)

    async def closing(self) -> None:
        await self.drop_websockets()

    # --- control API --------------------------------------------------------------------

    def add_contact(self, number: str, name: str) -> str:
        uid = str(uuidlib.uuid4())
        self.contacts[number] = (uid, name)
        return uid

    def add_group(self, name: str) -> str:
        """A group the bot is in; its ``groupId`` (base64, as envelopes carry it)."""
        group_id = base64.b64encode(secrets.token_bytes(32)).decode()
        self.groups[group_id] = name
        return group_id

    def add_attachment(self, data: bytes, content_type: str, filename: str) -> dict[str, Any]:
        att_id = secrets.token_urlsafe(12) + "." + filename.rsplit(".", 1)[-1]
        self.attachments[att_id] = (data, content_type)
        return {"contentType": content_type, "filename": filename, "id": att_id, "size": len(data)}

    def rate_limit(self, count: int) -> None:
        self._force_429 = count

    def timestamp(self) -> int:
        self._last_ts = max(self._last_ts + 1, _now_ms())
        return self._last_ts

    async def user_sends(
        self,
        number: str,
        text: str,
        *,
        group: str | None = None,
        mention_bot: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        timestamp: int | None = None,
    ) -> int:
        """A contact writes; the envelope's timestamp (the message's identity with its author)."""
        uid, name = self.contacts.get(number) or (str(uuidlib.uuid4()), number)
        ts = timestamp or self.timestamp()
        data: dict[str, Any] = {
            "timestamp": ts,
            "message": text,
            "expiresInSeconds": 0,
            "viewOnce": False,
        }
        if mention_bot:
            data["message"] = "\ufffc " + text
            data["mentions"] = [
                {
                    "name": self.account,
                    "number": self.account,
                    "uuid": "bot-uuid",
                    "start": 0,
                    "length": 1,
                }
            ]
        if group is not None:
            data["groupInfo"] = {
                "groupId": group,
                "groupName": self.groups.get(group, ""),
                "type": "DELIVER",
            }
        if attachments:
            data["attachments"] = attachments
        envelope = {
            "source": number,
            "sourceNumber": number,
            "sourceUuid": uid,
            "sourceName": name,
            "sourceDevice": 1,
            "timestamp": ts,
            "serverReceivedTimestamp": ts + 5,
            "serverDeliveredTimestamp": ts + 9,
            "dataMessage": data,
        }
        await self.push(json.dumps({"envelope": envelope, "account": self.account}))
        return ts

    async def push(self, frame: str) -> None:
        """Deliver a raw frame to the connected websockets (or queue it, see above)."""
        live = [ws for ws in self._sockets if not ws.closed]
        if not live:
            if self.queue_offline:
                self._pending.append(frame)
            return
        for ws in live:
            await ws.send_str(frame)
        self._delivered.append(frame)
        self._delivered = self._delivered[-50:]

    async def drop_websockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        self._sockets.clear()

    def to(self, recipient: str) -> list[SignalSent]:
        return [s for s in self.sent if s.recipient == recipient]

    def texts(self, recipient: str) -> list[str]:
        return [s.message for s in self.to(recipient) if s.message]

    # --- the API ------------------------------------------------------------------------

    async def _about(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(("GET", "/v1/about"))
        return web.json_response(
            {
                "versions": ["v1", "v2"],
                "build": 2,
                "mode": self.mode,
                "version": "0.92",
                "capabilities": {"v2/send": ["quotes", "mentions"]},
            }
        )

    async def _accounts(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.registered)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        number = request.match_info["number"]
        if self.mode != "json-rpc" or self.refuse_websocket:
            return web.json_response({"error": "websocket not available"}, status=400)
        if number not in self.registered:
            return web.json_response({"error": f"User {number} is not registered."}, status=400)
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self.websocket_connections += 1
        self._sockets.append(ws)
        self.changed()
        replay = self._delivered[-self.replay_on_connect :] if self.replay_on_connect else []
        pending, self._pending = self._pending, []
        for frame in [*replay, *pending]:
            await ws.send_str(frame)
            if frame in pending:
                self._delivered.append(frame)
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
        with contextlib.suppress(ValueError):
            self._sockets.remove(ws)
        return ws

    async def _send(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                {"error": "Couldn't process request - invalid request"}, status=400
            )
        if body.get("number") not in self.registered:
            return web.json_response(
                {"error": "Couldn't process request - please provide a valid number"}, status=400
            )
        recipients = body.get("recipients") or (
            [body["recipient"]] if body.get("recipient") else []
        )
        if not recipients:
            return web.json_response(
                {"error": "Couldn't process request - please provide at least one recipient"},
                status=400,
            )
        if self._force_429 > 0:
            self._force_429 -= 1
            self.rate_limited += 1
            return web.json_response(
                {
                    "error": "Failed to send message due to rate limiting",
                    "challenge_tokens": [str(uuidlib.uuid4())],
                    "account": body.get("number"),
                },
                status=429,
            )
        for recipient in recipients:
            if recipient.startswith("group."):
                group_id = base64.b64decode(recipient[len("group.") :]).decode()
                if group_id not in self.groups:
                    return web.json_response(
                        {"error": "Failed to send message: Invalid group id"}, status=400
                    )
        ts = self.timestamp()
        files = [str(a) for a in body.get("base64_attachments") or []]
        edit = body.get("edit_timestamp")
        for recipient in recipients:
            self.sent.append(SignalSent(recipient, str(body.get("message", "")), ts, files, edit))
        self.changed()
        return web.json_response({"timestamp": str(ts)}, status=201)

    async def _typing(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.typing.append((str(body.get("recipient", "")), request.method == "PUT"))
        return web.Response(status=204)

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        found = self.attachments.get(request.match_info["id"])
        if found is None:
            return web.json_response({"error": "attachment not found"}, status=404)
        return web.Response(body=found[0], content_type=found[1])
