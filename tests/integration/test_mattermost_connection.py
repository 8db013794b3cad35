"""The Mattermost connection: bad token, dropped websocket, posts missed while away."""

from __future__ import annotations

from hermes_gateway.events import PlatformStatus
from tests.integration.mattermost_harness import mattermost_gateway


async def test_bad_token_is_one_clear_failure_naming_the_variable(hermes_home, fake_openai):
    async with mattermost_gateway(
        hermes_home, fake_openai, MATTERMOST_TOKEN="wrong", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "MATTERMOST_TOKEN" in failed[0][1] and "401" in failed[0][1]
        assert "wrong" not in failed[0][1]
        assert not [s for s in h.states() if s[0] == "reconnecting"]
        assert h.fake.websocket_auths == 0
        assert [r for r in h.fake.requests if r == ("GET", "/users/me")] == [("GET", "/users/me")]


async def test_a_token_without_a_url_names_mattermost_url(hermes_home, fake_openai):
    async with mattermost_gateway(
        hermes_home, fake_openai, MATTERMOST_URL="", wait_connected=False
    ) as h:
        await h.wait_state("failed")
        [failed] = [s for s in h.states() if s[0] == "failed"]
        assert "MATTERMOST_URL" in failed[1]
        assert h.fake.requests == []


async def test_dropped_websocket_resumes_without_duplicate_or_missed_answers(
    hermes_home, fake_openai
):
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("before the drop")
        assert await h.wait_answers(w.dm_alice, 1) == ["echo: before the drop"]
        # The websocket drops and the server refuses it for a while: posts written then
        # are only found by the catch-up after the reconnect.
        h.fake.refuse_websocket = True
        await h.fake.drop_websockets()
        await h.wait_state("reconnecting")
        await h.dm("while away 1")
        await h.post(w.town, "@hermes while away 2")
        await h.post(w.town, "not for the bot")
        h.fake.refuse_websocket = False
        await h.wait_state("connected")
        assert await h.wait_answers(w.dm_alice, 2) == [
            "echo: before the drop",
            "echo: while away 1",
        ]
        assert await h.wait_answers(w.town, 1) == ["echo: while away 2"]
        # After the catch-up, live posts still work, and nothing was answered twice.
        await h.dm("after")
        assert await h.wait_answers(w.dm_alice, 3) == [
            "echo: before the drop",
            "echo: while away 1",
            "echo: after",
        ]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert sorted(asked) == sorted(["before the drop", "while away 1", "while away 2", "after"])
        assert h.adapter.catch_ups >= 1
        retries = [e for e in h.recorder.of(PlatformStatus) if e.state == "reconnecting"]
        assert retries and any(e.retry_in for e in retries)
        assert h.fake.websocket_auths >= 2


async def test_a_gap_in_event_numbers_fetches_the_lost_post_once_in_order(hermes_home, fake_openai):
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("lost on the way", lost=True)
        await h.dm("arrives")
        await h.wait_answers(w.dm_alice, 1)
        rt = h.runner.sessions[f"mattermost:dm:{w.dm_alice}"]
        store = h.gateway.store

        async def said() -> list[str]:
            return [m.content for m in await store.get_messages(rt.record.id) if m.role == "user"]

        await h.fake.wait_for(lambda: len(fake_openai.requests) >= 1)
        await h.runner.wait_idle(5)
        # The busy runner may merge the two into one turn; either way each is said once,
        # the lost one first.
        text = "\n".join(await said())
        assert text.count("lost on the way") == 1 and text.count("arrives") == 1
        assert text.index("lost on the way") < text.index("arrives")
        assert h.adapter.catch_ups == 1


async def test_posts_written_while_the_gateway_was_off_are_answered_once_after_restart(
    hermes_home, fake_openai
):
    from hermes_tui.assembly import build_gateway
    from tests.fakes.mattermost_server import FakeMattermost
    from tests.helpers import Recorder
    from tests.integration.mattermost_harness import Harness, add_world, mattermost_config

    async with FakeMattermost() as fake:
        w = add_world(fake)

        async def run_gateway(body):  # one gateway life on the same home and server
            config = mattermost_config(
                hermes_home, fake_openai, fake, MATTERMOST_ALLOWED_USERS=w.alice
            )
            gateway = build_gateway(config)
            recorder = Recorder(gateway.bus)
            runner = await gateway.start(local=False)
            try:
                h = Harness(fake, w, gateway, runner, runner.adapters["mattermost"], recorder)
                await h.wait_state("connected")
                await body(h)
            finally:
                await gateway.stop()
                recorder.close()

        async def first(h):
            await h.dm("first life")
            assert await h.wait_answers(w.dm_alice, 1) == ["echo: first life"]

        await run_gateway(first)
        await fake.post_as(w.alice, w.dm_alice, "while the gateway was off")

        async def second(h):
            answers = await h.wait_answers(w.dm_alice, 2)
            assert answers == ["echo: first life", "echo: while the gateway was off"]

        await run_gateway(second)
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["first life", "while the gateway was off"]


async def test_garbage_frames_neither_break_the_connection_nor_reach_the_agent(
    hermes_home, fake_openai
):
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("before")
        await h.wait_answers(w.dm_alice, 1)
        for frame in (
            "not json",
            "[1, 2, 3]",
            '{"event": 7}',
            '{"event": "posted", "data": {"post": "{broken"}}',
            '{"event": "posted", "data": {"post": "[\\"a list\\"]"}}',
            '{"event": "posted", "data": "not a mapping"}',
            '{"event": "posted", "data": {"post": "{}", "channel_type": "D"}}',
            '{"status": "FAIL", "seq_reply": 99, "error": {"id": "x"}}',
            '{"event": "typing", "data": {}, "broadcast": {}, "seq": 1000000}',
        ):
            await h.fake.send_raw(frame)
        await h.dm("after")
        assert await h.wait_answers(w.dm_alice, 2) == ["echo: before", "echo: after"]
        assert h.fake.websocket_auths == 1  # never reconnected
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["before", "after"]


async def test_a_drop_in_the_middle_of_a_stream_still_ends_in_one_exact_post(
    hermes_home, fake_openai
):
    from tests.fakes.openai_server import ScriptedReply

    text = "A long streamed answer that keeps coming while the websocket drops. " * 4
    fake_openai.enqueue(ScriptedReply(text=text.strip(), chunk_size=8, delay=0.02))
    async with mattermost_gateway(hermes_home, fake_openai) as h:
        w = h.world
        await h.dm("stream please")
        await h.fake.wait_for(lambda: len(h.fake.bot_posts(w.dm_alice)) == 1)
        await h.fake.drop_websockets()
        await h.fake.wait_for(lambda: h.fake.websocket_auths == 2)  # reconnected
        assert await h.wait_answers(w.dm_alice, 1) == [text.strip()]
        assert h.adapter.catch_ups == 1
        assert len(fake_openai.requests) == 1  # the catch-up re-read the post: not a new turn
