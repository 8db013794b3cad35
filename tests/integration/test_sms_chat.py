"""SMS through Twilio end to end: the fake Twilio over real sockets, the real gateway.

Phones text the bot through signed webhooks; the tests check what each phone finally
receives (bodies, segment counts), who reaches the agent, and what survives a restart.
"""

from __future__ import annotations

from hermes_gateway import events as ev
from hermes_gateway.platforms.sms.segments import count_segments
from hermes_gateway.runner.pipeline import RESTART_NOTE
from tests.fakes.openai_server import ScriptedReply
from tests.integration.sms_harness import ALICE, BOB, MALLORY, PUBLIC_URL, sms_gateway

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def test_an_sms_is_answered_in_plain_text_from_our_number(hermes_home, fake_openai):
    fake_openai.enqueue(
        ScriptedReply(text="## Plan\n**Bring** an _umbrella_, see [the forecast](https://wx.test).")
    )
    async with sms_gateway(hermes_home, fake_openai) as h:
        status, body, sid = await h.text(ALICE, "will it rain?")
        assert (status, body) == (200, EMPTY_TWIML)
        assert await h.wait_answers(ALICE, 1) == [
            "Plan\nBring an umbrella, see the forecast (https://wx.test)."
        ]
        [sent] = h.fake.to(ALICE)
        assert sent.sender == h.fake.number
        assert fake_openai.requests[0]["messages"][-1]["content"] == "will it rain?"
        assert set(h.runner.sessions) == {f"sms:dm:{ALICE}"}
        rt = h.runner.sessions[f"sms:dm:{ALICE}"]
        assert (rt.source.user_id, rt.source.chat_type) == (ALICE, "dm")
        assert [s for s, _ in h.states()] == ["starting", "connected"]


async def test_each_number_is_its_own_session(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai, SMS_ALLOWED_USERS=f"{ALICE},{BOB}") as h:
        await h.text(ALICE, "one")
        await h.text(BOB, "two")
        await h.wait_answers(ALICE, 1)
        await h.text(ALICE, "three")
        assert await h.wait_answers(ALICE, 2) == ["echo: one", "echo: three"]
        assert await h.wait_answers(BOB, 1) == ["echo: two"]
        assert set(h.runner.sessions) == {f"sms:dm:{ALICE}", f"sms:dm:{BOB}"}
        # Alice's second turn saw her first exchange, not Bob's.
        history = [
            m["content"] for m in fake_openai.requests[-1]["messages"] if m["role"] == "user"
        ]
        assert history == ["one", "three"]


async def test_long_answers_are_split_at_segment_limits_and_capped(hermes_home, fake_openai):
    words = " ".join(f"word{i}" for i in range(500))  # ~4400 GSM-7 characters
    emoji = " ".join(f"🙂{i}" for i in range(300))  # UCS-2: 67 units per segment
    huge = "x " * 10_000
    for text in (words, emoji, huge):
        fake_openai.enqueue(ScriptedReply(text=text))
    async with sms_gateway(hermes_home, fake_openai, SMS_ALLOWED_USERS=f"{ALICE},{BOB}") as h:
        await h.text(ALICE, "long please")
        bodies = await h.wait_answers(ALICE, 3)
        counts = [count_segments(b) for b in bodies]
        assert all(c.encoding == "GSM-7" and c.segments <= 10 for c in counts)
        assert " ".join(bodies).split() == words.split()

        await h.text(BOB, "emoji please")
        await h.wait_answers(BOB, 1)
        await h.runner.wait_idle(5)
        bodies = h.fake.bodies(BOB)
        counts = [count_segments(b) for b in bodies]
        assert all(c.encoding == "UCS-2" and c.segments <= 10 for c in counts)
        assert " ".join(bodies).split() == emoji.split()

        await h.text(ALICE, "huge please")
        await h.wait_answers(ALICE, 4)
        await h.runner.wait_idle(5)
        capped = h.fake.bodies(ALICE)[3:]
        assert sum(count_segments(b).segments for b in capped) <= 30
        assert capped[-1].endswith("[answer cut: too long for SMS]")


async def test_a_stranger_never_reaches_the_agent(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai) as h:
        since = len(h.recorder.events)
        status, _, _ = await h.text(MALLORY, "let me in")
        assert status == 200
        denied = await h.recorder.event(ev.AccessDenied, since=since)
        assert denied.platform == "sms"
        assert fake_openai.requests == []
        # The stranger is offered a pairing code (DM policy ``pair``), nothing else.
        await h.fake.wait_for(lambda: len(h.fake.to(MALLORY)) == 1)
        assert "pair" in h.fake.bodies(MALLORY)[0].lower()


