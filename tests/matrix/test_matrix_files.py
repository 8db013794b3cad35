"""Files in (``mxc://`` downloaded into HERMES_HOME/media) and out (uploaded from the chat's
workspace only) on a real Synapse."""

from __future__ import annotations

import aiohttp

from hermes_gateway.agent.tools.boundary import workspace_for
from hermes_gateway.config import matrix_chat_id
from tests.fakes.openai_server import ScriptedReply
from tests.matrix.conftest import MATRIX_TESTS
from tests.matrix.harness import matrix_gateway

pytestmark = MATRIX_TESTS


async def _upload(synapse, token: str, data: bytes, name: str, mime: str) -> str:
    async with synapse.http.post(
        f"{synapse.url}/_matrix/media/v3/upload?filename={name}",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": mime},
        timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["content_uri"])


async def _download(synapse, token: str, mxc: str) -> bytes:
    server, media = mxc.removeprefix("mxc://").split("/", 1)
    async with synapse.http.get(
        f"{synapse.url}/_matrix/client/v1/media/download/{server}/{media}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def test_a_file_sent_to_the_bot_is_saved_and_reaches_the_turn(
    hermes_home, fake_openai, synapse
):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        alice = h.people.alice
        uri = await _upload(
            synapse, alice.token, b"meeting notes: ship it\n", "notes.txt", "text/plain"
        )
        await synapse.send(
            alice,
            room,
            {
                "msgtype": "m.file",
                "body": "notes.txt",
                "filename": "notes.txt",
                "url": uri,
                "info": {"mimetype": "text/plain", "size": 23},
            },
        )
        await h.wait_answers(room, 1)
        saved = list((hermes_home / "media" / "matrix").rglob("*notes*"))
        assert len(saved) == 1 and saved[0].read_bytes() == b"meeting notes: ship it\n"
        assert fake_openai.requests, "the file made a turn"
        assert "notes" in str(fake_openai.requests[-1]["messages"][-1]["content"])


async def test_media_lines_upload_workspace_files_only(hermes_home, fake_openai, synapse):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        key = f"matrix:dm:{matrix_chat_id(room)}"
        workspace = workspace_for(hermes_home, "matrix", key)
        workspace.mkdir(parents=True, exist_ok=True)
        chart = workspace / "chart.txt"
        chart.write_text("1,2,3\n")
        secret = hermes_home / ".env"
        secret.write_text("OPENAI_API_KEY=sk-secret\n")
        fake_openai.enqueue(ScriptedReply(text=f"Here it is.\n\nMEDIA:{chart}\nMEDIA:{secret}\n"))
        await h.say(room, "the chart please")
        await h.wait_answers(room, 2)
        events = await synapse.messages(h.people.alice, room)
        mine = [e for e in events if e["sender"] == h.bot_id and e["type"] == "m.room.message"]
        files = [e for e in mine if e["content"].get("msgtype") == "m.file"]
        assert [f["content"]["body"] for f in files] == ["chart.txt"]
        data = await _download(synapse, h.people.alice.token, files[0]["content"]["url"])
        assert data == b"1,2,3\n"
        texts = await h.shown(room)
        assert f"Here it is.\n\nMEDIA:{secret}" in texts  # refused: named, never uploaded
        assert all("sk-secret" not in t for t in texts)
