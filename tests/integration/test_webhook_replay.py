"""Webhook replay and lost deliveries, tried as an attacker and as an unlucky operator would.

Why: the delivery id is not signed, so a captured request used to run again under any new id,
and forever (no time was signed either). And a delivery was recorded when it was received:
a gateway stopped mid-run never delivered the answer, and the sender's retry was refused as a
duplicate. Now a timestamp is signed with the body, the signature itself identifies a request,
and a delivery counts as done only once its answer was delivered.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from hermes_gateway import events as ev
from hermes_gateway.config import Config, WebhookRoute
from hermes_gateway.platforms.api.webhook import sign
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.api_harness import ApiHarness, start_api

SECRET = "s3cret-for-tests"
BODY = json.dumps({"alert": {"name": "disk"}}).encode()


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    def configure(config: Config) -> None:
        config.platforms.api_server.webhooks = {"alerts": WebhookRoute(secret=SECRET)}

    harness = await start_api(hermes_home, fake_openai, configure=configure)
    yield harness
    await harness.stop()


def stamped(stamp: int, body: bytes = BODY, **extra: str) -> dict[str, str]:
    return {
        "X-Hermes-Timestamp": str(stamp),
        "X-Hermes-Signature": "sha256="
        + hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest(),
        "X-Hermes-Event": "alert",
        **extra,
    }


async def send(api: ApiHarness, headers: dict[str, str], body: bytes = BODY) -> tuple[int, dict]:
    status, _, answer = await api.post("/webhooks/alerts", raw=body, headers=headers, auth=False)
    return status, json.loads(answer)


async def test_the_same_signed_request_runs_once_whatever_delivery_id_it_carries(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    captured = stamped(int(time.time()))
    assert (await send(api, captured))[0] == 200
    status, body = await send(api, captured)  # replayed verbatim
    assert (status, body["status"]) == (200, "duplicate")
    status, body = await send(api, {**captured, "X-Hermes-Delivery": "fresh-id"})
    assert (status, body["status"]) == (200, "duplicate")
    assert len(fake_openai.requests) == 1


async def test_stale_and_future_timestamps_are_refused(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    now = int(time.time())
    status, body = await send(api, stamped(now - 301))  # the window is 300 s
    assert status == 401 and body["error"]["code"] == "stale_timestamp"
    status, body = await send(api, stamped(now + 600))
    assert status == 401 and body["error"]["code"] == "timestamp_in_future"
    assert fake_openai.requests == []
    status, body = await send(api, stamped(now - 60))  # a minute on the way is fine
    assert status == 200, body


async def test_a_forged_timestamp_with_an_old_signature_is_refused(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    now = int(time.time())
    old = stamped(now - 3600)
    status, body = await send(api, {**old, "X-Hermes-Timestamp": str(now)})
    assert status == 401 and body["error"]["code"] == "invalid_signature"
    # A body-only X-Hermes-Signature (the old scheme) does not vouch for a timestamp.
    body_only = {"X-Hermes-Signature": sign(SECRET, BODY), "X-Hermes-Event": "alert"}
    status, body = await send(api, {**body_only, "X-Hermes-Timestamp": str(now)})
    assert status == 401 and body["error"]["code"] == "invalid_signature"
    status, body = await send(api, body_only)
    assert status == 401 and body["error"]["code"] == "missing_timestamp"
    assert fake_openai.requests == []


async def test_github_signed_requests_need_their_delivery_id_and_run_once_per_id(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    github = {"X-Hub-Signature-256": sign(SECRET, BODY), "X-GitHub-Event": "alert"}
    status, body = await send(api, github)
    assert status == 400 and body["error"]["code"] == "missing_delivery_id"
    assert (await send(api, {**github, "X-GitHub-Delivery": "g-1"}))[0] == 200
    status, body = await send(api, {**github, "X-GitHub-Delivery": "g-1"})
    assert (status, body["status"]) == (200, "duplicate")
    assert len(fake_openai.requests) == 1


async def test_a_running_delivery_is_not_started_twice(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(ScriptedReply(text="slow answer", hold_at=[1]))
    headers = {"X-Hermes-Delivery": "d-1"}
    first = asyncio.create_task(send(api, stamped(int(time.time()), **headers)))
    await fake_openai.wait_until(lambda: fake_openai.held == 1)
    status, body = await send(api, stamped(int(time.time()) - 1, **headers))
    assert status == 409 and body["error"]["code"] == "delivery_in_progress"
    fake_openai.release()
    status, body = await first
    assert status == 200 and body["output"] == "slow answer"
    status, body = await send(api, stamped(int(time.time()) - 2, **headers))
    assert (status, body["status"]) == (200, "duplicate")
    assert len(fake_openai.requests) == 1


async def _telegram_api(home: Path, fake: FakeOpenAI, tg: FakeTelegram) -> ApiHarness:
    def configure(config: Config) -> None:
        config.platforms.telegram.poll_timeout = 1.0
        config.platforms.telegram.rate_interval = 0.0
        config.platforms.telegram.global_rate = 0.0
        config.platforms.api_server.webhooks = {
            "alerts": WebhookRoute(
                secret=SECRET, prompt="Alert: {alert.name}", deliver="telegram:4242"
            )
        }

    api = await start_api(
        home,
        fake,
        configure=configure,
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_BASE_URL=tg.base_url,
        TELEGRAM_BASE_FILE_URL=tg.base_file_url,
    )
    await api.rec.wait_for(
        lambda: any(
            e.platform == "telegram" and e.state == "connected"
            for e in api.rec.of(ev.PlatformStatus)
        )
    )
    return api


async def test_a_delivery_stopped_mid_run_is_delivered_exactly_once_on_retry(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """202 Accepted, then the gateway stops before the answer went out: the sender's retry
    (same delivery id, GitHub-style) must run it, and only once."""
    github = {
        "X-Hub-Signature-256": sign(SECRET, BODY),
        "X-GitHub-Event": "alert",
        "X-GitHub-Delivery": "retry-me",
    }
    async with FakeTelegram() as tg:
        api = await _telegram_api(hermes_home, fake_openai, tg)
        try:
            fake_openai.enqueue(ScriptedReply(text="never finished", hold_at=[1]))
            status, body = await send(api, github)
            assert (status, body["status"]) == (202, "accepted")
            await fake_openai.wait_until(lambda: fake_openai.held == 1)
        finally:
            await api.stop()  # mid-run: the turn is interrupted, nothing is delivered
        assert tg.messages_in(4242) == []

        api = await _telegram_api(hermes_home, fake_openai, tg)
        try:
            fake_openai.enqueue(ScriptedReply(text="Disk is full."))
            status, body = await send(api, github)  # the sender retries
            assert (status, body["status"]) == (202, "accepted"), body
            await tg.wait_for(lambda: tg.messages_in(4242))
            await api.adapter.webhooks.stop()  # the run is over (delivered and recorded)
            status, body = await send(api, github)  # and retries once more
            assert (status, body["status"]) == (200, "duplicate")
        finally:
            await api.stop()
        [message] = tg.messages_in(4242)
        assert "Disk is full." in message.plain_text
        assert len(fake_openai.requests) == 2


async def test_an_unsigned_connection_gets_nothing(api: ApiHarness) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{api.root}/webhooks/alerts", data=BODY) as resp,
    ):
        assert resp.status == 401
