"""Hermes Agent's webhook listener (WEBHOOK_ENABLED/PORT/SECRET): webhooks on a port of their
own, without the API server or its key; a route without a secret uses WEBHOOK_SECRET."""

from __future__ import annotations

import json

import aiohttp

from hermes_gateway import events as ev
from hermes_gateway.config import WebhookRoute
from hermes_gateway.platforms.api.webhook import sign
from hermes_gateway.platforms.api.webhook_server import WebhookServerAdapter
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.helpers import Recorder

SECRET = "listener-secret-0123456789"


async def test_webhooks_on_their_own_port_without_the_api(hermes_home, fake_openai):
    config = make_config(
        hermes_home, fake_openai, WEBHOOK_ENABLED="true", WEBHOOK_PORT="0", WEBHOOK_SECRET=SECRET
    )
    config.platforms.webhook.routes = {"ci": WebhookRoute(prompt="Build {status} on {branch}")}
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    runner = await gateway.start(local=False)
    try:
        await recorder.wait_for(
            lambda: any(
                e.platform == "webhook" and e.state in ("connected", "failed")
                for e in recorder.of(ev.PlatformStatus)
            )
        )
        assert set(runner.adapters) == {"webhook"}  # no API server: no key needed
        adapter = runner.adapters["webhook"]
        assert isinstance(adapter, WebhookServerAdapter) and adapter.port
        root = f"http://127.0.0.1:{adapter.port}"
        raw = json.dumps({"status": "failed", "branch": "main"}).encode()
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(
                f"{root}/webhooks/ci",
                data=raw,
                headers={
                    "X-Hub-Signature-256": sign(SECRET, raw),
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": "d-1",
                },
            ) as resp:
                assert resp.status == 200
                body = await resp.json()
            async with http.post(
                f"{root}/webhooks/ci",
                data=raw,
                headers={"X-Hub-Signature-256": sign("wrong-secret", raw)},
            ) as resp:
                assert resp.status == 401
            async with http.get(f"{root}/v1/models") as resp:
                assert resp.status == 404  # only webhooks are served here
        assert body["output"] == "echo: Build ⟦failed⟧ on ⟦main⟧"
        assert len(fake_openai.requests) == 1
    finally:
        await gateway.stop()
        recorder.close()
