"""Mattermost chats end to end: the fake Mattermost over real sockets, the real gateway.

Each test drives the gateway as Mattermost users would (DMs, mentions, threads, long answers,
rate limits, strangers) and checks what the channel finally shows, post by post.
"""

from __future__ import annotations

import asyncio

from hermes_gateway import events as ev
from hermes_gateway.delivery import split_message
from tests.fakes.openai_server import ScriptedReply
from tests.integration.mattermost_harness import mattermost_gateway

STREAMED = (
    "Mattermost streams this answer by patching one post while the model writes it, "
    "and the last patch must show exactly the final text, no cursor, nothing missing."
)


async def test_dm_streams_by_patches_and_ends_in_the_exact_text(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=STREAMED, chunk_size=6, delay=0.02))
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("tell me how you stream")
        [answer] = await h.wait_answers(w.dm_alice, 1)
        [post] = h.fake.bot_posts(w.dm_alice)
        assert answer == STREAMED
        assert len(post.history) > 1, "the answer was not streamed by patches"
        assert post.history[0].endswith("▌") and post.history[-1] == STREAMED
        assert w.dm_alice in h.fake.typing
        # The bot's own posts come back over the websocket; none of them became a turn.
        assert len(fake_openai.requests) == 1
        assert fake_openai.requests[0]["messages"][-1]["content"] == "tell me how you stream"
        [session] = [
            e
            for e in h.recorder.of(ev.SessionChanged)
            if e.platform == "mattermost" and e.reason == "started"
        ]
        assert session.session_key == f"mattermost:dm:{w.dm_alice}"
        rt = h.runner.sessions[session.session_key]
        assert (rt.source.user_id, rt.source.user_name) == (w.alice, "alice")
        connected = [s for s in h.states() if s[0] == "connected"]
        assert connected and connected[0][1] == "as @hermes"


async def test_channels_need_a_mention_and_threads_are_their_own_sessions(hermes_home, fake_openai):
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.post(w.town, "chatting among ourselves")
        root = await h.post(w.town, "@hermes hello bot")
        assert await h.wait_answers(w.town, 1) == ["echo: hello bot"]
        # A thread under a post: not mentioned, never addressed there -> ignored.
        side = await h.post(w.other, "side topic")
        await h.post(w.other, "side talk", root_id=side.id)
        await h.post(w.town, "@hermes now in a thread", root_id=root.id)
        assert await h.wait_answers(w.town, 1, root=root.id) == ["echo: now in a thread"]
        # Once addressed in the thread, it keeps answering there without mentions.
        await h.post(w.town, "and this?", root_id=root.id)
        assert await h.wait_answers(w.town, 2, root=root.id) == [
            "echo: now in a thread",
            "echo: and this?",
        ]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["hello bot", "now in a thread", "and this?"]
        assert set(h.runner.sessions) == {
            f"mattermost:channel:{w.town}:@{w.alice}",  # a channel: per member
            f"mattermost:thread:{w.town}:{root.id}",  # a thread: shared
        }
        thread_rt = h.runner.sessions[f"mattermost:thread:{w.town}:{root.id}"]
        assert thread_rt.source.chat_name == "~Town-Square"
        assert h.fake.shown(w.other) == []


async def test_require_mention_off_and_reply_mode_thread(hermes_home, fake_openai):
    async with mattermost_gateway(
        hermes_home,
        fake_openai,
        MATTERMOST_REQUIRE_MENTION="false",
        MATTERMOST_REPLY_MODE="thread",
    ) as h:
        w = h.world
        asked = await h.post(w.town, "@hermes open a thread")
        plain = await h.post(w.other, "no mention at all")
        assert await h.wait_answers(w.town, 1, root=asked.id) == ["echo: open a thread"]
        assert await h.wait_answers(w.other, 1) == ["echo: no mention at all"]
        assert f"mattermost:thread:{w.town}:{asked.id}" in h.runner.sessions
        assert h.fake.bot_posts(w.other)[0].root_id == ""
        assert plain.id not in {p.root_id for p in h.fake.bot_posts(w.other)}


async def test_long_answer_is_chunked_at_the_server_limit_with_fences_intact(
    hermes_home, fake_openai
):
    code = "\n".join(f"    print('line {i:03d} of the example program')" for i in range(60))
    text = (
        "Here is the program.\n\n"
        + "Some context. " * 60
        + "\n\n```python\ndef main():\n"
        + code
        + "\n```\n\n"
        + "And a closing paragraph. " * 39
        + "The end."
    )
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=400, delay=0.01))
    async with mattermost_gateway(hermes_home, fake_openai, fake_options={"post_limit": 2000}) as h:
        assert h.adapter.transport.limit == 2000  # read from /api/v4/config/client
        await h.dm("write it")
        expected = split_message(text, 2000)
        assert len(expected) == 3
        shown = await h.wait_answers(h.world.dm_alice, 3)
        assert shown == expected
        assert all(m.count("```") % 2 == 0 for m in shown)
        assert any(m.startswith("```python") for m in shown), "the split fence is reopened"


async def test_429_during_a_stream_ends_in_one_complete_post(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=STREAMED, chunk_size=6, delay=0.02))
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("go")
        await h.fake.wait_for(lambda: len(h.fake.bot_posts(w.dm_alice)) == 1)
        h.fake.force_429(2, reset_seconds=0.3)
        await h.fake.wait_for(lambda: h.fake.rate_limited == 2)
        [answer] = await h.wait_answers(w.dm_alice, 1)
        assert answer == STREAMED
        assert len(h.fake.bot_posts(w.dm_alice)) == 1  # retried patches, never a second post
        # A refused first post (429 on POST /posts) is sent once, after the wait.
        fake_openai.enqueue(ScriptedReply(text=STREAMED + " Again.", chunk_size=6, delay=0.02))
        h.fake.force_429(1, reset_seconds=0.2)
        await h.dm("again")
        await h.fake.wait_for(lambda: h.fake.rate_limited == 3)
        answers = await h.wait_answers(w.dm_alice, 2)
        assert answers == [STREAMED, STREAMED + " Again."]


