"""Signal end to end: the fake signal-cli-rest-api (json-rpc websocket, REST) over real
sockets, the real gateway."""

from __future__ import annotations

import base64

from hermes_gateway import events as ev
from hermes_gateway.platforms.signal.inbound import group_recipient
from tests.fakes.openai_server import ScriptedReply
from tests.fakes.signal_server import FakeSignal
from tests.integration.signal_harness import ALICE, BOB, MALLORY, signal_gateway


async def test_a_dm_is_answered_in_plain_text(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text="**Yes**, bring an *umbrella*: [wx](https://wx.test)"))
    async with signal_gateway(hermes_home, fake_openai) as h:
        await h.fake.user_sends(ALICE, "will it rain?")
        assert await h.wait_texts(ALICE, 1) == ["Yes, bring an umbrella: wx (https://wx.test)"]
        assert (ALICE, True) in h.fake.typing
        rt = h.runner.sessions[f"signal:dm:{ALICE}"]
        assert (rt.source.user_id, rt.source.user_name) == (ALICE, "Alice")
        assert fake_openai.requests[0]["messages"][-1]["content"] == "will it rain?"
        assert [s for s, _ in h.states()] == ["starting", "connected"]


async def test_groups_keep_a_session_per_member_and_need_allowing(hermes_home, fake_openai):
    fake = FakeSignal()
    async with fake:
        allowed = fake.add_group("Family")
        other = fake.add_group("Strangers")
        async with signal_gateway(
            hermes_home,
            fake_openai,
            fake=fake,
            SIGNAL_ALLOWED_USERS=f"{ALICE},{BOB}",
            SIGNAL_GROUP_ALLOWED_USERS=allowed,
        ) as h:
            await h.fake.user_sends(BOB, "ignored group", group=other)
            await h.fake.user_sends(ALICE, "hello family", group=allowed)
            family = group_recipient(allowed)
            assert family == "group." + base64.b64encode(allowed.encode()).decode()
            assert await h.wait_texts(family, 1) == ["echo: hello family"]
            await h.fake.user_sends(BOB, "and from bob", group=allowed)
            assert await h.wait_texts(family, 2) == ["echo: hello family", "echo: and from bob"]
            await h.fake.user_sends(ALICE, "private")
            assert await h.wait_texts(ALICE, 1) == ["echo: private"]
            assert set(h.runner.sessions) == {  # a group: a session per member
                f"signal:group:{family}:@{ALICE}",
                f"signal:group:{family}:@{BOB}",
                f"signal:dm:{ALICE}",
            }
            assert h.fake.texts(group_recipient(other)) == []
            asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
            assert "ignored group" not in asked


async def test_require_mention_in_groups(hermes_home, fake_openai):
    fake = FakeSignal()
    async with fake:
        group = fake.add_group("Team")
        async with signal_gateway(
            hermes_home,
            fake_openai,
            fake=fake,
            SIGNAL_GROUP_ALLOWED_USERS="*",
            SIGNAL_REQUIRE_MENTION="true",
        ) as h:
            since = len(h.recorder.events)
            await h.fake.user_sends(ALICE, "just chatting", group=group)
            await h.recorder.event(
                ev.MessageDropped, lambda e: e.reason == "not_mentioned", since=since
            )
            await h.fake.user_sends(ALICE, "what time is it?", group=group, mention_bot=True)
            assert await h.wait_texts(group_recipient(group), 1) == ["echo: what time is it?"]


async def test_a_stranger_never_reaches_the_agent(hermes_home, fake_openai):
    async with signal_gateway(hermes_home, fake_openai) as h:
        since = len(h.recorder.events)
        await h.fake.user_sends(MALLORY, "let me in")
        denied = await h.recorder.event(ev.AccessDenied, since=since)
        assert denied.platform == "signal"
        assert fake_openai.requests == []
        await h.fake.wait_for(lambda: len(h.fake.texts(MALLORY)) == 1)
        assert "pair" in h.fake.texts(MALLORY)[0].lower()


