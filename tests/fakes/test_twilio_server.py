"""The fake Twilio proven against Twilio's own Python library (no network but 127.0.0.1):
its webhook signatures are what Twilio's ``RequestValidator`` accepts, and Twilio's async REST
client sends through it, meeting its error bodies as it would Twilio's."""

from __future__ import annotations

import pytest
from aiohttp import web
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from hermes_gateway.platforms.sms.signature import signature
from tests.fakes.twilio_server import FakeTwilio


def _client(fake: FakeTwilio, token: str | None = None) -> Client:
    client = Client(fake.account_sid, token or fake.token, http_client=AsyncTwilioHttpClient())
    client.api.base_url = f"http://127.0.0.1:{fake.port}"
    return client


async def test_signatures_are_what_twilio_validates():
    captured: list[tuple[dict[str, str], str]] = []

    async def hook(request: web.Request) -> web.Response:
        form = await request.post()
        captured.append(
            ({k: str(v) for k, v in form.items()}, request.headers["X-Twilio-Signature"])
        )
        return web.Response(text="<Response/>", content_type="application/xml")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with FakeTwilio() as fake:
            fake.webhook_url = f"http://127.0.0.1:{port}/hook"
            fake.public_url = "https://example.test/webhooks/twilio?x=1"
            await fake.text("+15551230001", "hello & ünïcode = fine")
            [(params, sig)] = captured
            validator = RequestValidator(fake.token)
            assert validator.validate(fake.public_url, params, sig)
            assert not validator.validate("https://example.test/other", params, sig)
            # Our adapter's signature is Twilio's.
            assert signature(fake.token, fake.public_url, list(params.items())) == sig
            assert validator.compute_signature(fake.public_url, params) == sig
    finally:
        await runner.cleanup()


async def test_twilios_client_sends_through_the_fake():
    async with FakeTwilio() as fake:
        client = _client(fake)
        try:
            msg = await client.messages.create_async(
                to="+15551230001", from_=fake.number, body="hi"
            )
            assert msg.sid.startswith("SM") and msg.status == "queued"
            assert [(s.to, s.body) for s in fake.sent] == [("+15551230001", "hi")]
            fake.rate_limit(1)
            with pytest.raises(TwilioRestException) as limited:
                await client.messages.create_async(to="+15551230001", from_=fake.number, body="x")
            assert (limited.value.status, limited.value.code) == (429, 20429)
            with pytest.raises(TwilioRestException) as bad:
                await client.messages.create_async(to="12345", from_=fake.number, body="x")
            assert (bad.value.status, bad.value.code) == (400, 21211)
        finally:
            await client.http_client.close()
        wrong = _client(fake, token="nope")
        try:
            with pytest.raises(TwilioRestException) as refused:
                await wrong.api.v2010.accounts(fake.account_sid).fetch_async()
            assert (refused.value.status, refused.value.code) == (401, 20003)
        finally:
            await wrong.http_client.close()
