"""Discord chats end to end: real discord.py, the fake Discord, the real gateway and runner.

Each test drives the gateway the way Discord users would (DMs, mentions, threads, long
answers, slow answers interrupted) and checks what the channel finally shows.
"""

from __future__ import annotations

import asyncio

from hermes_gateway import events as ev
from hermes_gateway.access.policy import hash_id
from hermes_gateway.config import Config
from hermes_gateway.delivery import split_message
from hermes_gateway.runner.busy_ack import TEXTS
from tests.fakes.openai_server import ScriptedReply, ToolCallSpec
from tests.integration.test_discord_harness import (
    ALICE,
    BOB,
    CHANNEL,
    DM_ALICE,
    DM_BOB,
    GUILD,
    OTHER_CHANNEL,
    discord_gateway,
)

STREAMED = (
    "Discord streams this answer by editing one message while the model writes it, "
    "and the last edit must show exactly the final text, no cursor, nothing missing."
)


async def test_dm_is_answered_by_edits_ending_in_the_exact_text(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=STREAMED, chunk_size=6, delay=0.02))
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm("tell me how you stream")
        [answer] = await h.wait_answers(DM_ALICE, 1)
        [message] = h.messages(DM_ALICE)
        assert answer == STREAMED
        assert message.edits, "the answer was not streamed by edits"
        assert message.content != STREAMED and message.content.endswith("▌")
        assert DM_ALICE in h.fake.typing
        # The bot's own messages come back over the gateway; none of them became a turn.
        await asyncio.sleep(0.1)
        assert len(fake_openai.requests) == 1
        assert fake_openai.requests[0]["messages"][-1]["content"] == "tell me how you stream"
        sessions = [
            e
            for e in h.recorder.of(ev.SessionChanged)
            if e.platform == "discord" and e.reason == "started"
        ]
        assert [s.session_key for s in sessions] == [f"discord:dm:{DM_ALICE}"]
        assert sessions[0].display_name == "alice"
        connected = [s for s in h.states() if s[0] == "connected"]
        assert connected and "hermes-bot" in connected[0][1]


async def test_guild_answers_when_mentioned_and_follows_its_threads(hermes_home, fake_openai):
    thread = 7777
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.post(CHANNEL, "chatting among ourselves")
        await h.post(CHANNEL, "hello bot", mention=True)
        assert await h.wait_answers(CHANNEL, 1) == ["echo: hello bot"]
        # Not mentioned in a thread the bot was never addressed in: ignored.
        await h.post(thread, "side talk", thread_of=CHANNEL)
        await h.post(thread, "now you", thread_of=CHANNEL, mention=True)
        assert await h.wait_answers(thread, 1) == ["echo: now you"]
        # Once addressed in the thread, it keeps answering there without mentions.
        await h.post(thread, "and this?", thread_of=CHANNEL)
        assert await h.wait_answers(thread, 2) == ["echo: now you", "echo: and this?"]
        # ...but a channel still needs the mention.
        await h.post(OTHER_CHANNEL, "anyone?")
        await h.post(OTHER_CHANNEL, "you?", mention=True)
        assert await h.wait_answers(OTHER_CHANNEL, 1) == ["echo: you?"]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["hello bot", "now you", "and this?", "you?"]
        # The channel and its thread are separate sessions, keyed by the thread id; in a
        # channel each member has their own (group_sessions_per_user), a thread is shared.
        keys = set(h.runner.sessions)
        assert keys == {
            f"discord:channel:{CHANNEL}:@{ALICE}",
            f"discord:thread:{CHANNEL}:{thread}",
            f"discord:channel:{OTHER_CHANNEL}:@{ALICE}",
        }
        thread_rt = h.runner.sessions[f"discord:thread:{CHANNEL}:{thread}"]
        assert thread_rt.source.chat_name == f"#general › thread-{thread} (Hermes Lab)"
        history = await h.gateway.store.get_messages(thread_rt.record.id)
        assert [m.content for m in history if m.role == "user"] == ["now you", "and this?"]
        assert all(not m.in_thread for m in h.messages(CHANNEL))
        assert all(m.thread_parent_id == CHANNEL for m in h.messages(thread))


