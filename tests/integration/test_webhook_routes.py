"""Webhooks end to end: signed requests start agent runs, answered or delivered elsewhere.

Why: a webhook route lets an outside system start the agent, tools included. Only correctly
signed requests may do so, a replayed delivery must not run twice, the rate limit must hold,
the payload must reach the agent marked as untrusted, and the answer must arrive where the
route says: the HTTP response, or a chat (the real Telegram adapter against its fake).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from hermes_gateway.config import Config, WebhookRoute
from hermes_gateway.platforms.api.webhook import OPEN, sign
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.api_harness import ApiHarness, start_api

SECRET = "s3cret-for-tests"
ISSUE = {
    "action": "opened",
    "issue": {"number": 7, "title": "Crash on start", "labels": [{"name": "bug"}]},
    "repository": {"full_name": "octo/hermes"},
}


def with_routes(**routes: WebhookRoute):
    def configure(config: Config) -> None:
        config.platforms.api_server.webhooks = dict(routes)

    return configure


@pytest.fixture
async def api(hermes_home: Path, fake_openai: FakeOpenAI) -> AsyncIterator[ApiHarness]:
    harness = await start_api(
        hermes_home,
        fake_openai,
        configure=with_routes(
            github=WebhookRoute(
                secret=SECRET,
                prompt="Triage issue #{issue.number} “{issue.title}” in {repository.full_name} "
                "(first label {issue.labels.0.name}, {{literal}}).",
                events=["issues"],
                rate_limit=3,
            ),
            generic=WebhookRoute(secret=SECRET),
            trusted=WebhookRoute(secret=SECRET, tools=True),
        ),
    )
    yield harness
    await harness.stop()


async def hook(
    api: ApiHarness,
    route: str,
    payload: object,
    *,
    secret: str = SECRET,
    github: bool = True,
    delivery: str | None = None,
    event: str = "issues",
    timestamp: int | None = None,
) -> tuple[int, dict]:
    """Send a webhook as GitHub does (body-only signature, a delivery id every time) or with
    the timestamped X-Hermes-Signature."""
    raw = json.dumps(payload).encode()
    if github:
        headers = {
            "X-Hub-Signature-256": sign(secret, raw),
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or secrets.token_hex(8),
        }
    else:
        stamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            "X-Hermes-Timestamp": str(stamp),
            "X-Hermes-Signature": sign(secret, raw, stamp)[7:],
            "X-Hermes-Event": event,
        }
        if delivery:
            headers["X-Hermes-Delivery"] = delivery
    status, _, body = await api.post(f"/webhooks/{route}", raw=raw, headers=headers, auth=False)
    return status, json.loads(body)


async def test_a_signed_github_webhook_runs_the_agent_with_the_filled_template(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    status, body = await hook(api, "github", ISSUE, delivery="d-1")
    assert status == 200 and body["status"] == "ok" and body["delivery_id"] == "d-1"
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert prompt == (
        "Triage issue #⟦7⟧ “⟦Crash on start⟧” in ⟦octo/hermes⟧ (first label ⟦bug⟧, {literal})."
    )
    assert body["output"] == "echo: " + prompt
    system = fake_openai.requests[-1]["messages"][0]["content"]
    assert "untrusted" in system and OPEN in system and "github" in system
    # Its own session, stored and published like any chat.
    assert api.gw.store is not None
    record = await api.gw.store.get_session(body["session_id"])
    assert record is not None and record.platform == "webhook"
    assert record.session_key == "webhook:dm:github:d-1"
    finished = [e for e in api.rec.of(ev.TurnFinished) if e.session_key == record.session_key]
    assert finished and finished[-1].text == body["output"]


async def test_invalid_or_missing_signatures_are_refused(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    status, body = await hook(api, "github", ISSUE, secret="wrong-secret")
    assert status == 401 and body["error"]["code"] == "invalid_signature"
    status, _, answer = await api.post("/webhooks/github", ISSUE, auth=False)
    assert status == 401
    # A signature over other bytes (the payload was changed on the way) does not count.
    raw = json.dumps(ISSUE).encode()
    headers = {"X-Hub-Signature-256": sign(SECRET, raw + b" "), "X-GitHub-Event": "issues"}
    status, _, _ = await api.post("/webhooks/github", raw=raw, headers=headers, auth=False)
    assert status == 401
    status, body = await hook(api, "nope", ISSUE)
    assert status == 404
    assert fake_openai.requests == []


async def test_the_generic_signature_header_and_default_prompt(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    status, body = await hook(api, "generic", {"alert": "disk full"}, github=False, event="alert")
    assert status == 200, body
    prompt = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "“generic”" in prompt and "⟦alert⟧" in prompt and '"alert": "disk full"' in prompt


async def test_a_replayed_delivery_is_ignored(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    assert (await hook(api, "github", ISSUE, delivery="same-id"))[0] == 200
    status, body = await hook(api, "github", ISSUE, delivery="same-id")
    assert status == 200 and body["status"] == "duplicate"
    assert len(fake_openai.requests) == 1
    assert (await hook(api, "github", ISSUE, delivery="other-id"))[0] == 200
    assert len(fake_openai.requests) == 2


async def test_events_filter_ping_and_rate_limit(api: ApiHarness, fake_openai: FakeOpenAI) -> None:
    status, body = await hook(api, "github", {"zen": "hi"}, event="ping")
    assert (status, body["status"]) == (200, "pong")
    status, body = await hook(api, "github", ISSUE, event="push")
    assert (status, body["status"]) == (200, "ignored")
    assert fake_openai.requests == []
    for i in range(3):
        assert (await hook(api, "github", ISSUE, delivery=f"r{i}"))[0] == 200
    status, body = await hook(api, "github", ISSUE, delivery="r3")
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
    assert len(fake_openai.requests) == 3
    # The refused delivery was not recorded: sent again later, it is not a "duplicate".
    api.adapter.webhooks.limits["github"].tokens = 1
    assert (await hook(api, "github", ISSUE, delivery="r3"))[1]["status"] == "ok"


async def test_a_route_without_a_secret_refuses_to_start(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    api = await start_api(
        hermes_home, fake_openai, configure=with_routes(open=WebhookRoute(prompt="x"))
    )
    try:
        last = api.states()[-1]
        assert last.state == "failed" and "webhooks.open.secret" in last.detail
    finally:
        await api.stop()


async def test_webhook_routes_come_from_config_yaml(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    (hermes_home / "config.yaml").write_text(
        "platforms:\n  api_server:\n    webhooks:\n      ci:\n"
        f"        secret: {SECRET}\n        prompt: 'Build {{build.status}}'\n"
    )
    api = await start_api(hermes_home, fake_openai)
    try:
        route = api.adapter.settings.webhooks["ci"]
        assert isinstance(route, WebhookRoute) and route.prompt == "Build {build.status}"
        status, body = await hook(api, "ci", {"build": {"status": "red"}}, github=False)
        assert status == 200 and body["output"] == "echo: Build ⟦red⟧"
    finally:
        await api.stop()


async def test_the_answer_is_delivered_to_telegram(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    async with FakeTelegram() as tg:

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
            hermes_home,
            fake_openai,
            configure=configure,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_BASE_URL=tg.base_url,
            TELEGRAM_BASE_FILE_URL=tg.base_file_url,
        )
        try:
            await api.rec.wait_for(
                lambda: any(
                    e.platform == "telegram" and e.state == "connected"
                    for e in api.rec.of(ev.PlatformStatus)
                )
            )
            fake_openai.enqueue(ScriptedReply(text="Disk is full on **db1**."))
            status, body = await hook(
                api, "alerts", {"alert": {"name": "disk"}}, github=False, delivery="a-1"
            )
            assert status == 202 and body["status"] == "accepted"
            await tg.wait_for(lambda: tg.messages_in(4242))
            [message] = tg.messages_in(4242)
            assert "Webhook alerts" in message.plain_text
            assert "Disk is full on db1." in message.plain_text
            assert fake_openai.requests[-1]["messages"][-1]["content"] == "Alert: ⟦disk⟧"
        finally:
            await api.stop()


async def test_tools_are_off_unless_the_route_allows_them(
    api: ApiHarness, fake_openai: FakeOpenAI
) -> None:
    """A payload is written by whoever can trigger the hook: no shell unless opted in."""
    await hook(api, "generic", {"text": "hello"})
    await fake_openai.wait_for_requests(1)
    assert "tools" not in fake_openai.requests[-1]
    await hook(api, "trusted", {"text": "hello"})
    await fake_openai.wait_for_requests(2)
    names = [t["function"]["name"] for t in fake_openai.requests[-1]["tools"]]
    assert "terminal" in names