async def test_forged_or_missing_signature_is_refused(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai) as h:
        forged = await h.text(ALICE, "forged", signature="bm90IHRoZSBzaWduYXR1cmU=")
        missing = await h.text(ALICE, "unsigned", sign=False)
        # Signed for another URL (a replay against a different endpoint).
        h.fake.public_url = "https://elsewhere.test/webhooks/twilio"
        other_url = await h.text(ALICE, "wrong url")
        h.fake.public_url = PUBLIC_URL
        assert [forged[0], missing[0], other_url[0]] == [403, 403, 403]
        assert h.adapter.refused == 3
        ok = await h.text(ALICE, "real")
        assert ok[0] == 200
        assert await h.wait_answers(ALICE, 1) == ["echo: real"]
        received = [e.text for e in h.recorder.of(ev.MessageReceived)]
        assert received == ["real"]
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["real"]


async def test_a_repeated_message_sid_is_answered_once(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai) as h:
        _, _, sid = await h.text(ALICE, "only once")
        assert await h.wait_answers(ALICE, 1) == ["echo: only once"]
        since = len(h.recorder.events)
        status, _, _ = await h.text(ALICE, "only once", sid=sid)  # Twilio's retry
        assert status == 200
        dropped = await h.recorder.event(
            ev.MessageDropped, lambda e: e.reason == "duplicate", since=since
        )
        assert dropped.platform == "sms"
        assert h.fake.bodies(ALICE) == ["echo: only once"]
        assert len(fake_openai.requests) == 1


async def test_rate_limited_sends_are_retried_without_duplicates(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai) as h:
        h.fake.rate_limit(2)
        await h.text(ALICE, "busy network")
        assert await h.wait_answers(ALICE, 1) == ["echo: busy network"]
        assert h.fake.rate_limited == 2


async def test_webhook_on_the_api_server_without_its_key(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai, on_api=True) as h:
        assert h.adapter.site is None
        assert (await h.text(ALICE, "forged", signature="AAAA"))[0] == 403
        assert (await h.text(ALICE, "via the api port"))[0] == 200
        assert await h.wait_answers(ALICE, 1) == ["echo: via the api port"]


async def test_bad_credentials_are_one_clear_failure(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai, TWILIO_AUTH_TOKEN="wrong-token") as h:
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "TWILIO_AUTH_TOKEN" in failed[0][1]
        assert h.adapter.site is None


async def test_missing_webhook_url_is_a_clear_failure(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai, SMS_WEBHOOK_URL="") as h:
        [(state, detail)] = [s for s in h.states() if s[0] == "failed"]
        assert "SMS_WEBHOOK_URL" in detail


async def test_restart_answers_a_stored_message_once(hermes_home, fake_openai):
    """Stopped while the model was still writing: the stored message is answered after the
    next start, once, and Twilio's retry of it afterwards is dropped."""
    from tests.fakes.twilio_server import FakeTwilio

    fake_openai.enqueue(ScriptedReply(text="never finished", chunk_size=2, stall_after=1))

    def quick_drain(config):
        config.gateway.drain_timeout = 0.2

    async with FakeTwilio() as fake:
        async with sms_gateway(hermes_home, fake_openai, fake=fake, configure=quick_drain) as h:
            _, _, sid = await h.text(ALICE, "survive this")
            await h.recorder.event(ev.MessageReceived, lambda e: e.text == "survive this")
        # The shared shutdown path tells the sender the answer comes after the restart.
        [note] = fake.bodies(ALICE)
        assert note.endswith(RESTART_NOTE)
        async with sms_gateway(hermes_home, fake_openai, fake=fake) as h:
            assert (await h.wait_answers(ALICE, 2))[1:] == ["echo: survive this"]
            since = len(h.recorder.events)
            await h.text(ALICE, "survive this", sid=sid)
            await h.recorder.event(
                ev.MessageDropped, lambda e: e.reason == "duplicate", since=since
            )
            await h.text(ALICE, "and this")
            assert (await h.wait_answers(ALICE, 3))[1:] == ["echo: survive this", "echo: and this"]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["survive this", "survive this", "and this"]


async def test_hostile_bodies_change_nothing(hermes_home, fake_openai):
    import aiohttp

    async with sms_gateway(hermes_home, fake_openai) as h:
        url = h.fake.webhook_url
        async with aiohttp.ClientSession() as client:
            for body, want in ((b"\xff\xfe\x00", 400), (b"a=" + b"x" * 70_000, 413)):
                async with client.post(
                    url,
                    data=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ) as resp:
                    assert resp.status == want
            async with client.get(url) as resp:
                assert resp.status == 405
        # A signed form without a sender or MessageSid (a status callback) is no message.
        status, _, _ = await h.text("", "no sender")
        assert status == 200
        assert h.recorder.of(ev.MessageReceived) == []
        assert fake_openai.requests == []