async def test_auto_thread_moves_the_answer_into_a_new_thread(hermes_home, fake_openai):
    def auto_thread(config):
        config.platforms.discord.auto_thread = True

    async with discord_gateway(hermes_home, fake_openai, configure=auto_thread) as h:
        asked = await h.post(CHANNEL, "plan my week\nwith details", mention=True)
        await h.fake.wait_for(lambda: len(h.fake.threads) == 1)
        [info] = h.fake.threads
        # A thread started from a message has the message's id.
        assert info.thread_id == int(asked["id"]) and info.parent_id == CHANNEL
        assert info.name == "plan my week"
        assert await h.wait_answers(info.thread_id, 1) == ["echo: plan my week\nwith details"]
        assert h.answers(CHANNEL) == []
        await h.post(info.thread_id, "thanks", thread_of=CHANNEL)
        assert await h.wait_answers(info.thread_id, 2) == [
            "echo: plan my week\nwith details",
            "echo: thanks",
        ]
        assert set(h.runner.sessions) == {f"discord:thread:{CHANNEL}:{info.thread_id}"}


async def test_free_response_and_allowed_channels_as_hermes_agent(hermes_home, fake_openai):
    """DISCORD_FREE_RESPONSE_CHANNELS: every message there is for the bot, answered in place
    even with auto-thread on; DISCORD_ALLOWED_CHANNELS: elsewhere the bot does not listen,
    mentioned or not (its threads included); DMs are not affected."""
    thread = 8888

    def hermes_defaults(config):
        config.platforms.discord.auto_thread = True

    async with discord_gateway(
        hermes_home,
        fake_openai,
        configure=hermes_defaults,
        DISCORD_FREE_RESPONSE_CHANNELS=str(CHANNEL),
        DISCORD_ALLOWED_CHANNELS=f"{CHANNEL},999",
    ) as h:
        await h.post(OTHER_CHANNEL, "you there?", mention=True)
        await h.post(thread, "in a thread outside", thread_of=OTHER_CHANNEL, mention=True)
        await h.post(CHANNEL, "no mention needed here")
        assert await h.wait_answers(CHANNEL, 1) == ["echo: no mention needed here"]
        await h.dm("and in a DM")
        assert await h.wait_answers(DM_ALICE, 1) == ["echo: and in a DM"]
        assert h.fake.threads == []  # a free-response channel is answered in place
        assert h.answers(OTHER_CHANNEL) == [] and h.answers(thread) == []
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["no mention needed here", "and in a DM"]


async def test_long_answer_is_chunked_with_code_blocks_intact(hermes_home, fake_openai):
    code = "\n".join(f"    print('line {i:03d} of the example program')" for i in range(60))
    text = (
        "Here is the program you asked for.\n\n" + "Some context. " * 60 + "\n\n"
        "```python\ndef main():\n"
        + code
        + "\n```\n\n"
        + "And a closing paragraph. " * 39
        + "The end."
    )
    assert 4400 <= len(text) <= 4700
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=400, delay=0.01))
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm("write it")
        expected = split_message(text, 2000)
        assert len(expected) == 3
        shown = await h.wait_answers(DM_ALICE, 3)
        assert shown == expected
        assert all(len(m) <= 2000 for m in shown)
        assert all(m.count("```") % 2 == 0 for m in shown)
        reopened = [m for m in shown if m.startswith("```python")]
        assert reopened, "the code block split across messages must be reopened"


async def test_edit_rate_limited_by_429_still_ends_exact(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=STREAMED, chunk_size=6, delay=0.02))
    async with discord_gateway(hermes_home, fake_openai) as h:
        h.fake.rate_limit_next("PATCH", r"/channels/\d+/messages/\d+", retry_after=0.3, times=2)
        await h.dm("go")
        await h.fake.wait_for(lambda: len(h.fake.rate_limited) == 2)
        [answer] = await h.wait_answers(DM_ALICE, 1)
        assert answer == STREAMED
        assert len(h.messages(DM_ALICE)) == 1  # retried edits, never a second message
        assert [m for m, _ in h.fake.rate_limited] == ["PATCH", "PATCH"]


async def test_unauthorised_users_never_reach_the_agent(hermes_home, fake_openai):
    async with discord_gateway(
        hermes_home, fake_openai, DISCORD_ALLOWED_USERS="", GATEWAY_ALLOWED_USERS=str(ALICE)
    ) as h:
        await h.dm("let me in", user=BOB)
        await h.post(CHANNEL, "me too", user=BOB, mention=True)
        await h.post(CHANNEL, "it's alice", mention=True)
        await h.dm("hello", user=ALICE)
        assert await h.wait_answers(DM_ALICE, 1) == ["echo: hello"]
        assert await h.wait_answers(CHANNEL, 1) == ["echo: it's alice"]
        # In a DM a stranger is offered a pairing code (unauthorized_dm: pair, the default).
        [offer] = await h.wait_answers(DM_BOB, 1)
        assert "pairing code" in offer
        asked = sorted(r["messages"][-1]["content"] for r in fake_openai.requests)
        assert asked == ["hello", "it's alice"]
        assert not any(str(BOB) == rt.source.user_id for rt in h.runner.sessions.values())


