"""The fake Discord driven by the real discord.py client over real sockets on 127.0.0.1.

Why: the Discord adapter's tests trust this fake, so the fake itself must be proven to
speak the protocol discord.py expects (login, READY, heartbeats, dispatches, resume, 429s).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord_server import FakeDiscord, patch_discord

USER_ID = 4242
OTHER_ID = 4343
DM_CHANNEL = 5001
GUILD_ID = 9001
CHANNEL_ID = 9101
START_TIMEOUT = 5.0


class RecordingClient(discord.Client):
    """A plain discord.Client that records what the gateway delivered to it."""

    def __init__(self, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        # guild_ready_timeout: discord.py waits this long after the last GUILD_CREATE before
        # firing on_ready (2 s by default), even with no guilds.
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.ready = asyncio.Event()
        self.messages: list[discord.Message] = []
        self.threads_created: list[discord.Thread] = []
        self.resumed = 0
        self._changed = asyncio.Event()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Skip discord.py's 5 s sleep before every non-initial IDENTIFY (keeps tests fast)."""

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed += 1

    async def on_message(self, message: discord.Message) -> None:
        self.messages.append(message)
        self._changed.set()

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.threads_created.append(thread)
        self._changed.set()

    def user_messages(self) -> list[discord.Message]:
        return [m for m in self.messages if self.user is None or m.author.id != self.user.id]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.1)


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, **kwargs: bool) -> AsyncIterator[RecordingClient]:
    """Start the real client with ``client.start`` in a task; always close it afterwards."""
    client = RecordingClient(**kwargs)
    task = asyncio.create_task(client.start(fake.token))
    ready = asyncio.create_task(client.ready.wait())
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            task.result()  # re-raise the startup error
        assert ready in done, "discord.py never became ready"
        yield client
    finally:
        ready.cancel()
        await client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(heartbeat_interval=0.2) as server:
        server.add_user(USER_ID, "alice")
        server.add_user(OTHER_ID, "bob")
        server.add_guild(GUILD_ID, "Hermes Lab", [CHANNEL_ID], member_ids=[USER_ID, OTHER_ID])
        with patch_discord(server):
            yield server


