"""One Mattermost websocket connection: authentication challenge, ``hello``, sequence numbers.

The server numbers the events of a connection from 0 (the ``hello``); a gap means events
were lost on the way, which the adapter repairs by fetching the channels' recent posts.
The connection authenticates with the ``authentication_challenge`` action (the token in the
first frame, not in a header a proxy might strip), and counts as up once ``hello`` came.
Answers to our own actions carry ``seq_reply`` and are not events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["HELLO_TIMEOUT", "ConnectionLost", "WebsocketEvent", "run_websocket"]

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 15.0
"""Seconds from connecting to the server's ``hello`` before the attempt counts as failed."""
HEARTBEAT = 30.0
"""Websocket ping interval; a server that stops answering is noticed within two of them."""


class ConnectionLost(Exception):
    """The websocket ended (or never came up); the reason is shown in the Platforms pane."""


@dataclass(frozen=True)
class WebsocketEvent:
    """One server event as sent: name, its data, the broadcast envelope and its number."""

    event: str
    data: dict[str, Any]
    broadcast: dict[str, Any]
    seq: int


async def run_websocket(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    *,
    on_hello: Callable[[WebsocketEvent], Awaitable[None]],
    on_event: Callable[[WebsocketEvent], None],
    on_gap: Callable[[int, int], None],
) -> None:
    """Connect, authenticate, and feed events until the connection ends.

    Always ends by raising :class:`ConnectionLost` (or being cancelled).
    """
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            ws = await session.ws_connect(url, heartbeat=HEARTBEAT, autoping=True)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ConnectionLost(f"cannot reach the websocket: {exc or type(exc).__name__}") from exc
    try:
        challenge = {"seq": 1, "action": "authentication_challenge", "data": {"token": token}}
        await ws.send_str(json.dumps(challenge))
        expected = 0
        hello = False
        deadline = asyncio.get_running_loop().time() + HELLO_TIMEOUT
        while True:
            timeout = None if hello else max(0.0, deadline - asyncio.get_running_loop().time())
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError as exc:
                raise ConnectionLost("no hello from the server (token refused?)") from exc
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
                raise ConnectionLost(f"websocket closed ({ws.close_code or msg.data})")
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise ConnectionLost(f"websocket lost ({ws.exception() or 'closed'})")
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except ValueError:
                log.warning("Mattermost sent a frame that is not JSON")
                continue
            if not isinstance(frame, dict):
                continue
            if "seq_reply" in frame:
                if frame.get("status") != "OK":
                    log.warning("Mattermost refused action %s: %s", frame.get("seq_reply"), frame)
                continue
            name = frame.get("event")
            if not isinstance(name, str):
                continue
            seq = frame.get("seq")
            data, broadcast = frame.get("data"), frame.get("broadcast")
            event = WebsocketEvent(
                name,
                data if isinstance(data, dict) else {},
                broadcast if isinstance(broadcast, dict) else {},
                seq if isinstance(seq, int) else -1,
            )
            if isinstance(seq, int):
                if hello and seq > expected:  # a number going back is not a loss
                    on_gap(expected, seq)
                expected = seq + 1
            if name == "hello":
                hello = True
                await on_hello(event)
                continue
            on_event(event)
    finally:
        await ws.close()
