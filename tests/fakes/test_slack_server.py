"""The fake Slack driven by the real slack_sdk over real sockets on 127.0.0.1.

Why: the Slack adapter's tests trust this fake, so the fake itself must be proven to speak
what slack_sdk expects: Web API envelopes and errors, 429 with ``Retry-After``, Socket Mode
``hello``, envelopes that must be acknowledged, redelivery of unacknowledged ones.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN, BOT_USER, FakeSlack


async def test_web_api_envelopes_errors_and_rate_limits() -> None:
    async with FakeSlack() as fake:
        web = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_base)
        auth = await web.auth_test()
        assert auth["ok"] and auth["user_id"] == BOT_USER
        posted = await web.chat_postMessage(channel="C1", text="hi", thread_ts="1.1")
        await web.chat_update(channel="C1", ts=posted["ts"], text="hi again")
        [message] = fake.messages_in("C1", "1.1")
        assert message.history == ["hi", "hi again"]
        with pytest.raises(SlackApiError) as refused:
            await web.chat_update(channel="C1", ts="9.9", text="x")
        assert refused.value.response["error"] == "message_not_found"
        fake.rate_limit_next("chat.postMessage", retry_after=3)
        with pytest.raises(SlackApiError) as limited:
            await web.chat_postMessage(channel="C1", text="too fast")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "3"
        assert len(fake.messages_in("C1")) == 1  # the refused call did not take effect
        bad = AsyncWebClient(token="xoxb-nope", base_url=fake.api_base)
        with pytest.raises(SlackApiError) as invalid:
            await bad.auth_test()
        assert invalid.value.response["error"] == "invalid_auth"
        upload = await web.files_upload_v2(channel="C1", content=b"data", filename="a.txt")
        assert fake.uploads[upload["files"][0]["id"]] == b"data"


async def test_socket_mode_hello_acks_and_redelivery() -> None:
    async with FakeSlack() as fake:
        web = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_base)
        got: list[dict[str, Any]] = []
        frames: list[str] = []
        ack = asyncio.Event()

        async def listener(client: SocketModeClient, req: SocketModeRequest) -> None:
            got.append({"retry": req.retry_attempt, "event_id": req.payload.get("event_id")})
            if ack.is_set():
                await client.send_socket_mode_response(SocketModeResponse(req.envelope_id))

        async def raw(client: Any, message: dict[str, Any], raw_message: str | None) -> None:
            frames.append(json.loads(raw_message or "{}").get("type", ""))

        client = SocketModeClient(APP_TOKEN, web_client=web, auto_reconnect_enabled=False)
        client.socket_mode_request_listeners.append(listener)
        client.message_listeners.append(raw)
        try:
            await client.connect_to_new_endpoint(force=True)
            await fake.wait_for(lambda: "hello" in frames)
            await fake.inject_message("U0ALICE", "D0ALICE", "not acknowledged", event_id="Ev1")
            await fake.wait_for(lambda: len(got) == 1)
            ack.set()
            await client.connect_to_new_endpoint(force=True)  # a new connection
            await fake.wait_for(lambda: len(got) == 2 and bool(fake.acked))
            assert got == [{"retry": 0, "event_id": "Ev1"}, {"retry": 1, "event_id": "Ev1"}]
            await fake.send_disconnect()
            await fake.wait_for(lambda: fake.connections_opened == 3)
        finally:
            await client.close()