async def test_ready_guilds_and_heartbeats(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        assert client.user is not None and client.user.id == fake.bot_id
        assert client.application_id == fake.app_id
        guild = client.get_guild(GUILD_ID)
        assert guild is not None and guild.name == "Hermes Lab"
        assert isinstance(client.get_channel(CHANNEL_ID), discord.TextChannel)
        assert fake.identifies == 1
        assert fake.identify_payloads[0]["intents"] == client.intents.value
        query = fake.gateway_connects[0]
        assert query.startswith("/?") and "v=10" in query and "encoding=json" in query
        assert "compress=zlib-stream" in query or "compress=zstd-stream" in query
        await fake.wait_for(lambda: fake.heartbeats >= 3, timeout=3)
        assert client.latency < 1.0  # HEARTBEAT_ACKs arrived


async def test_dm_message_reaches_on_message_and_reply_is_recorded(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        payload = await fake.inject_message(DM_CHANNEL, "hello bot", author_id=USER_ID)
        await client.wait_until(lambda: len(client.user_messages()) == 1)
        message = client.user_messages()[0]
        assert message.content == "hello bot"
        assert message.id == int(payload["id"])
        assert message.guild is None and isinstance(message.channel, discord.DMChannel)
        assert message.author.id == USER_ID and message.author.name == "alice"

        await message.channel.typing()
        reply = await message.reply("hi alice")
        assert fake.typing == [DM_CHANNEL]
        [sent] = fake.messages_in(DM_CHANNEL)
        assert sent.content == "hi alice" and sent.reply_to == message.id
        assert reply.id == sent.message_id
        # Discord echoes the bot's own message back over the gateway.
        await client.wait_until(lambda: any(m.id == reply.id for m in client.messages))


async def test_guild_send_edit_file_and_thread(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        channel = client.get_channel(CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("draft")
        edited = await message.edit(content="final answer")
        assert edited.content == "final answer"
        [sent] = fake.messages_in(CHANNEL_ID)
        assert sent.content == "draft" and sent.edits == ["final answer"]
        assert sent.current_content == "final answer"

        await channel.send("see file", file=discord.File(io.BytesIO(b"report-bytes"), "report.txt"))
        assert fake.sent[-1].files[0].filename == "report.txt"
        assert fake.sent[-1].files[0].data == b"report-bytes"

        thread = await message.create_thread(name="follow-up")
        assert thread.id == message.id and thread.parent_id == CHANNEL_ID
        await thread.send("inside")
        [in_thread] = fake.messages_in(thread.id)
        assert in_thread.thread_parent_id == CHANNEL_ID and in_thread.in_thread
        assert sent.thread is not None and sent.thread.name == "follow-up"
        await client.wait_until(lambda: [t.id for t in client.threads_created] == [thread.id])


async def test_guild_mention_thread_and_attachment(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        await fake.inject_message(
            7777,
            "what is up?",
            author_id=USER_ID,
            guild_id=GUILD_ID,
            thread_parent_id=CHANNEL_ID,
            mentions_bot=True,
            attachments=[{"filename": "a.txt", "data": b"attached", "content_type": "text/plain"}],
        )
        await client.wait_until(lambda: len(client.user_messages()) == 1)
        message = client.user_messages()[0]
        assert isinstance(message.channel, discord.Thread)
        assert message.channel.parent_id == CHANNEL_ID
        assert client.user in message.mentions
        assert message.content == f"<@{fake.bot_id}> what is up?"
        assert await message.attachments[0].read() == b"attached"
        assert isinstance(message.author, discord.Member)


async def test_message_content_intent_is_enforced(fake: FakeDiscord) -> None:
    async with running(fake, message_content=False) as client:
        await fake.inject_message(CHANNEL_ID, "secret", author_id=USER_ID, guild_id=GUILD_ID)
        await fake.inject_message(
            CHANNEL_ID, "ping", author_id=USER_ID, guild_id=GUILD_ID, mentions_bot=True
        )
        await fake.inject_message(DM_CHANNEL, "dm text", author_id=USER_ID)
        await client.wait_until(lambda: len(client.user_messages()) == 3)
        assert [m.content for m in client.user_messages()] == [
            "",
            f"<@{fake.bot_id}> ping",
            "dm text",
        ]


async def test_drop_connection_resumes_without_duplicates(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        first = await fake.inject_message(DM_CHANNEL, "one", author_id=USER_ID)
        await client.wait_until(lambda: len(client.user_messages()) == 1)
        await fake.drop_connection()
        # Sent while the client is disconnected: buffered and replayed on RESUME.
        second = await fake.inject_message(DM_CHANNEL, "two", author_id=USER_ID)
        await fake.wait_for(lambda: fake.resumes == 1)
        await client.wait_until(lambda: len(client.user_messages()) >= 2)
        await fake.inject_message(DM_CHANNEL, "three", author_id=USER_ID)
        await client.wait_until(lambda: len(client.user_messages()) >= 3)
        ids = [m.id for m in client.user_messages()]
        assert ids[:2] == [int(first["id"]), int(second["id"])] and len(ids) == len(set(ids)) == 3
        assert fake.identifies == 1
        assert fake.gateway_connects[-1].startswith("/resume?")
        await client.wait_until(lambda: client.resumed == 1)


async def test_reconnect_opcode_and_invalid_session(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        await fake.send_reconnect()
        await fake.wait_for(lambda: fake.resumes == 1 and fake.live_connections == 1)
        assert fake.identifies == 1

        await fake.send_invalid_session(resumable=True)
        await fake.wait_for(lambda: fake.resumes == 2 and fake.live_connections == 1)

        await fake.send_invalid_session(resumable=False)
        await fake.wait_for(lambda: fake.identifies == 2 and fake.live_connections == 1)
        await client.wait_until(lambda: client.is_ready())
        await fake.inject_message(DM_CHANNEL, "still there?", author_id=USER_ID)
        await client.wait_until(lambda: len(client.user_messages()) == 1)


async def test_bad_token_raises_login_failure(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())
    try:
        with pytest.raises(discord.LoginFailure):
            await client.start("not-the-token")
    finally:
        await client.close()
    assert fake.requests[-1].status == 401 and fake.identifies == 0


async def test_rate_limited_edit_is_retried(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        channel = client.get_channel(CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        message = await channel.send("v1")
        fake.rate_limit_next("PATCH", r"/channels/\d+/messages/\d+", retry_after=0.3)
        started = time.monotonic()
        await message.edit(content="v2")
        assert time.monotonic() - started >= 0.3
        assert fake.rate_limited == [("PATCH", f"/channels/{CHANNEL_ID}/messages/{message.id}")]
        assert fake.sent[0].edits == ["v2"]


async def test_long_message_is_rejected_with_discord_error(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        channel = client.get_channel(CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as info:
            await channel.send("x" * 2001)
        assert info.value.status == 400 and info.value.code == 50035
        assert "2000" in info.value.text
        await channel.send("x" * 2000)
        assert len(fake.sent) == 1


async def test_command_sync_records_bulk_overwrite(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        tree = app_commands.CommandTree(client)

        @tree.command(name="ask", description="Ask Hermes")
        async def ask(interaction: discord.Interaction, prompt: str) -> None:  # pragma: no cover
            del interaction, prompt

        synced = await tree.sync()
        assert [c.name for c in synced] == ["ask"] and synced[0].id > 0
        assert fake.commands_payloads[-1][0]["name"] == "ask"
        assert fake.commands_payloads[-1][0]["options"][0]["name"] == "prompt"
        tree.copy_global_to(guild=discord.Object(GUILD_ID))
        await tree.sync(guild=discord.Object(GUILD_ID))
        assert fake.guild_commands_payloads[-1][0] == GUILD_ID
        assert [c.name for c in await tree.fetch_commands()] == ["ask"]


async def test_user_send_creates_dm_channel(fake: FakeDiscord) -> None:
    async with running(fake) as client:
        user = await client.fetch_user(OTHER_ID)
        await user.send("private note")
        dm_channel = fake.dm_channel_for(OTHER_ID)
        assert dm_channel is not None
        assert [m.content for m in fake.messages_in(dm_channel)] == ["private note"]


async def test_raw_gateway_protocol_errors() -> None:
    """Plain JSON (no compress), heartbeat ACK, 4003 before IDENTIFY, 4009 on silence."""
    async with FakeDiscord(heartbeat_interval=0.05, heartbeat_timeout=0.3) as fake:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
                hello = await ws.receive_json(timeout=2)
                assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 50
                await ws.send_json({"op": 1, "d": None})
                assert (await ws.receive_json(timeout=2))["op"] == 11
                await ws.send_json({"op": 3, "d": {"status": "online"}})
                closing = await ws.receive(timeout=2)
                assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4003

            async with http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
                await ws.receive_json(timeout=2)
                await ws.send_str(json.dumps({"op": 2, "d": {"token": fake.token, "intents": 513}}))
                ready = await ws.receive_json(timeout=2)
                assert ready["t"] == "READY" and ready["s"] == 1
                closing = await ws.receive(timeout=2)
                assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4009