def _silent_to_strangers(config):
    config.platforms.discord.unauthorized_dm = "ignore"


async def test_unauthorised_dm_is_ignored_when_pairing_is_off(hermes_home, fake_openai):
    async with discord_gateway(hermes_home, fake_openai, configure=_silent_to_strangers) as h:
        await h.dm("hello?", user=BOB)
        await h.dm("hello", user=ALICE)
        assert await h.wait_answers(DM_ALICE, 1) == ["echo: hello"]
        denied = await h.recorder.event(ev.AccessDenied)
        assert (denied.platform, denied.user) == ("discord", hash_id(str(BOB)))
        assert h.answers(DM_BOB) == [] and len(fake_openai.requests) == 1


async def test_allowed_roles_let_members_in(hermes_home, fake_openai):
    # The @everyone role's id is the guild's id: every member of the server may talk there.
    async with discord_gateway(
        hermes_home,
        fake_openai,
        configure=_silent_to_strangers,
        DISCORD_ALLOWED_USERS="",
        DISCORD_ALLOWED_ROLES=str(GUILD),
    ) as h:
        await h.dm("no roles in a DM", user=BOB)
        await h.post(CHANNEL, "a member", user=BOB, mention=True)
        assert await h.wait_answers(CHANNEL, 1) == ["echo: a member"]
        rt = h.runner.sessions[f"discord:channel:{CHANNEL}:@{BOB}"]
        assert rt.source.user_id == str(BOB)
        mark = len(h.recorder.events)
        await h.dm("after", user=BOB)
        denied = await h.recorder.event(ev.AccessDenied, since=mark)
        assert (denied.platform, denied.user) == ("discord", hash_id(str(BOB)))
        assert h.answers(DM_BOB) == []
        assert len(fake_openai.requests) == 1


async def test_stop_and_busy_interrupt_go_through_the_runner(hermes_home, fake_openai):
    slow = "word " * 200
    fake_openai.enqueue(ScriptedReply(text=slow, chunk_size=5, delay=0.02))
    fake_openai.enqueue(ScriptedReply(text=slow, chunk_size=5, delay=0.02))
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm("talk a lot")
        await h.fake.wait_for(lambda: len(h.answers(DM_ALICE)) == 1)
        await h.dm("/stop")
        await h.fake.wait_for(lambda: "Stopped." in h.answers(DM_ALICE))
        await h.runner.wait_idle()
        first = h.answers(DM_ALICE)[0]
        assert first.endswith("(interrupted)") and "▌" not in first

        # busy_mode interrupt: a new message stops the answer and is answered next.
        await h.dm("talk again")
        await h.fake.wait_for(lambda: len(h.answers(DM_ALICE)) == 3)
        await h.dm("actually, stop and answer this")
        await h.fake.wait_for(lambda: len(fake_openai.requests) == 3)
        await h.runner.wait_idle()
        shown = h.answers(DM_ALICE)
        # Superseded by the follow-up: the partial answer ends quietly, no "(interrupted)"
        # message per follow-up (issue 12), and the follow-up is answered.
        assert shown[2].endswith(" …") and "(interrupted)" not in shown[2]
        assert "▌" not in shown[2]
        assert shown[-1] == "echo: actually, stop and answer this"


async def test_tool_progress_all_shows_every_call(hermes_home, fake_openai):
    """Discord follows ``display.tool_progress`` like every chat platform (HERMES_TOOL_PROGRESS)."""
    fake_openai.enqueue(
        ScriptedReply(
            tool_calls=[
                ToolCallSpec("terminal", {"command": "echo one"}),
                ToolCallSpec("terminal", {"command": "echo two"}),
            ]
        ),
        ScriptedReply(text="Both commands ran."),
    )

    def trust_shell(config: Config) -> None:
        # Chat platforms ask before shell commands by default; this test is about progress.
        config.platforms.discord.approvals = "dangerous"

    async with discord_gateway(
        hermes_home, fake_openai, configure=trust_shell, HERMES_TOOL_PROGRESS="all"
    ) as h:
        await h.dm("run two commands")
        shown = await h.wait_answers(DM_ALICE, 2)
        progress, answer = shown
        assert answer == "Both commands ran."
        lines = progress.splitlines()
        assert len(lines) == 2  # "all": a line per call, not per tool name
        assert lines[0].startswith("✓ terminal: echo one")
        assert lines[1].startswith("✓ terminal: echo two")


