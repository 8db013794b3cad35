"""A real Synapse homeserver for the Matrix tests, on 127.0.0.1, started and stopped by them.

One per test session (Synapse takes seconds to start; users and rooms are cheap): SQLite in a
temporary directory (on tmpfs when there is one), no federation, no TLS, registration only
through the shared secret (``/_synapse/admin/v1/register`` with its HMAC), bcrypt at its
cheapest, and rate limits relaxed so fixtures never trip them. A test that wants a real 429
gives one user a strict limit with the admin API (:meth:`Synapse.limit`).

The process is an asyncio subprocess; :meth:`Synapse.stop` / :meth:`Synapse.start` let a test
take the server away and bring it back on the same port and database (a dropped connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["MatrixUser", "Synapse"]

SERVER_NAME = "localhost"
START_TIMEOUT = 60.0
"""Seconds Synapse may take to answer ``/health`` (a loaded CI machine is slow)."""

_RELAXED = {"per_second": 10_000, "burst_count": 10_000}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(root: Path, port: int, secret: str) -> str:
    """homeserver.yaml (JSON is YAML): only what a test server needs."""
    import json

    relaxed = dict(_RELAXED)
    config: dict[str, Any] = {
        "server_name": SERVER_NAME,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(root / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(root / "homeserver.db")}},
        "log_config": str(root / "log.yaml"),
        "media_store_path": str(root / "media"),
        "signing_key_path": str(root / "signing.key"),
        "registration_shared_secret": secret,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "report_stats": False,
        "enable_metrics": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "bcrypt_rounds": 4,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        # work a test server does not need (per event: directory, statistics, pushers)
        "user_directory": {"enabled": False},
        "stats": {"enabled": False},
        "push": {"enabled": False},
        "enable_registration": False,
        "rc_message": relaxed,
        "rc_registration": relaxed,
        "rc_login": {"address": relaxed, "account": relaxed, "failed_attempts": relaxed},
        "rc_joins": {"local": relaxed, "remote": relaxed},
        "rc_joins_per_room": relaxed,
        "rc_invites": {"per_room": relaxed, "per_user": relaxed, "per_issuer": relaxed},
        "rc_room_creation": relaxed,
        "rc_profile": relaxed,
        "rc_media_create": relaxed,
        "rc_admin_redaction": relaxed,
        "max_upload_size": "10M",
    }
    return json.dumps(config, indent=1)


_LOG_CONFIG = """\
version: 1
formatters:
  plain: {format: "%(asctime)s %(name)s %(levelname)s %(message)s"}
handlers:
  file: {class: logging.FileHandler, filename: LOGFILE, formatter: plain}
