"""A fake Slack (Web API + Socket Mode websocket) for tests that run the real slack_sdk/Bolt.

Why this exists: the Slack adapter must be exercised against slack_sdk and slack-bolt
themselves (their response parsing, Socket Mode acknowledgements, reconnects), never against
mocks. This module serves a protocol-faithful subset of Slack on 127.0.0.1:

* Web API (``POST /api/<method>``, form or JSON bodies, ``Authorization: Bearer``): every
  answer is an envelope ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` with HTTP
  200, except rate limiting: HTTP 429, ``Retry-After: <seconds>`` and ``error: ratelimited``
  (the request did not take effect). ``auth.test``, ``apps.connections.open`` (returns a
  ``ws://`` URL of this fake), ``chat.postMessage``, ``chat.update``, ``users.info``,
  ``conversations.info``, ``files.getUploadURLExternal`` + upload +
  ``files.completeUploadExternal``, and file downloads (``url_private_download``, bot token).
* Socket Mode: ``hello`` on connect; ``events_api`` and ``slash_commands`` envelopes, each
  with an ``envelope_id`` the client must acknowledge by sending ``{"envelope_id": ...}``
  back; an envelope not acknowledged when its connection ends is delivered again on the next
  connection with ``retry_attempt`` raised (what Slack does), its ``event_id`` unchanged;
  ``disconnect`` (``refresh_requested``) asks the client to reconnect.

Tests drive it through Python methods (the control API): :meth:`FakeSlack.inject_message`,
:meth:`inject_command`, :meth:`rate_limit_next`, :meth:`drop_connection`,
:meth:`send_disconnect`, and read :attr:`messages` (what the bot posted, with edit history).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes._aiohttp_fake import AiohttpFake

__all__ = ["BOT_TOKEN", "APP_TOKEN", "BOT_USER", "FakeSlack", "PostedMessage"]

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
BOT_USER = "UBOT0001"
TEAM = "T0000FAKE"
MAX_TEXT = 40_000
"""Slack truncates ``text`` past 40,000 characters; the fake refuses it (msg_too_long)."""


@dataclass
class PostedMessage:
    """A message the bot posted, with every text it showed (first post, then each edit)."""

    channel: str
    ts: str
    text: str
    thread_ts: str | None = None
    history: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass
class _Envelope:
    envelope_id: str
    frame: dict[str, Any]
    acked: bool = False


class FakeSlack(AiohttpFake):
    """One workspace with one bot; start with ``async with FakeSlack() as slack``."""

    client_max_size = 64 * 1024 * 1024
    wait_timeout = 10.0

    def __init__(self, *, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.app_token = app_token
        self.users: dict[str, str] = {"U0ALICE": "alice", "U0BOB": "bob", "U0EVE": "eve"}
        self.messages: list[PostedMessage] = []
        self.calls: list[str] = []
        self.acked: list[str] = []
        self.ack_payloads: list[dict[str, Any]] = []
        self._failures: dict[str, list[str]] = {}
        self.connections_opened = 0
        self.rate_limited = 0
        self.uploads: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self._ts = itertools.count(1)
        self._limits: dict[str, list[float]] = {}
        self._pending: list[_Envelope] = []
        self._tickets: set[str] = set()
        self._ws: web.WebSocketResponse | None = None
        self._ws_ready = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files/{file_id}", self._download)

    async def closing(self) -> None:
        if self._ws is not None:
            await self._ws.close()

    @property
    def api_base(self) -> str:
        """What slack_sdk takes as ``base_url`` (it appends the method name)."""
        return f"{self.base}/api/"

    # --- control API ----------------------------------------------------------------------
    def add_file(self, name: str, data: bytes) -> dict[str, Any]:
        """A file a user shared; returns the ``files[]`` entry of a message event."""
        file_id = f"F{len(self.files) + 1:08d}"
        self.files[file_id] = data
        url = f"{self.base}/files/{file_id}"
        return {
            "id": file_id,
            "name": name,
            "mimetype": "text/plain",
            "size": len(data),
            "url_private": url,
            "url_private_download": url,
        }

    async def inject_message(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        channel_type: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """A user writes ``text``: a ``message`` event envelope (and ``app_mention`` when the
        bot is mentioned, as Slack sends both). Returns the event."""
        kind = channel_type or {"D": "im", "G": "group"}.get(channel[:1], "channel")
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "channel_type": kind,
            "user": user,
            "text": text,
            "ts": self._next_ts(),
            "team": TEAM,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["files"] = files
            event["subtype"] = "file_share"
        event_id = event_id or f"Ev{uuid.uuid4().hex[:10].upper()}"
        await self._send_event(event, event_id)
        if f"<@{BOT_USER}>" in text and kind != "im":
            mention = {k: v for k, v in event.items() if k not in ("channel_type", "subtype")}
            mention["type"] = "app_mention"
            await self._send_event(mention, f"{event_id}M")
        return event

    async def inject_event(self, event: dict[str, Any], event_id: str | None = None) -> None:
        """Any event as Slack would wrap it (for malformed and unusual events)."""
        await self._send_event(event, event_id or f"Ev{uuid.uuid4().hex[:10].upper()}")

    async def inject_raw(self, frame: str) -> None:
        """Raw text on the socket, not even JSON (a hostile or broken peer)."""
        if self._ws is not None:
            await self._ws.send_str(frame)

    async def redeliver(self, event: dict[str, Any], event_id: str) -> None:
        """Slack delivering the same event again (a retry): same ``event_id``."""
        await self._send_event(dict(event), event_id, retry=1)

    async def inject_command(self, user: str, channel: str, command: str, text: str) -> None:
        """A slash command (``/hermes``...) typed by ``user`` in ``channel``."""
        payload = {
            "token": "verification-token",
            "team_id": TEAM,
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": self.users.get(user, user),
            "command": command,
            "text": text,
            "api_app_id": "A0FAKE",
            "response_url": f"{self.base}/response",
            "trigger_id": uuid.uuid4().hex,
        }
        await self._deliver("slash_commands", payload, accepts=True)

    def rate_limit_next(self, method: str, retry_after: float = 1.0, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` get HTTP 429 with ``Retry-After``."""
        self._limits.setdefault(method, []).extend([retry_after] * count)

    def fail_next(self, method: str, error: str, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._failures.setdefault(method, []).extend([error] * count)

    async def drop_connection(self) -> None:
        """Cut the Socket Mode connection without a goodbye (a network failure)."""
        ws, self._ws = self._ws, None
        self._ws_ready.clear()
        if ws is not None:
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()
            with contextlib.suppress(Exception):
                await ws.close()

    async def send_disconnect(self) -> None:
        """Slack asks the client to reconnect (``refresh_requested``)."""
        if self._ws is not None:
            await self._ws.send_json(
                {"type": "disconnect", "reason": "refresh_requested", "debug_info": {}}
            )

    def messages_in(self, channel: str, thread_ts: str | None = None) -> list[PostedMessage]:
        return [
            m
            for m in self.messages
            if m.channel == channel and (thread_ts is None or m.thread_ts == thread_ts)
        ]

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def wait_connected(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await self._ws_ready.wait()

    # --- socket mode ----------------------------------------------------------------------
    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    async def _send_event(self, event: dict[str, Any], event_id: str, retry: int = 0) -> None:
        payload = {
            "token": "verification-token",
            "team_id": TEAM,
            "api_app_id": "A0FAKE",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }
        await self._deliver("events_api", payload, retry=retry)

    async def _deliver(
        self, kind: str, payload: dict[str, Any], *, retry: int = 0, accepts: bool = False
    ) -> None:
        env = _Envelope(
            uuid.uuid4().hex,
            {
                "type": kind,
                "payload": payload,
                "accepts_response_payload": accepts,
                "retry_attempt": retry,
                "retry_reason": "timeout" if retry else "",
            },
        )
        env.frame["envelope_id"] = env.envelope_id
        self._pending.append(env)
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(env.frame)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        if request.query.get("ticket") not in self._tickets:
            await ws.close(code=4001, message=b"invalid ticket")
            return ws
        old, self._ws = self._ws, ws
        if old is not None:
            await old.close()
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKE"}}
        )
        # Unacknowledged envelopes of the previous connection come again, as retries.
        for env in [e for e in self._pending if not e.acked]:
            env.frame["retry_attempt"] = int(env.frame["retry_attempt"]) + 1
            env.frame["retry_reason"] = "timeout"
            await ws.send_json(env.frame)
        self._ws_ready.set()
        self.changed()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            with contextlib.suppress(ValueError):
                data = json.loads(msg.data)
                eid = data.get("envelope_id")
                for env in self._pending:
                    if env.envelope_id == eid:
                        env.acked = True
                        self.acked.append(eid)
                        if isinstance(data.get("payload"), dict):
                            self.ack_payloads.append(data["payload"])
                self._pending = [e for e in self._pending if not e.acked]
                self.changed()
        if self._ws is ws:
            self._ws = None
            self._ws_ready.clear()
        self.changed()
        return ws

    # --- web API --------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif request.can_read_body:
            params.update(dict(await request.post()))
        return params

    @staticmethod
    def _token(request: web.Request, params: dict[str, Any]) -> str:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:]
        return str(params.get("token", ""))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(method)
        limits = self._limits.get(method)
        if limits:
            retry = limits.pop(0)
            self.rate_limited += 1
            self.changed()
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": f"{retry:g}"},
            )
        failures = self._failures.get(method)
        if failures:
            self.changed()
            return _error(failures.pop(0))
        token = self._token(request, params)
        want = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            return _error("not_authed")
        if token != want:
            return _error("invalid_auth")
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("unknown_method")
        result: web.Response = await handler(request, params)
        self.changed()
        return result

    async def _m_auth_test(self, _r: web.Request, _p: dict[str, Any]) -> web.Response:
        return _ok(
            url="https://fake.slack.com/",
            team="Fake Team",
            user="hermes",
            team_id=TEAM,
            user_id=BOT_USER,
            bot_id="B0FAKE",
            is_enterprise_install=False,
        )

    async def _m_apps_connections_open(self, _r: web.Request, _p: dict[str, Any]) -> web.Response:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        self.connections_opened += 1
        return _ok(url=f"ws://127.0.0.1:{self.port}/link?ticket={ticket}")

    async def _m_chat_postMessage(self, _r: web.Request, p: dict[str, Any]) -> web.Response:
        channel, text = str(p.get("channel", "")), str(p.get("text", ""))
        if not channel:
            return _error("channel_not_found")
        if not text.strip() and not p.get("blocks"):
            return _error("no_text")
        if len(text) > MAX_TEXT:
            return _error("msg_too_long")
        ts = self._next_ts()
        thread = p.get("thread_ts") or None
        self.messages.append(PostedMessage(channel, ts, text, thread, [text]))
        return _ok(channel=channel, ts=ts, message={"text": text, "ts": ts, "user": BOT_USER})

    async def _m_chat_update(self, _r: web.Request, p: dict[str, Any]) -> web.Response:
        channel, ts, text = str(p.get("channel", "")), str(p.get("ts", "")), str(p.get("text", ""))
        for m in self.messages:
            if m.channel == channel and m.ts == ts:
                if len(text) > MAX_TEXT:
                    return _error("msg_too_long")
                m.text = text
                m.history.append(text)
                return _ok(channel=channel, ts=ts, text=text)
        return _error("message_not_found")

    async def _m_users_info(self, _r: web.Request, p: dict[str, Any]) -> web.Response:
        uid = str(p.get("user", ""))
        name = self.users.get(uid)
        if name is None:
            return _error("user_not_found")
        profile = {"display_name": name, "real_name": name.title()}
        return _ok(user={"id": uid, "name": name, "real_name": name.title(), "profile": profile})

    async def _m_conversations_info(self, _r: web.Request, p: dict[str, Any]) -> web.Response:
        cid = str(p.get("channel", ""))
        return _ok(channel={"id": cid, "name": f"chan-{cid.lower()}", "is_im": cid[:1] == "D"})

    async def _m_files_getUploadURLExternal(
        self, _r: web.Request, p: dict[str, Any]
    ) -> web.Response:
        file_id = f"FU{len(self.uploads) + 1:07d}"
        self.uploads[file_id] = b""
        url = f"{self.base}/upload/{file_id}"
        return _ok(upload_url=url, file_id=file_id)

    async def _m_files_completeUploadExternal(
        self, _r: web.Request, p: dict[str, Any]
    ) -> web.Response:
        files = p.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        channel = str(p.get("channel_id", ""))
        done = []
        for f in files or []:
            if f.get("id") not in self.uploads:
                return _error("file_not_found")
            done.append({"id": f["id"], "title": f.get("title", "")})
        if channel:
            ts = self._next_ts()
            comment = str(p.get("initial_comment", ""))
            msg = PostedMessage(channel, ts, comment, p.get("thread_ts") or None, [comment])
            msg.files = [f["id"] for f in done]
            self.messages.append(msg)
        return _ok(files=done)

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.uploads:
            return web.Response(status=404)
        self.uploads[file_id] = await request.read()
        self.changed()
        return web.Response(text="OK - " + str(len(self.uploads[file_id])))

    async def _download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            # Slack answers a login page (HTML, 200) to a download without the bot token.
            return web.Response(text="<html>sign in</html>", content_type="text/html")
        data = self.files.get(request.match_info["file_id"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")


def _ok(**fields: Any) -> web.Response:
    return web.json_response({"ok": True, **fields})


def _error(error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error})
