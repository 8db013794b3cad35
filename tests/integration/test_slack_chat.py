"""Slack chats end to end: real slack-bolt + slack_sdk, the fake Slack, the real gateway.

Each test drives the gateway the way Slack users would (DMs, mentions, threads, long answers,
rate limits, dropped sockets, strangers) and checks what Slack finally shows.
"""

from __future__ import annotations

from hermes_gateway import events as ev
from hermes_gateway.delivery import split_message
from hermes_gateway.platforms.slack.mrkdwn import SLACK_LIMIT, measure, to_mrkdwn
from tests.fakes.openai_server import ScriptedReply
from tests.fakes.slack_server import FakeSlack
from tests.integration.slack_harness import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    DM_ALICE,
    DM_EVE,
    EVE,
    MENTION,
    OTHER,
    slack_gateway,
)

STREAMED = (
    "Slack streams this answer by **editing** one message with chat.update while the model "
    "writes it; the last edit must show exactly the final text, no cursor, nothing missing."
)


async def test_dm_is_streamed_by_edits_ending_in_the_exact_text(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=STREAMED, chunk_size=6, delay=0.02))
    async with slack_gateway(hermes_home, fake_openai) as h:
        await h.fake.inject_message(ALICE, DM_ALICE, "tell me how you stream")
        [answer] = await h.wait_answers(DM_ALICE, 1)
        [message] = h.messages(DM_ALICE)
        assert answer == to_mrkdwn(STREAMED)
        assert "*editing*" in answer and "**" not in answer
        assert len(message.history) > 1, "the answer was not streamed by edits"
        assert message.history[0].endswith("▌") and message.thread_ts is None
        assert fake_openai.requests[0]["messages"][-1]["content"] == "tell me how you stream"
        started = [
            e
            for e in h.recorder.of(ev.SessionChanged)
            if e.platform == "slack" and e.reason == "started"
        ]
        assert [s.session_key for s in started] == [f"slack:dm:{DM_ALICE}"]
        assert started[0].display_name == "alice"
        connected = [s for s in h.states() if s[0] == "connected"]
        assert connected and "hermes" in connected[0][1]


async def test_channel_needs_a_mention_and_each_thread_is_its_own_session(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        since = len(h.recorder.events)
        await h.fake.inject_message(ALICE, CHANNEL, "chatting among ourselves")
        await h.recorder.event(
            ev.MessageDropped, lambda e: e.reason == "not_mentioned", since=since
        )
        first = await h.fake.inject_message(ALICE, CHANNEL, f"{MENTION} hello bot")
        thread = first["ts"]
        assert await h.wait_answers(CHANNEL, 1, thread) == ["echo: hello bot"]
        # In the thread the bot was mentioned in, replies need no mention.
        await h.fake.inject_message(BOB, CHANNEL, "and this?", thread_ts=thread)
        assert await h.wait_answers(CHANNEL, 2, thread) == ["echo: hello bot", "echo: and this?"]
        # Another mention at the top level starts another thread, another session.
        second = await h.fake.inject_message(BOB, CHANNEL, f"{MENTION} again")
        assert await h.wait_answers(CHANNEL, 1, second["ts"]) == ["echo: again"]
        # A channel thread the bot was never addressed in stays ignored.
        since = len(h.recorder.events)
        await h.fake.inject_message(ALICE, OTHER, "side talk", thread_ts="1.000001")
        await h.recorder.event(
            ev.MessageDropped, lambda e: e.reason == "not_mentioned", since=since
        )
        keys = {k for k in h.runner.sessions if k.startswith("slack:")}
        assert keys == {
            f"slack:thread:{CHANNEL}:{thread}",
            f"slack:thread:{CHANNEL}:{second['ts']}",
        }
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["hello bot", "and this?", "again"]


async def test_require_mention_off_answers_every_channel_message(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai, SLACK_REQUIRE_MENTION="false") as h:
        msg = await h.fake.inject_message(ALICE, CHANNEL, "no mention needed")
        assert await h.wait_answers(CHANNEL, 1, msg["ts"]) == ["echo: no mention needed"]


async def test_long_answer_is_chunked_at_slacks_limit_with_fences_intact(hermes_home, fake_openai):
    code = "\n".join(f"    value_{i} = compute({i}) * 2  # line {i}" for i in range(1400))
    text = "Here is the code:\n\n```python\n" + code + "\n```\n\nThat was all of it."
    assert measure(text) > SLACK_LIMIT
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=4000))
    async with slack_gateway(hermes_home, fake_openai) as h:
        await h.fake.inject_message(ALICE, DM_ALICE, "show me the code")
        expected = [to_mrkdwn(c) for c in split_message(text, SLACK_LIMIT, measure=measure)]
        shown = await h.wait_answers(DM_ALICE, len(expected))
        assert len(expected) >= 2 and shown == expected
        for part in shown:
            assert len(part) <= 40_000
            assert part.count("```") % 2 == 0, "a chunk broke a code fence"
        assert shown[1].startswith("```")