async def test_attachments_in_and_files_out(hermes_home, fake_openai):
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
        b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00"
        b"\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    from hermes_gateway.agent.tools.boundary import workspace_for

    workspace = workspace_for(hermes_home, "discord", f"discord:dm:{DM_ALICE}")
    workspace.mkdir(parents=True, exist_ok=True)
    report = workspace / "report.txt"
    report.write_text("quarterly numbers\n")
    secret = hermes_home / ".env"  # a prompt-injected model must not send the bot token out
    secret.write_text("DISCORD_BOT_TOKEN=very-secret\n")
    fake_openai.enqueue(
        ScriptedReply(text=f"Here is the report.\n\nMEDIA:{report}\nMEDIA:{secret}\n")
    )
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm(
            "what is in this picture?",
            attachments=[{"filename": "dot.png", "data": png, "content_type": "image/png"}],
        )
        await h.fake.wait_for(lambda: any(m.files for m in h.messages(DM_ALICE)))
        await h.runner.wait_idle()
        saved = list((hermes_home / "media" / "discord").rglob("*.png"))
        assert len(saved) == 1 and saved[0].read_bytes() == png
        content = fake_openai.requests[0]["messages"][-1]["content"]
        assert isinstance(content, list)
        assert content[0] == {"type": "text", "text": "what is in this picture?"}
        assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
        text_messages = [m for m in h.messages(DM_ALICE) if not m.files]
        # The refused line stays as text; only the workspace's file is uploaded.
        assert [m.current_content for m in text_messages] == [
            f"Here is the report.\n\nMEDIA:{secret}"
        ]
        [upload] = [m for m in h.messages(DM_ALICE) if m.files]
        assert [(f.filename, f.data) for f in upload.files] == [
            ("report.txt", b"quarterly numbers\n")
        ]


async def test_typed_commands_work_in_dms(hermes_home, fake_openai):
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm("/title Weekly planning")
        [reply] = await h.wait_answers(DM_ALICE, 1)
        assert reply == "Title set to “Weekly planning”."
        await h.dm("/help")
        shown = await h.wait_answers(DM_ALICE, 2)
        assert "/new" in shown[1] and "/quit" not in shown[1]
        assert fake_openai.requests == []


async def test_queue_mode_answers_the_waiting_message_after_the_current_one(
    hermes_home, fake_openai
):
    slow = "word " * 60
    fake_openai.enqueue(ScriptedReply(text=slow, chunk_size=5, delay=0.01))
    async with discord_gateway(hermes_home, fake_openai, HERMES_BUSY_MODE="queue") as h:
        h.runner.busy_acks.burst = 0.0  # the follow-up comes milliseconds after "first"
        await h.dm("first")
        await h.fake.wait_for(lambda: len(fake_openai.requests) == 1)
        await h.dm("second")
        shown = await h.wait_answers(DM_ALICE, 3)
        # The follow-up is told it waits (gateway.busy_ack), then answered after the first.
        assert [t for t in shown if t != TEXTS["queued"]] == [slow.strip(), "echo: second"]
        assert shown.count(TEXTS["queued"]) == 1


async def test_allow_all_users_opens_every_chat(hermes_home, fake_openai):
    async with discord_gateway(
        hermes_home, fake_openai, DISCORD_ALLOWED_USERS="", GATEWAY_ALLOW_ALL_USERS="true"
    ) as h:
        await h.dm("hi", user=BOB)
        assert await h.wait_answers(DM_BOB, 1) == ["echo: hi"]


async def test_message_deleted_mid_stream_continues_in_new_messages(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=STREAMED, chunk_size=6, delay=0.02))
    async with discord_gateway(hermes_home, fake_openai) as h:
        h.fake.fail_next(
            "PATCH", r"/channels/\d+/messages/\d+", status=404, code=10008, message="Unknown"
        )
        await h.dm("go")
        shown = await h.wait_answers(DM_ALICE, 2)
        # "Unknown Message" means it was deleted: its text is sent again, whole. (The fake
        # only said so; a real deletion is in test_stuck_stream.py.)
        assert shown[1:] == [STREAMED]


async def test_channel_refusing_messages_is_reported_not_retried(hermes_home, fake_openai):
    async with discord_gateway(hermes_home, fake_openai) as h:
        h.fake.fail_next("POST", rf"/channels/{DM_ALICE}/messages", status=403, code=50007, times=3)
        await h.dm("hello")
        await h.recorder.wait_for(lambda: bool(h.recorder.of(ev.Notice)))
        [notice] = h.recorder.of(ev.Notice)
        assert notice.level == "error" and "could not be delivered" in notice.text
        posts = [r for r in h.fake.requests if r.method == "POST" and r.path.endswith("/messages")]
        assert [r.status for r in posts] == [403]
