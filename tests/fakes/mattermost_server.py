"""A fake Mattermost server on 127.0.0.1: REST API v4 and the websocket, as documented.

Enough of the server for a bot: users, one team, channels (open ``O``, private ``P``, direct
``D``, group ``G``), posts with threads (``root_id``), patches, files, typing, and the
websocket with the ``authentication_challenge`` action, the ``hello`` event and ``posted``
events numbered by ``seq`` (the post serialised as JSON inside the ``post`` string field,
``mentions`` as a JSON list in a string, as the server sends them). Errors are Mattermost's
``{"id", "message", "detailed_error", "request_id", "status_code"}``; a forced 429 carries
``X-Ratelimit-Limit/Remaining/Reset`` and ``Retry-After`` with the rate limiter's plain body.

The control API (plain methods, same loop) lets a test post as a user, read what the bot
posted and every edit of it, force 429s, and drop or refuse the websocket.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes._aiohttp_fake import AiohttpFake

__all__ = ["FakeMattermost", "FakePost"]

_ALPHABET = string.ascii_lowercase + string.digits


def new_id() -> str:
    """A 26-character id like Mattermost's."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(26))


_last_ms = 0


def now_ms() -> int:
    """Milliseconds, strictly increasing (the server orders posts by it)."""
    global _last_ms
    _last_ms = max(_last_ms + 1, int(time.time() * 1000))
    return _last_ms


@dataclass
class FakePost:
    """A post as stored, with every message it showed (first the created one, then edits)."""

    id: str
    channel_id: str
    user_id: str
    message: str
    root_id: str = ""
    file_ids: list[str] = field(default_factory=list)
    create_at: int = field(default_factory=now_ms)
    update_at: int = 0
    edit_at: int = 0
    history: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.update_at or self.create_at,
            "edit_at": self.edit_at,
            "delete_at": 0,
            "is_pinned": False,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "root_id": self.root_id,
            "original_id": "",
            "message": self.message,
            "type": "",
            "props": {},
            "hashtags": "",
            "pending_post_id": "",
            "reply_count": 0,
            "file_ids": list(self.file_ids),
            "metadata": {},
        }


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    user_id: str = ""
    seq: int = 0