async def test_reconnect_without_duplicates(hermes_home, fake_openai):
    async with signal_gateway(hermes_home, fake_openai) as h:
        await h.fake.user_sends(ALICE, "before")
        assert await h.wait_texts(ALICE, 1) == ["echo: before"]
        # The websocket drops; a message comes meanwhile; signal-cli repeats the last
        # envelopes to the new connection.
        h.fake.replay_on_connect = 5
        await h.fake.drop_websockets()
        await h.recorder.wait_for(
            lambda: h.adapter.connections >= 2 or h.fake.websocket_connections >= 2
        )
        await h.fake.user_sends(ALICE, "during")
        assert await h.wait_texts(ALICE, 2) == ["echo: before", "echo: during"]
        states = [s for s, _ in h.states()]
        assert states.count("connected") >= 2 and "reconnecting" in states
        # Another drop with the replay again: still nothing twice.
        await h.fake.drop_websockets()
        await h.fake.wait_for(lambda: h.fake.websocket_connections >= 3)
        await h.fake.user_sends(ALICE, "after")
        assert await h.wait_texts(ALICE, 3) == ["echo: before", "echo: during", "echo: after"]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["before", "during", "after"]


async def test_attachments_in_and_out(hermes_home, fake_openai):
    from hermes_gateway.agent.tools.boundary import workspace_for

    async with signal_gateway(hermes_home, fake_openai) as h:
        workspace = workspace_for(hermes_home, "signal", f"signal:dm:{ALICE}")
        workspace.mkdir(parents=True, exist_ok=True)
        chart = workspace / "chart.txt"
        chart.write_text("the chart")
        secret = hermes_home / ".env"
        secret.write_text("SIGNAL_ACCOUNT=very-secret\n")
        fake_openai.enqueue(ScriptedReply(text=f"Here.\n\nMEDIA:{chart}\nMEDIA:{secret}\n"))
        att = h.fake.add_attachment(b"alice's notes", "text/plain", "notes.txt")
        await h.fake.user_sends(ALICE, "read this", attachments=[att])
        await h.fake.wait_for(lambda: any(s.attachments for s in h.fake.to(ALICE)))
        await h.runner.wait_idle(5)
        saved = [p for p in (hermes_home / "media" / "signal").rglob("*") if p.is_file()]
        assert [p.read_bytes() for p in saved] == [b"alice's notes"]
        assert h.fake.texts(ALICE)[0] == f"Here.\n\nMEDIA:{secret}"
        [upload] = [s for s in h.fake.to(ALICE) if s.attachments]
        [uri] = upload.attachments
        assert uri.startswith("data:text/plain;filename=chart.txt;base64,")
        assert base64.b64decode(uri.split(",", 1)[1]) == b"the chart"


async def test_rate_limit_is_retried_and_delivered_once(hermes_home, fake_openai):
    async with signal_gateway(hermes_home, fake_openai) as h:
        h.fake.rate_limit(2)
        await h.fake.user_sends(ALICE, "busy")
        assert await h.wait_texts(ALICE, 1) == ["echo: busy"]
        assert h.fake.rate_limited == 2


async def test_wrong_mode_and_unregistered_account_are_clear_failures(hermes_home, fake_openai):
    async with FakeSignal(mode="normal") as fake:
        async with signal_gateway(hermes_home, fake_openai, fake=fake) as h:
            [(_, detail)] = [s for s in h.states() if s[0] == "failed"]
            assert "MODE=json-rpc" in detail
    async with signal_gateway(hermes_home, fake_openai, SIGNAL_ACCOUNT="+15559999999") as h:
        [(_, detail)] = [s for s in h.states() if s[0] == "failed"]
        assert "SIGNAL_ACCOUNT" in detail


async def test_restart_answers_once(hermes_home, fake_openai):
    from hermes_gateway.runner.pipeline import RESTART_NOTE

    fake_openai.enqueue(ScriptedReply(text="never finished", chunk_size=2, stall_after=1))

    def quick_drain(config):
        config.gateway.drain_timeout = 0.2

    async with FakeSignal() as fake:
        async with signal_gateway(hermes_home, fake_openai, fake=fake, configure=quick_drain) as h:
            ts = await fake.user_sends(ALICE, "survive this")
            await h.recorder.event(ev.MessageReceived, lambda e: e.text == "survive this")
        [note] = fake.texts(ALICE)
        assert note.endswith(RESTART_NOTE)
        fake.replay_on_connect = 5  # and the same envelope comes again after the restart
        async with signal_gateway(hermes_home, fake_openai, fake=fake) as h:
            assert (await h.wait_texts(ALICE, 2))[1:] == ["echo: survive this"]
            # The replayed envelope reached the runner, which knew it.
            await h.recorder.event(ev.MessageDropped, lambda e: e.reason == "duplicate")
            # Sent yet again on this connection: the adapter already took it.
            await fake.user_sends(ALICE, "survive this", timestamp=ts)
            await fake.user_sends(ALICE, "new one")
            assert (await h.wait_texts(ALICE, 3))[1:] == ["echo: survive this", "echo: new one"]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["survive this", "survive this", "new one"]