async def test_a_used_home_restarts_without_double_answers(hermes_home, fake_openai, used_home):
    """On a home with a day of history on other platforms: SMS chats start, a restart keeps
    them, Twilio's retry after the restart is not answered again, nothing stored is lost."""
    from tests.fakes.twilio_server import FakeTwilio

    async with FakeTwilio() as fake:
        async with sms_gateway(hermes_home, fake_openai, fake=fake) as h:
            _, _, sid = await h.text(ALICE, "first life")
            assert await h.wait_answers(ALICE, 1) == ["echo: first life"]
        async with sms_gateway(hermes_home, fake_openai, fake=fake) as h:
            since = len(h.recorder.events)
            await h.text(ALICE, "first life", sid=sid)
            await h.recorder.event(
                ev.MessageDropped, lambda e: e.reason == "duplicate", since=since
            )
            await h.text(ALICE, "second life")
            assert await h.wait_answers(ALICE, 2) == ["echo: first life", "echo: second life"]
            store = h.runner.store
            total = 0
            for info in used_home.sessions:
                total += len(await store.get_messages(info.id))
            assert total == used_home.messages
            record = await store.get_active_session(f"sms:dm:{ALICE}")
            assert record is not None
            texts = [m.content for m in await store.get_messages(record.id)]
            assert texts == ["first life", "echo: first life", "second life", "echo: second life"]


async def test_a_stranger_paired_by_code_is_let_in(hermes_home, fake_openai):
    import re

    async with sms_gateway(hermes_home, fake_openai) as h:
        await h.text(MALLORY, "hello?")
        [offer] = await h.wait_answers(MALLORY, 1)
        code = re.search(r"code: ([A-Z0-9]{8})\b", offer)  # plain text: no backticks by SMS
        assert code, offer
        assert "`" not in offer
        assert h.gateway.pairing is not None
        await h.gateway.pairing.approve_code("sms", code[1])
        await h.fake.wait_for(lambda: len(h.fake.to(MALLORY)) >= 2)  # "you're in"
        await h.text(MALLORY, "now?")
        answers = await h.wait_answers(MALLORY, 3)
        assert answers[-1] == "echo: now?"
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["now?"]


async def test_mms_pictures_are_saved_only_from_twilio(hermes_home, fake_openai):
    import os

    async with sms_gateway(hermes_home, fake_openai) as h:
        data = os.urandom(300_000)
        url = h.fake.add_media(data, "image/jpeg")
        elsewhere = "http://127.0.0.1:9/evil.jpg"  # signed, but not Twilio's media host
        await h.text(ALICE, "look", media=[(url, "image/jpeg"), (elsewhere, "image/jpeg")])
        await h.wait_answers(ALICE, 1)
        saved = [p for p in (hermes_home / "media" / "sms").rglob("*") if p.is_file()]
        assert [p.read_bytes() == data for p in saved] == [True]
        content = fake_openai.requests[0]["messages"][-1]["content"]
        assert isinstance(content, list) and any(
            part.get("type") == "image_url" for part in content
        )


async def test_opt_out_keywords_are_twilios_not_the_agents(hermes_home, fake_openai):
    async with sms_gateway(hermes_home, fake_openai) as h:
        assert (await h.text(ALICE, "STOP"))[0] == 200
        assert (await h.text(ALICE, "START"))[0] == 200
        await h.text(ALICE, "real question")
        assert await h.wait_answers(ALICE, 1) == ["echo: real question"]
        assert [e.text for e in h.recorder.of(ev.MessageReceived)] == ["real question"]


async def test_a_webhook_on_a_failed_api_server_is_a_clear_failure(
    hermes_home, fake_openai, monkeypatch
):
    """The API server would carry the webhook but cannot start (no valid key): SMS says so,
    naming the way out, instead of showing connected while nothing listens."""
    from hermes_gateway.platforms import web_routes

    monkeypatch.setattr(web_routes, "API_SERVER_WAIT", 0.5)
    async with sms_gateway(
        hermes_home,
        fake_openai,
        API_SERVER_ENABLED="true",
        API_SERVER_PORT="0",
        SMS_WEBHOOK_PORT="0",
    ) as h:
        assert h.adapter.site is None
        await h.wait_state("failed")
        detail = h.states()[-1][1]
        assert "API server is not running" in detail and "SMS_WEBHOOK_PORT" in detail