class FakeMattermost(AiohttpFake):
    """The fake server; ``async with FakeMattermost() as mm`` starts and stops it.

    Args:
        post_limit: MaxPostSize, reported in the client config and enforced on posts.
        expose_limit: Whether ``/config/client`` names MaxPostSize at all.
    """

    client_max_size = 64 * 1024 * 1024

    def __init__(self, *, post_limit: int = 16383, expose_limit: bool = True) -> None:
        super().__init__()
        self.token = f"mmbot-{secrets.token_hex(8)}"
        self.post_limit = post_limit
        self.expose_limit = expose_limit
        self.team_id = new_id()
        self.users: dict[str, str] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.members: dict[str, set[str]] = {}
        self.posts: dict[str, FakePost] = {}
        self.files: dict[str, tuple[str, str, bytes]] = {}
        """file id -> (channel id, name, data)."""
        self.rate_limited = 0
        self.refuse_websocket = False
        self.websocket_auths = 0
        self.typing: list[str] = []
        self.bot_id = self.add_user("hermes")
        self._conns: list[_Conn] = []
        self._force_429 = 0
        self._reset_seconds = 1.0

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.base

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v4/{path:.*}", self._route)

    async def closing(self) -> None:
        await self.drop_websockets()

    # --- control API --------------------------------------------------------------------

    def add_user(self, username: str) -> str:
        user_id = new_id()
        self.users[user_id] = username
        return user_id

    def add_channel(self, name: str, members: list[str], *, kind: str = "O") -> str:
        """An open (``O``), private (``P``) or group (``G``) channel with the bot in it."""
        channel_id = new_id()
        self.channels[channel_id] = {
            "id": channel_id,
            "team_id": self.team_id if kind in "OP" else "",
            "type": kind,
            "display_name": name.title(),
            "name": name,
            "create_at": now_ms(),
        }
        self.members[channel_id] = {self.bot_id, *members}
        return channel_id

    def dm(self, user_id: str) -> str:
        """The direct channel between the bot and ``user_id`` (made on first use)."""
        name = "__".join(sorted((self.bot_id, user_id)))
        for chan in self.channels.values():
            if chan["name"] == name:
                return str(chan["id"])
        channel_id = new_id()
        self.channels[channel_id] = {
            "id": channel_id,
            "team_id": "",
            "type": "D",
            "display_name": "",
            "name": name,
            "create_at": now_ms(),
        }
        self.members[channel_id] = {self.bot_id, user_id}
        return channel_id

    def add_file(self, channel_id: str, name: str, data: bytes) -> str:
        file_id = new_id()
        self.files[file_id] = (channel_id, name, data)
        return file_id

    async def post_as(
        self,
        user_id: str,
        channel_id: str,
        message: str,
        *,
        root_id: str = "",
        file_ids: list[str] | None = None,
        lost: bool = False,
    ) -> FakePost:
        """A user writes a post: stored, then broadcast as ``posted`` to live connections.

        ``lost``: the event is numbered but never arrives (a gap in ``seq``).
        """
        post = FakePost(new_id(), channel_id, user_id, message, root_id, list(file_ids or []))
        post.history.append(message)
        self.posts[post.id] = post
        if lost:
            for conn in self._conns:
                if conn.user_id in self.members.get(channel_id, set()):
                    conn.seq += 1
        else:
            await self._broadcast_posted(post)
        self.changed()
        return post

    def force_429(self, count: int, reset_seconds: float = 1.0) -> None:
        """The next ``count`` writes (posts, patches) are refused with 429."""
        self._force_429, self._reset_seconds = count, reset_seconds

    async def send_raw(self, text: str) -> None:
        """Send a frame as is to every authenticated connection (hostile-input tests)."""
        for conn in list(self._conns):
            if conn.user_id and not conn.ws.closed:
                await conn.ws.send_str(text)

    async def drop_websockets(self) -> None:
        """Close every live websocket, as a network drop or a server restart would."""
        conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001)
        self.changed()

    @property
    def live_connections(self) -> int:
        return sum(1 for c in self._conns if c.user_id and not c.ws.closed)

    def bot_posts(self, channel_id: str, root_id: str | None = None) -> list[FakePost]:
        """The bot's posts in a channel (in a thread when ``root_id`` is given), in order."""
        return [
            p
            for p in self.posts.values()
            if p.user_id == self.bot_id
            and p.channel_id == channel_id
            and (root_id is None or p.root_id == root_id)
        ]

    def shown(self, channel_id: str, root_id: str | None = None) -> list[str]:
        return [p.message for p in self.bot_posts(channel_id, root_id)]

    # --- wire helpers -------------------------------------------------------------------

    @staticmethod
    def _error(status: int, error_id: str, message: str) -> web.Response:
        body = {
            "id": error_id,
            "message": message,
            "detailed_error": "",
            "request_id": new_id(),
            "status_code": status,
        }
        return web.json_response(body, status=status)

    def _too_many(self) -> web.Response:
        self.rate_limited += 1
        reset = self._reset_seconds
        headers = {
            "X-Ratelimit-Limit": "10",
            "X-Ratelimit-Remaining": "0",
            "X-Ratelimit-Reset": f"{reset:g}",
            "Retry-After": f"{reset:g}",
        }
        return web.Response(status=429, text="limit exceeded\n", headers=headers)

    def _user(self, user_id: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "username": self.users[user_id],
            "first_name": "",
            "last_name": "",
            "nickname": "",
            "roles": "system_user",
            "is_bot": user_id == self.bot_id,
            "locale": "en",
        }

    async def _broadcast(self, event: str, data: dict[str, Any], channel_id: str) -> None:
        members = self.members.get(channel_id, set())
        for conn in list(self._conns):
            if not conn.user_id or conn.user_id not in members or conn.ws.closed:
                continue
            conn.seq += 1
            frame = {
                "event": event,
                "data": data,
                "broadcast": {
                    "omit_users": None,
                    "user_id": "",
                    "channel_id": channel_id,
                    "team_id": self.channels[channel_id]["team_id"],
                    "connection_id": "",
                    "omit_connection_id": "",
                },
                "seq": conn.seq,
            }
            with contextlib.suppress(Exception):
                await conn.ws.send_str(json.dumps(frame))

    async def _broadcast_posted(self, post: FakePost) -> None:
        chan = self.channels[post.channel_id]
        members = self.members[post.channel_id]
        mentioned = [
            uid
            for uid in members
            if uid != post.user_id and f"@{self.users[uid]}".lower() in post.message.lower()
        ]
        if chan["type"] == "D":
            mentioned = [uid for uid in members if uid != post.user_id]
        data = {
            "channel_display_name": (
                f"@{self.users[post.user_id]}" if chan["type"] == "D" else chan["display_name"]
            ),
            "channel_name": chan["name"],
            "channel_type": chan["type"],
            "post": json.dumps(post.payload()),
            "sender_name": f"@{self.users[post.user_id]}",
            "set_online": True,
            "team_id": chan["team_id"],
        }
        if mentioned:
            data["mentions"] = json.dumps(mentioned)
        await self._broadcast("posted", data, post.channel_id)

    # --- REST ---------------------------------------------------------------------------

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        method = request.method
        self.requests.append((method, path))
        if path == "/websocket":
            return await self._websocket(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(
                401,
                "api.context.session_expired.app_error",
                "Invalid or expired session, please login again.",
            )
        parts = path.strip("/").split("/")
        if method in ("POST", "PUT") and parts[0] == "posts" and self._force_429 > 0:
            self._force_429 -= 1
            return self._too_many()
        handler = self._handler(method, parts)
        if handler is None:
            return self._error(
                404, "api.context.404.app_error", "Sorry, we could not find the page."
            )
        return await handler(request, parts)

    def _handler(self, method: str, parts: list[str]) -> Any:
        table = {
            ("GET", "users", "me"): self._me,
            ("GET", "config", "client"): self._client_config,
            ("POST", "posts"): self._create_post,
            ("PUT", "posts", "*", "patch"): self._patch_post,
            ("POST", "files"): self._upload,
            ("GET", "files", "*"): self._file,
            ("GET", "files", "*", "info"): self._file_info,
            ("GET", "channels", "*"): self._channel,
            ("GET", "channels", "*", "posts"): self._channel_posts,
            ("GET", "users", "me", "teams"): self._teams,
            ("GET", "users", "me", "teams", "*", "channels"): self._team_channels,
            ("POST", "users", "me", "typing"): self._typing,
            ("GET", "users", "*"): self._get_user,
        }
        exact = table.get((method, *parts))
        if exact is not None:
            return exact
        for key, handler in table.items():
            if key[0] == method and len(key) == len(parts) + 1:
                if all(k in ("*", p) for k, p in zip(key[1:], parts, strict=True)):
                    return handler
        return None

    async def _me(self, request: web.Request, parts: list[str]) -> web.Response:
        return web.json_response(self._user(self.bot_id))

    async def _get_user(self, request: web.Request, parts: list[str]) -> web.Response:
        if parts[1] not in self.users:
            return self._error(404, "app.user.missing_account.const", "Unable to find the user.")
        return web.json_response(self._user(parts[1]))

    async def _client_config(self, request: web.Request, parts: list[str]) -> web.Response:
        config: dict[str, str] = {"Version": "10.5.0", "SiteName": "Fake Mattermost"}
        if self.expose_limit:
            config["MaxPostSize"] = str(self.post_limit)
        return web.json_response(config)

    def _check_message(self, message: str) -> web.Response | None:
        if len(message) > self.post_limit:
            return self._error(
                400, "model.post.is_valid.msg.app_error", "Invalid Message property for post."
            )
        return None

    async def _create_post(self, request: web.Request, parts: list[str]) -> web.Response:
        body = await request.json()
        channel_id = str(body.get("channel_id", ""))
        if self.bot_id not in self.members.get(channel_id, set()):
            return self._error(
                403,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            )
        message = str(body.get("message", ""))
        file_ids = [str(f) for f in body.get("file_ids") or []]
        if not message and not file_ids:
            return self._error(400, "api.post.create_post.message.app_error", "Empty post.")
        if (bad := self._check_message(message)) is not None:
            return bad
        root_id = str(body.get("root_id") or "")
        if root_id:
            root = self.posts.get(root_id)
            if root is None or root.root_id or root.channel_id != channel_id:
                return self._error(
                    400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter."
                )
        post = FakePost(new_id(), channel_id, self.bot_id, message, root_id, file_ids)
        post.history.append(message)
        self.posts[post.id] = post
        await self._broadcast_posted(post)
        self.changed()
        return web.json_response(post.payload(), status=201)

    async def _patch_post(self, request: web.Request, parts: list[str]) -> web.Response:
        post = self.posts.get(parts[1])
        if post is None:
            return self._error(404, "app.post.get.app_error", "Unable to get the post.")
        if post.user_id != self.bot_id:
            return self._error(
                403,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            )
        body = await request.json()
        message = str(body.get("message", post.message))
        if (bad := self._check_message(message)) is not None:
            return bad
        post.message = message
        post.history.append(message)
        post.update_at = post.edit_at = now_ms()
        self.changed()
        return web.json_response(post.payload())

    async def _upload(self, request: web.Request, parts: list[str]) -> web.Response:
        form = await request.post()
        channel_id = str(form.get("channel_id", ""))
        if self.bot_id not in self.members.get(channel_id, set()):
            return self._error(
                403,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            )
        infos = []
        for value in form.getall("files", []):
            if isinstance(value, web.FileField):
                data = value.file.read()
                file_id = self.add_file(channel_id, value.filename, data)
                infos.append(
                    {"id": file_id, "name": value.filename, "size": len(data), "mime_type": ""}
                )
        self.changed()
        return web.json_response({"file_infos": infos, "client_ids": []}, status=201)

    def _readable_file(self, file_id: str) -> tuple[str, str, bytes] | web.Response:
        entry = self.files.get(file_id)
        if entry is None:
            return self._error(404, "app.file_info.get.app_error", "Unable to get the file info.")
        if self.bot_id not in self.members.get(entry[0], set()):
            return self._error(
                403,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            )
        return entry

    async def _file(self, request: web.Request, parts: list[str]) -> web.Response:
        entry = self._readable_file(parts[1])
        if isinstance(entry, web.Response):
            return entry
        return web.Response(body=entry[2], content_type="application/octet-stream")

    async def _file_info(self, request: web.Request, parts: list[str]) -> web.Response:
        entry = self._readable_file(parts[1])
        if isinstance(entry, web.Response):
            return entry
        channel_id, name, data = entry
        mime = "text/plain" if name.endswith(".txt") else "application/octet-stream"
        return web.json_response(
            {"id": parts[1], "name": name, "size": len(data), "mime_type": mime, "extension": ""}
        )

    async def _channel(self, request: web.Request, parts: list[str]) -> web.Response:
        chan = self.channels.get(parts[1])
        if chan is None or self.bot_id not in self.members[parts[1]]:
            return self._error(
                403,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            )
        return web.json_response(chan)

    async def _channel_posts(self, request: web.Request, parts: list[str]) -> web.Response:
        channel_id = parts[1]
        if self.bot_id not in self.members.get(channel_id, set()):
            return self._error(
                403,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            )
        since = int(request.query.get("since", "0") or 0)
        posts = [
            p
            for p in self.posts.values()
            if p.channel_id == channel_id and (p.update_at or p.create_at) >= since
        ]
        posts.sort(key=lambda p: p.create_at, reverse=True)
        return web.json_response(
            {
                "order": [p.id for p in posts],
                "posts": {p.id: p.payload() for p in posts},
                "next_post_id": "",
                "prev_post_id": "",
            }
        )

    async def _teams(self, request: web.Request, parts: list[str]) -> web.Response:
        return web.json_response([{"id": self.team_id, "name": "lab", "display_name": "Lab"}])

    async def _team_channels(self, request: web.Request, parts: list[str]) -> web.Response:
        mine = [c for cid, c in self.channels.items() if self.bot_id in self.members[cid]]
        return web.json_response(mine)

    async def _typing(self, request: web.Request, parts: list[str]) -> web.Response:
        body = await request.json()
        self.typing.append(str(body.get("channel_id", "")))
        return web.json_response({"status": "OK"})

    # --- websocket ----------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_websocket:
            return self._error(503, "api.server.unavailable", "Server is restarting.")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Conn(ws)
        self._conns.append(conn)
        if request.headers.get("Authorization") == f"Bearer {self.token}":
            await self._authenticated(conn, None)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame.get("action") == "authentication_challenge":
                    token = (frame.get("data") or {}).get("token")
                    if token != self.token:
                        await ws.close(code=1008)  # the server drops a bad challenge
                        break
                    await self._authenticated(conn, frame.get("seq"))
        finally:
            with contextlib.suppress(ValueError):
                self._conns.remove(conn)
            self.changed()
        return ws

    async def _authenticated(self, conn: _Conn, seq_reply: Any) -> None:
        if seq_reply is not None:
            await conn.ws.send_str(json.dumps({"status": "OK", "seq_reply": seq_reply}))
        if conn.user_id:
            return
        conn.user_id = self.bot_id
        self.websocket_auths += 1
        hello = {
            "event": "hello",
            "data": {"connection_id": new_id(), "server_version": "10.5.0.10.5.0.abc.false"},
            "broadcast": {
                "omit_users": None,
                "user_id": self.bot_id,
                "channel_id": "",
                "team_id": "",
            },
            "seq": 0,
        }
        await conn.ws.send_str(json.dumps(hello))
        self.changed()