async def test_429_during_a_stream_leaves_exactly_one_complete_message(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text=STREAMED, chunk_size=5, delay=0.02))
    async with slack_gateway(hermes_home, fake_openai) as h:
        h.fake.rate_limit_next("chat.update", retry_after=0.3, count=2)
        h.fake.rate_limit_next("chat.postMessage", retry_after=0.2, count=1)
        await h.fake.inject_message(ALICE, DM_ALICE, "stream despite limits")
        await h.wait_answers(DM_ALICE, 1)
        await h.fake.wait_for(lambda: h.fake.rate_limited == 3)
        await h.runner.wait_idle(10)
        [message] = h.messages(DM_ALICE)
        assert message.text == to_mrkdwn(STREAMED)
        assert h.fake.calls.count("chat.postMessage") == 2  # the refused one and the one sent


async def test_stranger_never_reaches_the_agent_and_gets_a_pairing_code(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        since = len(h.recorder.events)
        await h.fake.inject_message(EVE, DM_EVE, "let me in")
        await h.recorder.event(ev.AccessDenied, since=since)
        await h.fake.wait_for(lambda: bool(h.answers(DM_EVE)))
        [reply] = h.answers(DM_EVE)
        assert "code" in reply.lower()
        # Files from a stranger are never downloaded either.
        shared = h.fake.add_file("secret.txt", b"payload")
        since = len(h.recorder.events)
        await h.fake.inject_message(EVE, CHANNEL, f"{MENTION} take this", files=[shared])
        await h.recorder.event(ev.AccessDenied, since=since)
        assert fake_openai.requests == []
        assert not list((hermes_home / "media").rglob("*secret*"))


async def test_allowed_users_file_is_downloaded_with_the_bot_token(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        shared = h.fake.add_file("notes.txt", b"remember the milk")
        await h.fake.inject_message(ALICE, DM_ALICE, "read this", files=[shared])
        await h.wait_answers(DM_ALICE, 1)
        saved = list((hermes_home / "media").rglob("*notes*"))
        assert len(saved) == 1 and saved[0].read_bytes() == b"remember the milk"


async def test_redelivered_event_and_dropped_socket_answer_once(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        event = await h.fake.inject_message(ALICE, DM_ALICE, "once", event_id="EvONCE")
        assert await h.wait_answers(DM_ALICE, 1) == ["echo: once"]
        states = len(h.states())
        await h.fake.drop_connection()
        await h.wait_state("reconnecting", after=states)
        await h.wait_state("connected", after=states)
        assert h.fake.connections_opened == 2
        # Slack retries the same event (same event_id) after the reconnect: not answered.
        await h.fake.redeliver(event, "EvONCE")
        # ...nor the same message under a new event id (the inbox knows its ts).
        await h.fake.redeliver(event, "EvOTHER")
        await h.fake.inject_message(ALICE, DM_ALICE, "twice")
        assert await h.wait_answers(DM_ALICE, 2) == ["echo: once", "echo: twice"]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["once", "twice"]


async def test_disconnect_refresh_keeps_answering(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        await h.fake.send_disconnect()
        await h.fake.wait_for(lambda: h.fake.connections_opened == 2)
        await h.fake.wait_connected()
        await h.fake.inject_message(ALICE, DM_ALICE, "still there?")
        assert await h.wait_answers(DM_ALICE, 1) == ["echo: still there?"]


async def test_slash_command_runs_through_the_registry(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        await h.fake.inject_command(ALICE, DM_ALICE, "/hermes", "help")
        [reply] = await h.wait_answers(DM_ALICE, 1)
        assert "/reset" in reply
        await h.fake.inject_command(ALICE, DM_ALICE, "/status", "")
        await h.wait_answers(DM_ALICE, 2)
        assert fake_openai.requests == []
        assert len(h.fake.acked) >= 2


async def test_invalid_bot_token_is_one_clear_failure(hermes_home, fake_openai):
    async with slack_gateway(
        hermes_home, fake_openai, SLACK_BOT_TOKEN="xoxb-wrong", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "SLACK_BOT_TOKEN" in failed[0][1] and "invalid_auth" in failed[0][1]
        assert "xoxb-wrong" not in failed[0][1]
        assert h.fake.connections_opened == 0


async def test_invalid_app_token_names_its_variable(hermes_home, fake_openai):
    async with slack_gateway(
        hermes_home, fake_openai, SLACK_APP_TOKEN="xapp-wrong", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        [failed] = [s for s in h.states() if s[0] == "failed"]
        assert "SLACK_APP_TOKEN" in failed[1] and "invalid_auth" in failed[1]


async def test_media_lines_upload_workspace_files_only(hermes_home, fake_openai):
    from hermes_gateway.agent.tools.boundary import workspace_for

    workspace = workspace_for(hermes_home, "slack", f"slack:dm:{DM_ALICE}")
    workspace.mkdir(parents=True, exist_ok=True)
    report = workspace / "report.txt"
    report.write_text("the quarterly numbers")
    secret = hermes_home / ".env"  # a prompt-injected model must not send the tokens out
    secret.write_text("SLACK_BOT_TOKEN=xoxb-very-secret\n")
    fake_openai.enqueue(ScriptedReply(text=f"Here it is.\nMEDIA:{report}\nMEDIA:{secret}"))
    async with slack_gateway(hermes_home, fake_openai) as h:
        await h.fake.inject_message(ALICE, DM_ALICE, "send me the report")
        await h.fake.wait_for(lambda: any(m.files for m in h.messages(DM_ALICE)))
        await h.runner.wait_idle(10)
        text, upload = h.messages(DM_ALICE)
        # The refused line stays as text; only the workspace's file is uploaded.
        assert text.text.split() == ["Here", "it", "is.", f"MEDIA:{secret}"]
        assert [h.fake.uploads[f] for f in upload.files] == [b"the quarterly numbers"]
        assert not any(b"very-secret" in data for data in h.fake.uploads.values())


async def test_malformed_and_foreign_events_are_dropped_and_the_bot_keeps_answering(
    hermes_home, fake_openai
):
    huge = "x" * 200_000
    hostile = [
        {"type": "message", "channel": DM_ALICE, "channel_type": "im"},  # no user, no ts
        {"type": "message", "channel": 7, "user": ["U0ALICE"], "ts": None, "text": 3},
        {"type": "message", "channel": DM_ALICE, "user": BOT_USER, "ts": "9.1", "text": "me"},
        {"type": "message", "channel": DM_ALICE, "user": ALICE, "ts": "9.2", "bot_id": "B9"},
        {"type": "message", "subtype": "message_changed", "channel": DM_ALICE, "ts": "9.3"},
        {
            "type": "message",
            "channel": DM_ALICE,
            "channel_type": "im",
            "user": ALICE,
            "ts": "9.4",
            "files": "not-a-list",
            "text": None,
        },
        {
            "type": "message",
            "channel": CHANNEL,
            "user": ALICE,
            "ts": "9.5",
            "thread_ts": {"x": 1},
            "text": f"{MENTION} odd thread",
        },
    ]

    def short(body):  # the model's answers stay short: this test is about what comes in
        text = body["messages"][-1]["content"]
        return ScriptedReply(text=f"echo: {text[:20]}")

    fake_openai.default = short
    async with slack_gateway(hermes_home, fake_openai) as h:
        await h.fake.inject_raw("this is not json")
        await h.fake.inject_raw('{"type": "events_api", "envelope_id": "e1", "payload": 5}')
        for event in hostile:
            await h.fake.inject_event(event)
        await h.fake.inject_message(ALICE, DM_ALICE, huge)
        await h.wait_answers(DM_ALICE, 1)
        await h.fake.inject_message(ALICE, DM_ALICE, "still fine?")
        await h.fake.wait_for(lambda: "echo: still fine?" in h.answers(DM_ALICE))
        await h.runner.wait_idle(10)
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked[-1] == "still fine?"
        assert huge in asked  # the huge message arrived whole
        assert "me" not in asked and len(asked) <= 4
        assert h.states()[-1][0] == "connected"


async def test_stopped_mid_answer_it_is_answered_once_after_the_restart(hermes_home, fake_openai):
    """The message was stored and acknowledged, the answer cut by the stop: the next start
    answers it exactly once, once Slack is connected again."""
    fake_openai.enqueue(ScriptedReply(text="never finished " * 10, chunk_size=5, hold_at=[1]))

    def quick_drain(config):
        config.gateway.drain_timeout = 0.2

    async with FakeSlack() as fake:
        async with slack_gateway(hermes_home, fake_openai, fake=fake, configure=quick_drain) as h:
            await fake.inject_message(ALICE, DM_ALICE, "answer me after a restart")
            await h.recorder.wait_for(lambda: fake_openai.held == 1)
        fake_openai.release()
        [cut] = h.answers(DM_ALICE)  # what was streamed, and that it goes on after the restart
        assert "restarting" in cut
        async with slack_gateway(hermes_home, fake_openai, fake=fake) as h2:
            await h2.wait_answers(DM_ALICE, 2)
            await h2.fake.inject_message(ALICE, DM_ALICE, "and now?")
            answers = await h2.wait_answers(DM_ALICE, 3)
            assert answers == [cut, "echo: answer me after a restart", "echo: and now?"]
            asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
            assert asked == ["answer me after a restart"] * 2 + ["and now?"]


async def test_reconnects_back_off_and_show_in_the_platform_state(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        h.fake.fail_next("apps.connections.open", "internal_error", count=3)
        before = len(h.states())
        await h.fake.drop_connection()
        await h.wait_state("connected", after=before)
        retries = [s for s in h.states()[before:] if s[0] == "reconnecting"]
        assert len(retries) == 4  # the drop, then each refused connections.open
        delays = [s[2] for s in retries]
        assert all(d is not None for d in delays)
        assert delays == sorted(delays) and delays[-1] > delays[0]  # exponential
        assert "internal_error" in retries[-1][1]
        await h.fake.inject_message(ALICE, DM_ALICE, "back?")
        assert await h.wait_answers(DM_ALICE, 1) == ["echo: back?"]


async def test_stranger_slash_command_in_a_channel_is_refused_privately(hermes_home, fake_openai):
    async with slack_gateway(hermes_home, fake_openai) as h:
        await h.fake.inject_command(EVE, CHANNEL, "/hermes", "status")
        await h.fake.wait_for(lambda: bool(h.fake.ack_payloads))
        [payload] = h.fake.ack_payloads
        assert "not allowed" in payload["text"]
        await h.fake.inject_command(ALICE, CHANNEL, "/hermes", "bogus-command")
        await h.fake.wait_for(lambda: len(h.fake.ack_payloads) == 2)
        assert "does not know" in h.fake.ack_payloads[1]["text"]
        assert h.answers(CHANNEL) == [] and fake_openai.requests == []


def test_slack_defaults_are_hermes_agents(hermes_home):
    """A Hermes .env with only the two tokens: Slack on, mentions required, answers in
    threads, no tool-progress lines (they would stay in a channel for good)."""
    from hermes_gateway.platforms.slack import PLUGIN
    from tests.conftest import make_config

    config = make_config(hermes_home, SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
    slack = config.platforms.slack
    assert PLUGIN.enabled(config) and slack.require_mention and slack.reply_in_thread
    assert slack.progress_mode(config.display) == "off"
    assert slack.token == "xoxb-1" and slack.app_token == "xapp-1"
    off = make_config(hermes_home, SLACK_BOT_TOKEN="")
    assert not PLUGIN.enabled(off)


async def test_missing_app_token_says_what_socket_mode_needs(hermes_home, fake_openai):
    async with slack_gateway(
        hermes_home, fake_openai, SLACK_APP_TOKEN="", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        [failed] = [s for s in h.states() if s[0] == "failed"]
        assert "SLACK_APP_TOKEN is not set" in failed[1] and "connections:write" in failed[1]
        assert h.fake.calls == []
