"""The fake signal-cli-rest-api checked on the wire with plain aiohttp: ``/v1/about``,
accounts, the json-rpc receive websocket's frames, ``/v2/send`` and its errors."""

from __future__ import annotations

import base64
import json

import aiohttp

from tests.fakes.signal_server import FakeSignal


async def test_rest_and_websocket_wire_formats():
    async with FakeSignal() as fake, aiohttp.ClientSession() as http:
        async with http.get(f"{fake.url}/v1/about") as resp:
            about = await resp.json()
            assert about["mode"] == "json-rpc" and "v2" in about["versions"]
        async with http.get(f"{fake.url}/v1/accounts") as resp:
            assert await resp.json() == [fake.account]
        number = fake.account.replace("+", "%2B")
        async with http.ws_connect(f"{fake.url.replace('http', 'ws')}/v1/receive/{number}") as ws:
            group = fake.add_group("Team")
            ts = await fake.user_sends("+15551230001", "hi", group=group)
            frame = json.loads((await ws.receive()).data)
            assert frame["account"] == fake.account
            env = frame["envelope"]
            assert (env["sourceNumber"], env["timestamp"]) == ("+15551230001", ts)
            assert env["dataMessage"]["message"] == "hi"
            assert env["dataMessage"]["groupInfo"]["groupId"] == group
        send = {"number": fake.account, "recipients": ["+15551230001"], "message": "yo"}
        async with http.post(f"{fake.url}/v2/send", json=send) as resp:
            assert resp.status == 201 and int((await resp.json())["timestamp"]) > 0
        to_group = {**send, "recipients": ["group." + base64.b64encode(group.encode()).decode()]}
        async with http.post(f"{fake.url}/v2/send", json=to_group) as resp:
            assert resp.status == 201
        async with http.post(
            f"{fake.url}/v2/send", json={**send, "recipients": ["group.bm9wZQ=="]}
        ) as resp:
            assert resp.status == 400 and "error" in await resp.json()
        fake.rate_limit(1)
        async with http.post(f"{fake.url}/v2/send", json=send) as resp:
            body = await resp.json()
            assert (
                resp.status == 429 and body["challenge_tokens"] and body["account"] == fake.account
            )
        async with http.put(
            f"{fake.url}/v1/typing-indicator/{number}", json={"recipient": "+1"}
        ) as resp:
            assert resp.status == 204


async def test_wrong_mode_has_no_receive_websocket():
    async with FakeSignal(mode="normal") as fake, aiohttp.ClientSession() as http:
        async with http.get(f"{fake.url}/v1/receive/{fake.account}") as resp:
            assert resp.status == 400