async def test_unauthorised_users_never_reach_the_agent(hermes_home, fake_openai):
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("let me in", user=w.bob)
        await h.post(w.town, "@hermes me too", user=w.bob)
        await h.post(w.town, "@hermes it's alice")
        assert await h.wait_answers(w.town, 1) == ["echo: it's alice"]
        [offer] = await h.wait_answers(w.dm_bob, 1)
        assert "pairing code" in offer
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["it's alice"]
        assert not any(rt.source.user_id == w.bob for rt in h.runner.sessions.values())


async def test_files_in_for_allowed_users_only_and_files_out(hermes_home, fake_openai, tmp_path):
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        mine = h.fake.add_file(w.dm_alice, "notes.txt", b"alice's notes")
        theirs = h.fake.add_file(w.dm_bob, "secret.txt", b"bob's secret")
        await h.fake.post_as(w.bob, w.dm_bob, "read this", file_ids=[theirs])
        await h.fake.post_as(w.alice, w.dm_alice, "read this", file_ids=[mine])
        await h.wait_answers(w.dm_alice, 1)
        await h.wait_answers(w.dm_bob, 1)
        downloads = [p for m, p in h.fake.requests if m == "GET" and p.startswith("/files/")]
        assert f"/files/{mine}" in downloads and f"/files/{theirs}" not in downloads
        saved = list((hermes_home / "media" / "mattermost").rglob("*notes*"))
        assert saved and saved[0].read_bytes() == b"alice's notes"
        # Out: POST /files, then a post that carries the file id.
        report = tmp_path / "report.txt"
        report.write_text("the report")
        rt = h.runner.sessions[f"mattermost:dm:{w.dm_alice}"]
        await h.adapter.send_file(rt.source, report, "here it is")
        await h.fake.wait_for(lambda: any(p.file_ids for p in h.fake.bot_posts(w.dm_alice)))
        [with_file] = [p for p in h.fake.bot_posts(w.dm_alice) if p.file_ids]
        assert with_file.message == "here it is"
        assert h.fake.files[with_file.file_ids[0]][1:] == ("report.txt", b"the report")


async def test_typed_commands_from_the_registry(hermes_home, fake_openai):
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm(" /help")  # the leading space gets past Mattermost's own slash commands
        [answer] = await h.wait_answers(w.dm_alice, 1)
        assert "/new" in answer
        assert fake_openai.requests == []
        await asyncio.sleep(0)


async def test_home_channel_deliveries_and_explicit_threads(hermes_home, fake_openai):
    """Cron's road: ``mattermost`` is MATTERMOST_HOME_CHANNEL, ``mattermost:<chan>:<root>``
    a thread."""
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        h.gateway.config.platforms.mattermost.home_channel = w.other
        root = await h.post(w.town, "a root post")
        outcomes = await h.runner.router.deliver(
            f"mattermost,mattermost:{w.town}:{root.id}", "the nightly report"
        )
        assert [o.status for o in outcomes] == ["sent", "sent"], outcomes
        assert h.fake.shown(w.other) == ["the nightly report"]
        assert h.fake.shown(w.town, root.id) == ["the nightly report"]


async def test_media_lines_upload_workspace_files_only(hermes_home, fake_openai):
    """``MEDIA:/path`` in an answer uploads the file, from the chat's workspace only: a
    prompt-injected model cannot mail out HERMES_HOME's secrets."""
    from hermes_gateway.agent.tools.boundary import workspace_for

    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        workspace = workspace_for(hermes_home, "mattermost", f"mattermost:dm:{w.dm_alice}")
        workspace.mkdir(parents=True, exist_ok=True)
        chart = workspace / "chart.txt"
        chart.write_text("the chart")
        secret = hermes_home / ".env"
        secret.write_text("MATTERMOST_TOKEN=very-secret\n")
        fake_openai.enqueue(ScriptedReply(text=f"Here it is.\n\nMEDIA:{chart}\nMEDIA:{secret}\n"))
        await h.dm("send the chart and the .env")
        await h.fake.wait_for(lambda: any(p.file_ids for p in h.fake.bot_posts(w.dm_alice)))
        await h.runner.wait_idle(5)
        posts = h.fake.bot_posts(w.dm_alice)
        assert posts[0].message == f"Here it is.\n\nMEDIA:{secret}"
        uploaded = [h.fake.files[f] for p in posts for f in p.file_ids]
        assert [(name, data) for _, name, data in uploaded] == [("chart.txt", b"the chart")]
        assert not any(b"very-secret" in data for *_, data in h.fake.files.values())


async def test_a_stranger_paired_by_code_is_let_in(hermes_home, fake_openai):
    import re

    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("hello?", user=w.bob)
        [offer] = await h.wait_answers(w.dm_bob, 1)
        code = re.search(r"`([A-Z0-9]{8})`", offer)
        assert code, offer
        assert h.gateway.pairing is not None
        await h.gateway.pairing.approve_code("mattermost", code[1])
        await h.fake.wait_for(lambda: len(h.fake.bot_posts(w.dm_bob)) >= 2)  # "you're in"
        await h.dm("now?", user=w.bob)
        answers = await h.wait_answers(w.dm_bob, 3)
        assert answers[-1] == "echo: now?"
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["now?"]