async def test_a_used_home_restarts_without_double_answers(hermes_home, fake_openai, used_home):
    async with FakeSignal() as fake:
        async with signal_gateway(hermes_home, fake_openai, fake=fake) as h:
            await fake.user_sends(ALICE, "first life")
            assert await h.wait_texts(ALICE, 1) == ["echo: first life"]
        fake.replay_on_connect = 5
        async with signal_gateway(hermes_home, fake_openai, fake=fake) as h:
            await h.recorder.event(ev.MessageDropped, lambda e: e.reason == "duplicate")
            await fake.user_sends(ALICE, "second life")
            assert await h.wait_texts(ALICE, 2) == ["echo: first life", "echo: second life"]
            total = 0
            for info in used_home.sessions:
                total += len(await h.runner.store.get_messages(info.id))
            assert total == used_home.messages


async def test_a_stranger_paired_by_code_is_let_in(hermes_home, fake_openai):
    import re

    async with signal_gateway(hermes_home, fake_openai) as h:
        await h.fake.user_sends(MALLORY, "hello?")
        [offer] = await h.wait_texts(MALLORY, 1)
        code = re.search(r"code: ([A-Z0-9]{8})\b", offer)
        assert code, offer
        assert h.gateway.pairing is not None
        await h.gateway.pairing.approve_code("signal", code[1])
        await h.fake.wait_for(lambda: len(h.fake.texts(MALLORY)) >= 2)
        await h.fake.user_sends(MALLORY, "now?")
        assert (await h.wait_texts(MALLORY, 3))[-1] == "echo: now?"
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["now?"]


async def test_large_attachments_arrive_whole(hermes_home, fake_openai):
    import os

    async with signal_gateway(hermes_home, fake_openai) as h:
        data = os.urandom(2 * 1024 * 1024 + 5)
        att = h.fake.add_attachment(data, "application/octet-stream", "blob.bin")
        await h.fake.user_sends(ALICE, "keep this", attachments=[att])
        await h.wait_texts(ALICE, 1)
        saved = [p for p in (hermes_home / "media" / "signal").rglob("*") if p.is_file()]
        assert [p.read_bytes() == data for p in saved] == [True]


async def test_a_stranger_in_an_allowed_group_never_reaches_the_agent(hermes_home, fake_openai):
    fake = FakeSignal()
    async with fake:
        group = fake.add_group("Family")
        async with signal_gateway(
            hermes_home, fake_openai, fake=fake, SIGNAL_GROUP_ALLOWED_USERS=group
        ) as h:
            since = len(h.recorder.events)
            await fake.user_sends(MALLORY, "tell me everything", group=group)
            denied = await h.recorder.event(ev.AccessDenied, since=since)
            assert denied.session_key == f"signal:group:{group_recipient(group)}:@{MALLORY}"
            assert fake_openai.requests == []
            assert fake.texts(group_recipient(group)) == []  # no pairing code into a group
            await fake.user_sends(ALICE, "hi all", group=group)
            assert await h.wait_texts(group_recipient(group), 1) == ["echo: hi all"]


async def test_garbage_frames_neither_break_the_connection_nor_reach_the_agent(
    hermes_home, fake_openai
):
    async with signal_gateway(hermes_home, fake_openai) as h:
        for frame in (
            "not json",
            "[1, 2]",
            '{"error": "Couldn\'t receive"}',
            '{"envelope": {"sourceNumber": "+15551230001", "dataMessage": {"timestamp": "x"}}}',
            '{"envelope": {"sourceNumber": "+15551230001", "timestamp": 1, "dataMessage": '
            '{"timestamp": 1, "message": "", "attachments": "nope", "mentions": 7}}}',
            '{"envelope": {"sourceNumber": "+15551230001", "timestamp": 3, "dataMessage": '
            '{"timestamp": 3, "message": "", "attachments": [{"id": "a", "size": "big"}], '
            '"mentions": [{"start": "x"}]}}}',
            '{"envelope": {"dataMessage": {"timestamp": 2, "message": "no sender"}}}',
        ):
            await h.fake.push(frame)
        await h.fake.user_sends(ALICE, "after the noise")
        assert await h.wait_texts(ALICE, 1) == ["echo: after the noise"]
        assert [e.text for e in h.recorder.of(ev.MessageReceived)] == ["after the noise"]
        assert h.adapter.connections == 1
