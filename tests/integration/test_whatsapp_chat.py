"""WhatsApp (Cloud API) end to end: the fake Graph API and signed notifications over real
sockets, the real gateway."""

from __future__ import annotations

import time

from hermes_gateway import events as ev
from hermes_gateway.runner.pipeline import RESTART_NOTE
from tests.fakes.openai_server import ScriptedReply
from tests.fakes.whatsapp_server import FakeWhatsApp
from tests.integration.whatsapp_harness import ALICE, BOB, MALLORY, whatsapp_gateway


async def test_the_subscription_handshake(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        assert await h.fake.handshake(h.fake.verify_token, "1158201444") == (200, "1158201444")
        assert (await h.fake.handshake("wrong-token", "1158201444"))[0] == 403
        assert (await h.fake.handshake(h.fake.verify_token, "1", mode="unsubscribe"))[0] == 403
        assert (await h.fake.handshake(h.fake.verify_token, ""))[0] == 403


async def test_a_message_is_read_and_answered_in_whatsapp_format(hermes_home, fake_openai):
    fake_openai.enqueue(
        ScriptedReply(
            text="## Plan\n**Bring** an *umbrella*, ~~or not~~, see [wx](https://wx.test)."
        )
    )
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        status, wamid = await h.send(ALICE, "will it rain?", name="Alice")
        assert status == 200
        assert await h.wait_texts(ALICE, 1) == [
            "*Plan*\n*Bring* an _umbrella_, ~or not~, see wx (https://wx.test)."
        ]
        # Read receipt with the typing indicator, on the user's message, before the answer.
        assert (wamid, True) in h.fake.reads
        assert fake_openai.requests[0]["messages"][-1]["content"] == "will it rain?"
        rt = h.runner.sessions[f"whatsapp:dm:{ALICE}"]
        assert (rt.source.user_id, rt.source.user_name) == (ALICE, "Alice")
        assert [s for s, _ in h.states()] == ["starting", "connected"]
        assert "+1 555-000-0000" in h.states()[-1][1]


async def test_each_user_is_its_own_session(hermes_home, fake_openai):
    async with whatsapp_gateway(
        hermes_home, fake_openai, WHATSAPP_CLOUD_ALLOWED_USERS=f"{ALICE},{BOB}"
    ) as h:
        await h.send(ALICE, "one")
        await h.send(BOB, "two")
        await h.wait_texts(ALICE, 1)
        await h.send(ALICE, "three")
        assert await h.wait_texts(ALICE, 2) == ["echo: one", "echo: three"]
        assert await h.wait_texts(BOB, 1) == ["echo: two"]
        assert set(h.runner.sessions) == {f"whatsapp:dm:{ALICE}", f"whatsapp:dm:{BOB}"}


async def test_a_stranger_never_reaches_the_agent(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        since = len(h.recorder.events)
        assert (await h.send(MALLORY, "let me in"))[0] == 200
        denied = await h.recorder.event(ev.AccessDenied, since=since)
        assert denied.platform == "whatsapp"
        assert fake_openai.requests == []
        await h.fake.wait_for(lambda: len(h.fake.texts(MALLORY)) == 1)
        assert "pair" in h.fake.texts(MALLORY)[0].lower()
        assert not any(m for m, _ in h.fake.reads)  # nobody read a stranger's message


async def test_forged_or_missing_signature_is_refused(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        forged = await h.send(ALICE, "forged", signature="sha256=" + "0" * 64)
        missing = await h.send(ALICE, "unsigned", sign=False)
        assert [forged[0], missing[0]] == [403, 403]
        assert h.adapter.refused == 2
        # Another number of the same app: signed, but not ours.
        assert (await h.send(ALICE, "other number", phone_number_id="999"))[0] == 200
        assert (await h.send(ALICE, "real"))[0] == 200
        assert await h.wait_texts(ALICE, 1) == ["echo: real"]
        assert [e.text for e in h.recorder.of(ev.MessageReceived)] == ["real"]
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["real"]


async def test_a_redelivered_notification_is_answered_once(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        _, wamid = await h.send(ALICE, "only once")
        assert await h.wait_texts(ALICE, 1) == ["echo: only once"]
        since = len(h.recorder.events)
        assert (await h.send(ALICE, "only once", wamid=wamid))[0] == 200
        await h.recorder.event(ev.MessageDropped, lambda e: e.reason == "duplicate", since=since)
        assert h.fake.texts(ALICE) == ["echo: only once"]
        assert len(fake_openai.requests) == 1


async def test_media_in_and_out(hermes_home, fake_openai):
    from hermes_gateway.agent.tools.boundary import workspace_for

    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        workspace = workspace_for(hermes_home, "whatsapp", f"whatsapp:dm:{ALICE}")
        workspace.mkdir(parents=True, exist_ok=True)
        report = workspace / "report.pdf"
        report.write_bytes(b"%PDF-1.4 the report")
        secret = hermes_home / ".env"
        secret.write_text("WHATSAPP_CLOUD_ACCESS_TOKEN=very-secret\n")
        fake_openai.enqueue(ScriptedReply(text=f"Here.\n\nMEDIA:{report}\nMEDIA:{secret}\n"))
        doc = h.fake.add_user_media(b"notes from alice", "text/plain", "notes.txt")
        await h.send(ALICE, "read this", media=("document", doc))
        await h.fake.wait_for(lambda: any(s.kind == "document" for s in h.fake.to(ALICE)))
        await h.runner.wait_idle(5)
        saved = list((hermes_home / "media" / "whatsapp").rglob("*"))
        assert any(p.is_file() and p.read_bytes() == b"notes from alice" for p in saved)
        [text] = h.fake.texts(ALICE)
        assert text == f"Here.\n\nMEDIA:{secret}"
        [document] = [s for s in h.fake.to(ALICE) if s.kind == "document"]
        assert document.content["filename"] == "report.pdf"
        assert h.fake.uploads[document.content["id"]][0] == b"%PDF-1.4 the report"
        assert not any(b"very-secret" in data for data, _, _ in h.fake.uploads.values())


async def test_outside_the_24_hour_window_nothing_is_sent_or_retried(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        # A message Meta delivers a day late: the window closed before the answer.
        since = len(h.recorder.events)
        await h.send(ALICE, "from yesterday", sent_at=time.time() - 25 * 3600)
        notice = await h.recorder.event(
            ev.Notice, lambda e: "could not be delivered" in e.text, since=since
        )
        assert notice.level == "error"
        assert h.fake.texts(ALICE) == [] and h.fake.refused_window == 0  # Meta never asked
        assert h.adapter.window_refusals == 1
        # Meta's own refusal (131047: our record says open, Meta's says closed): not retried.
        fake_openai.enqueue(ScriptedReply(text="late", hold_at=[0]))
        since = len(h.recorder.events)
        await h.send(ALICE, "now")
        await h.fake.wait_for(lambda: fake_openai.held == 1)
        h.fake.last_inbound[ALICE] = time.time() - 25 * 3600
        fake_openai.release()
        await h.recorder.event(ev.Notice, lambda e: "could not be delivered" in e.text, since=since)
        assert h.fake.refused_window == 1
        assert h.fake.texts(ALICE) == []
        # Once the user writes again, answers flow.
        await h.send(ALICE, "hello again")
        assert await h.wait_texts(ALICE, 1) == ["echo: hello again"]


async def test_rate_limits_back_off_and_deliver_once(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        h.fake.rate_limit(2, code=130429)
        h.fake.rate_limit(1, code=4)
        h.fake.rate_limit(1, code=80007)
        await h.send(ALICE, "busy")
        assert await h.wait_texts(ALICE, 1) == ["echo: busy"]
        assert h.fake.rate_limited == 4


async def test_rate_limits_are_not_retried_forever(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        h.fake.rate_limit(50, code=130429)
        since = len(h.recorder.events)
        await h.send(ALICE, "never")
        await h.recorder.event(
            ev.Notice, lambda e: "could not be delivered" in e.text, since=since, timeout=15
        )
        assert h.fake.texts(ALICE) == []
        assert h.fake.rate_limited == 6  # the first try and the rate gate's five retries


async def test_webhook_on_the_api_server(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai, on_api=True) as h:
        assert h.adapter.site is None
        assert (await h.fake.handshake(h.fake.verify_token, "42")) == (200, "42")
        assert (await h.send(ALICE, "forged", signature="sha256=00"))[0] == 403
        assert (await h.send(ALICE, "via the api port"))[0] == 200
        assert await h.wait_texts(ALICE, 1) == ["echo: via the api port"]


async def test_bad_token_and_missing_secret_are_clear_failures(hermes_home, fake_openai):
    async with whatsapp_gateway(
        hermes_home, fake_openai, WHATSAPP_CLOUD_ACCESS_TOKEN="EAAGwrong"
    ) as h:
        [(_, detail)] = [s for s in h.states() if s[0] == "failed"]
        assert "WHATSAPP_CLOUD_ACCESS_TOKEN" in detail
    async with whatsapp_gateway(hermes_home, fake_openai, WHATSAPP_CLOUD_APP_SECRET="") as h:
        [(_, detail)] = [s for s in h.states() if s[0] == "failed"]
        assert "WHATSAPP_CLOUD_APP_SECRET" in detail
    async with whatsapp_gateway(
        hermes_home, fake_openai, WHATSAPP_CLOUD_PHONE_NUMBER_ID="123"
    ) as h:
        [(_, detail)] = [s for s in h.states() if s[0] == "failed"]
        assert "WHATSAPP_CLOUD_PHONE_NUMBER_ID" in detail


async def test_restart_answers_once_and_meta_redelivery_is_dropped(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text="never finished", chunk_size=2, stall_after=1))

    def quick_drain(config):
        config.gateway.drain_timeout = 0.2

    async with FakeWhatsApp() as fake:
        async with whatsapp_gateway(
            hermes_home, fake_openai, fake=fake, configure=quick_drain
        ) as h:
            _, wamid = await h.send(ALICE, "survive this")
            await h.recorder.event(ev.MessageReceived, lambda e: e.text == "survive this")
        [note] = fake.texts(ALICE)
        assert note.endswith(RESTART_NOTE)
        async with whatsapp_gateway(hermes_home, fake_openai, fake=fake) as h:
            assert (await h.wait_texts(ALICE, 2))[1:] == ["echo: survive this"]
            since = len(h.recorder.events)
            await h.send(ALICE, "survive this", wamid=wamid)
            await h.recorder.event(
                ev.MessageDropped, lambda e: e.reason == "duplicate", since=since
            )
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["survive this", "survive this"]


async def test_a_failed_status_is_acknowledged(hermes_home, fake_openai):
    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        payload = h.fake.notification(
            ALICE,
            {},
            statuses=[
                {
                    "id": "wamid.X",
                    "status": "failed",
                    "timestamp": str(int(time.time())),
                    "recipient_id": ALICE,
                    "errors": [{"code": 131047, "title": "Re-engagement message"}],
                }
            ],
        )
        assert await h.fake.post_notification(payload) == 200
        assert await h.fake.post_notification({"object": "page"}) == 200
        assert h.recorder.of(ev.MessageReceived) == []


async def test_a_used_home_restarts_without_double_answers(hermes_home, fake_openai, used_home):
    async with FakeWhatsApp() as fake:
        async with whatsapp_gateway(hermes_home, fake_openai, fake=fake) as h:
            _, wamid = await h.send(ALICE, "first life")
            assert await h.wait_texts(ALICE, 1) == ["echo: first life"]
        async with whatsapp_gateway(hermes_home, fake_openai, fake=fake) as h:
            since = len(h.recorder.events)
            await h.send(ALICE, "first life", wamid=wamid)  # Meta's redelivery
            await h.recorder.event(
                ev.MessageDropped, lambda e: e.reason == "duplicate", since=since
            )
            await h.send(ALICE, "second life")
            assert await h.wait_texts(ALICE, 2) == ["echo: first life", "echo: second life"]
            total = 0
            for info in used_home.sessions:
                total += len(await h.runner.store.get_messages(info.id))
            assert total == used_home.messages


async def test_a_stranger_paired_by_code_is_let_in(hermes_home, fake_openai):
    import re

    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        await h.send(MALLORY, "hello?")
        [offer] = await h.wait_texts(MALLORY, 1)
        code = re.search(r"`([A-Z0-9]{8})`", offer)
        assert code, offer
        assert h.gateway.pairing is not None
        await h.gateway.pairing.approve_code("whatsapp", code[1])
        await h.fake.wait_for(lambda: len(h.fake.texts(MALLORY)) >= 2)
        await h.send(MALLORY, "now?")
        assert (await h.wait_texts(MALLORY, 3))[-1] == "echo: now?"
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["now?"]


async def test_large_media_arrive_whole(hermes_home, fake_openai):
    """A download larger than one socket read is read to its end, not cut at the first chunk."""
    import os

    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        data = os.urandom(3 * 1024 * 1024 + 17)
        video = h.fake.add_user_media(data, "video/mp4", "")
        await h.send(ALICE, "watch", media=("video", video))
        await h.wait_texts(ALICE, 1)
        saved = [p for p in (hermes_home / "media" / "whatsapp").rglob("*") if p.is_file()]
        assert [p.read_bytes() == data for p in saved] == [True]


async def test_the_window_is_remembered_across_a_restart(hermes_home, fake_openai):
    """A delivery after a restart (a cron result) to a user whose window closed is refused
    without asking Meta: the window's start was kept in the store."""
    import pytest

    from hermes_gateway.models import SessionSource
    from hermes_gateway.platforms.whatsapp.graph import WindowClosed

    async with FakeWhatsApp() as fake:
        async with whatsapp_gateway(hermes_home, fake_openai, fake=fake) as h:
            since = len(h.recorder.events)
            await h.send(ALICE, "old question", sent_at=time.time() - 25 * 3600)
            await h.recorder.event(
                ev.Notice, lambda e: "could not be delivered" in e.text, since=since
            )
        async with whatsapp_gateway(hermes_home, fake_openai, fake=fake) as h:
            source = SessionSource(platform="whatsapp", chat_id=ALICE, user_id=ALICE)
            with pytest.raises(WindowClosed, match="24-hour"):
                await h.adapter.send(source, "the nightly report")
            assert fake.refused_window == 0 and fake.texts(ALICE) == []
            await h.send(ALICE, "hi again")  # the user writes: the window opens
            assert await h.wait_texts(ALICE, 1) == ["echo: hi again"]
            await h.adapter.send(source, "the nightly report")
            assert fake.texts(ALICE) == ["echo: hi again", "the nightly report"]


async def test_hostile_bodies_change_nothing(hermes_home, fake_openai):
    import hashlib
    import hmac

    import aiohttp

    async with whatsapp_gateway(hermes_home, fake_openai) as h:
        secret = h.fake.app_secret.encode()

        def signed(body: bytes) -> dict[str, str]:
            digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
            return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}

        cases = [
            (b"not json", 400),
            (b"[1, 2, 3]", 400),
            (b'{"object": "whatsapp_business_account", "entry": [{"changes": "x"}]}', 200),
            (
                b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": '
                b'"messages", "value": {"metadata": {"phone_number_id": "%s"}, "messages": '
                b'[{"from": "", "id": "", "type": "text"}, {"id": 5}]}}]}]}'
                % h.fake.phone_number_id.encode(),
                200,
            ),
            (b"{" + b" " * (3 * 1024 * 1024) + b"}", 413),
        ]
        async with aiohttp.ClientSession() as http:
            for body, want in cases:
                async with http.post(h.fake.webhook_url, data=body, headers=signed(body)) as resp:
                    assert resp.status == want, body[:80]
        assert h.recorder.of(ev.MessageReceived) == []
        assert fake_openai.requests == []
        assert (await h.send(ALICE, "still fine"))[0] == 200
        assert await h.wait_texts(ALICE, 1) == ["echo: still fine"]