root: {level: WARNING, handlers: [file]}
disable_existing_loggers: false
"""


@dataclass
class MatrixUser:
    """A registered account and a token to act as it."""

    user_id: str
    token: str
    password: str
    device_id: str


class Synapse:
    """One Synapse process, its client API and the admin calls the tests need."""

    def __init__(self) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="hermes-synapse-", dir=base))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = secrets.token_hex(16)
        self.proc: asyncio.subprocess.Process | None = None
        self.admin: MatrixUser | None = None
        self._names = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self.startup_seconds = 0.0
        self._write_files()

    def _write_files(self) -> None:
        from signedjson.key import generate_signing_key, write_signing_keys

        (self.root / "media").mkdir()
        (self.root / "homeserver.yaml").write_text(_config(self.root, self.port, self.secret))
        (self.root / "log.yaml").write_text(
            _LOG_CONFIG.replace("LOGFILE", str(self.root / "homeserver.log"))
        )
        with open(self.root / "signing.key", "w") as f:
            write_signing_keys(f, [generate_signing_key("a_test")])

    @property
    def log_tail(self) -> str:
        path = self.root / "homeserver.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # --- the process -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the server and return once ``/health`` answers."""
        began = time.monotonic()
        errors = await asyncio.to_thread(open, self.root / "stderr.log", "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "synapse.app.homeserver",
            "-c",
            str(self.root / "homeserver.yaml"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=errors,
            cwd=self.root,
        )
        errors.close()  # the child has its own copy
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with self.http.get(
                    f"{self.url}/health", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        self.startup_seconds = time.monotonic() - began
                        return
            await asyncio.sleep(0.05)
        stderr = (self.root / "stderr.log").read_text(errors="replace")[-3000:]
        await self.stop()
        raise RuntimeError(f"Synapse did not start:\n{stderr}\n{self.log_tail}")

    async def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 10 s); the database stays."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def close(self) -> None:
        await self.stop()
        if self._session is not None:
            await self._session.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # --- client-server calls ---------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        expect: int | None = 200,
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            data = await resp.json(content_type=None)
            if expect is not None and resp.status != expect:
                raise AssertionError(f"{method} {path}: {resp.status} {data}")
            return data

    async def register(self, name: str | None = None, *, admin: bool = False) -> MatrixUser:
        """A new account through the shared-secret admin API (a fresh name by default)."""
        name = name or f"u{next(self._names)}x{secrets.token_hex(3)}"
        password = secrets.token_hex(8)
        nonce = (await self.call("GET", "/_synapse/admin/v1/register"))["nonce"]
        # the HMAC covers the fields joined by NULs (as Synapse's register_new_matrix_user)
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join(p.encode() for p in (nonce, name, password)))
        mac.update(b"\x00" + (b"admin" if admin else b"notadmin"))
        body = {
            "nonce": nonce,
            "username": name,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        data = await self.call("POST", "/_synapse/admin/v1/register", body=body)
        return MatrixUser(data["user_id"], data["access_token"], password, data["device_id"])

    async def admin_token(self) -> str:
        if self.admin is None:
            self.admin = await self.register(admin=True)
        return self.admin.token

    async def limit(self, user_id: str, per_second: int, burst: int) -> None:
        """A strict message rate limit for one user (the admin API's override)."""
        await self.call(
            "POST",
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            await self.admin_token(),
            {"messages_per_second": per_second, "burst_count": burst},
        )

    async def unlimit(self, user_id: str) -> None:
        await self.call(
            "DELETE",
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            await self.admin_token(),
        )

    async def create_room(
        self,
        owner: MatrixUser,
        *,
        invite: tuple[str, ...] | list[str] = (),
        direct: bool = False,
        name: str = "",
    ) -> str:
        body: dict[str, Any] = {"invite": list(invite), "is_direct": direct}
        body["preset"] = "trusted_private_chat" if direct else "private_chat"
        if name:
            body["name"] = name
        data = await self.call("POST", "/_matrix/client/v3/createRoom", owner.token, body)
        return str(data["room_id"])

    async def join(self, user: MatrixUser, room_id: str) -> None:
        await self.call("POST", f"/_matrix/client/v3/join/{room_id}", user.token, {})

    async def invite(self, user: MatrixUser, room_id: str, user_id: str) -> None:
        await self.call(
            "POST", f"/_matrix/client/v3/rooms/{room_id}/invite", user.token, {"user_id": user_id}
        )

    async def send(self, user: MatrixUser, room_id: str, content: dict[str, Any]) -> str:
        """Send an ``m.room.message`` as ``user``; its event id."""
        txn = secrets.token_hex(8)
        data = await self.call(
            "PUT",
            f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn}",
            user.token,
            content,
        )
        return str(data["event_id"])

    async def say(
        self,
        user: MatrixUser,
        room_id: str,
        text: str,
        *,
        thread: str | None = None,
        reply_to: str | None = None,
        mentions: list[str] | None = None,
    ) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": text}
        if thread:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": reply_to or thread},
            }
        elif reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        if mentions is not None:
            content["m.mentions"] = {"user_ids": mentions}
        return await self.send(user, room_id, content)

    async def messages(
        self, user: MatrixUser, room_id: str, limit: int = 200
    ) -> list[dict[str, Any]]:
        """The room's events, oldest first (as ``user`` sees them)."""
        data = await self.call(
            "GET",
            f"/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit={limit}",
            user.token,
        )
        return list(reversed(data.get("chunk", [])))
