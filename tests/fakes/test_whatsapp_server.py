"""The fake WhatsApp Cloud API checked on the wire with plain aiohttp: Graph's envelopes and
error codes, the media round trip, and notifications signed as Meta signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp
from aiohttp import web

from tests.fakes.whatsapp_server import VERSION, FakeWhatsApp


async def test_graph_envelopes_and_errors():
    async with FakeWhatsApp() as fake, aiohttp.ClientSession() as http:
        base = f"{fake.base}/{VERSION}/{fake.phone_number_id}"
        auth = {"Authorization": f"Bearer {fake.token}"}
        async with http.get(base, headers={"Authorization": "Bearer nope"}) as resp:
            body = await resp.json()
            assert resp.status == 401 and body["error"]["code"] == 190
            assert body["error"]["type"] == "OAuthException" and body["error"]["fbtrace_id"]
        text = {
            "messaging_product": "whatsapp",
            "to": "155",
            "type": "text",
            "text": {"body": "hi"},
        }
        async with http.post(f"{base}/messages", json=text, headers=auth) as resp:
            body = await resp.json()
            assert resp.status == 400 and body["error"]["code"] == 131047  # never wrote
            assert "24 hours" in body["error"]["error_data"]["details"]
        fake.last_inbound["155"] = time.time()
        async with http.post(f"{base}/messages", json=text, headers=auth) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["messages"][0]["id"].startswith("wamid.")
            assert body["contacts"] == [{"input": "155", "wa_id": "155"}]
        fake.rate_limit(1, code=4)
        fake.rate_limit(1, code=130429)
        async with http.post(f"{base}/messages", json=text, headers=auth) as resp:
            assert (resp.status, (await resp.json())["error"]["code"]) == (429, 4)
        async with http.post(f"{base}/messages", json=text, headers=auth) as resp:
            assert (resp.status, (await resp.json())["error"]["code"]) == (400, 130429)
        read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}
        async with http.post(f"{base}/messages", json=read, headers=auth) as resp:
            assert await resp.json() == {"success": True}
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", "image/png")
        form.add_field("file", b"\x89PNG", filename="a.png", content_type="image/png")
        async with http.post(f"{base}/media", data=form, headers=auth) as resp:
            media_id = (await resp.json())["id"]
        async with http.get(f"{fake.base}/{VERSION}/{media_id}", headers=auth) as resp:
            info = await resp.json()
            assert info["mime_type"] == "image/png" and info["file_size"] == "4"
        async with http.get(info["url"]) as resp:
            assert resp.status == 401  # the media URL needs the token too
        async with http.get(info["url"], headers=auth) as resp:
            assert await resp.read() == b"\x89PNG"


async def test_notifications_are_signed_like_metas():
    seen: list[tuple[bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get("X-Hub-Signature-256", "")))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with FakeWhatsApp() as fake:
            fake.webhook_url = f"http://127.0.0.1:{port}/hook"
            await fake.user_sends("155", "hello", name="Ann")
            [(body, sig)] = seen
            expected = hmac.new(fake.app_secret.encode(), body, hashlib.sha256).hexdigest()
            assert sig == f"sha256={expected}"
            payload = json.loads(body)
            value = payload["entry"][0]["changes"][0]["value"]
            assert payload["object"] == "whatsapp_business_account"
            assert value["metadata"]["phone_number_id"] == fake.phone_number_id
            assert value["contacts"] == [{"profile": {"name": "Ann"}, "wa_id": "155"}]
            [msg] = value["messages"]
            assert (msg["from"], msg["type"], msg["text"]) == ("155", "text", {"body": "hello"})
    finally:
        await runner.cleanup()
