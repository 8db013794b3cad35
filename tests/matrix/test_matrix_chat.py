"""Matrix against a real Synapse: DMs, rooms and mentions, threads, streaming by edits."""

from __future__ import annotations

from hermes_gateway import events as ev
from tests.fakes.openai_server import ScriptedReply
from tests.matrix.conftest import MATRIX_TESTS
from tests.matrix.harness import matrix_gateway

pytestmark = MATRIX_TESTS


async def test_a_dm_is_answered_with_the_exact_text(hermes_home, fake_openai, synapse):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        await h.say(room, "hello there")
        assert await h.wait_answers(room, 1) == ["echo: hello there"]
        [rt] = h.runner.sessions.values()
        assert rt.record.session_key.startswith("matrix:dm:")
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["hello there"]


async def test_a_room_answers_a_mention_in_a_thread_and_ignores_the_rest(
    hermes_home, fake_openai, synapse
):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.room()
        since = len(h.recorder.events)
        await h.say(room, "just chatting, not for the bot")
        dropped = await h.recorder.event(
            ev.MessageDropped, lambda e: e.reason == "not_mentioned", since=since, timeout=10
        )
        assert dropped.platform == "matrix"
        mention = await h.say(room, f"{h.bot_id} what is up", mentions=[h.bot_id])
        # auto_thread (Hermes' default): the answer opens a thread under the mention
        assert await h.wait_answers(room, 1, thread=mention) == ["echo: what is up"]
        assert await h.shown(room) == []  # nothing in the room's main timeline
        # the thread is followed: no mention needed there, and it is one session
        await h.say(room, "and more", thread=mention)
        assert await h.wait_answers(room, 2, thread=mention) == [
            "echo: what is up",
            "echo: and more",
        ]
        keys = {rt.record.session_key for rt in h.runner.sessions.values()}
        assert len(keys) == 1 and next(iter(keys)).startswith("matrix:thread:")
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["what is up", "and more"]


async def test_a_localpart_mention_without_threads_answers_in_the_room(
    hermes_home, fake_openai, synapse
):
    async with matrix_gateway(hermes_home, fake_openai, synapse, MATRIX_AUTO_THREAD="false") as h:
        room = await h.room()
        local = h.bot_id.split(":")[0]
        await h.say(room, f"hey {local} how are you")
        assert await h.wait_answers(room, 1) == ["echo: hey how are you"]
        # a reply to a message is its own session, answered in a thread under it
        question = await h.say(room, f"{local} question one")
        assert await h.wait_answers(room, 2) == ["echo: hey how are you", "echo: question one"]
        await h.say(room, f"{local} about that", reply_to=question)
        assert await h.wait_answers(room, 1, thread=question) == ["echo: about that"]
        keys = sorted(rt.record.session_key for rt in h.runner.sessions.values())
        assert [k.split(":")[1] for k in keys] == ["group", "thread"]


async def test_require_mention_off_answers_every_room_message(hermes_home, fake_openai, synapse):
    async with matrix_gateway(
        hermes_home, fake_openai, synapse, MATRIX_REQUIRE_MENTION="false"
    ) as h:
        room = await h.room()
        await h.say(room, "no mention needed")
        assert await h.wait_answers(room, 1) == ["echo: no mention needed"]


async def test_a_streamed_answer_ends_as_one_message_with_the_exact_text(
    hermes_home, fake_openai, synapse
):
    text = "The answer, streamed in small pieces: " + " ".join(f"w{i}" for i in range(120))
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=6, delay=0.01))
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        await h.say(room, "stream please")
        assert await h.wait_answers(room, 1) == [text]
        events = await synapse.messages(h.people.alice, room)
        mine = [e for e in events if e["sender"] == h.bot_id and e["type"] == "m.room.message"]
        edits = [
            e for e in mine if e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
        ]
        assert len(mine) - len(edits) == 1  # one message, edited as it grew
        assert edits, "the answer was streamed by edits"
        final = edits[-1]["content"]["m.new_content"]
        assert final["body"] == text
        assert final["format"] == "org.matrix.custom.html" and "<p>" in final["formatted_body"]


async def test_markdown_goes_out_as_html_with_the_plain_body(hermes_home, fake_openai, synapse):
    text = "**bold** and `code`\n\n```python\nprint('<hi>')\n```"
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=400))
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        await h.say(room, "format")
        assert await h.wait_answers(room, 1) == [text]
        events = await synapse.messages(h.people.alice, room)
        mine = [e for e in events if e["sender"] == h.bot_id and e["type"] == "m.room.message"]
        [first] = [e for e in mine if "m.relates_to" not in e["content"]]
        content = first["content"]
        last = mine[-1]["content"]
        html = last.get("m.new_content", content)["formatted_body"]
        assert "<strong>bold</strong>" in html and "<code>code</code>" in html
        assert "&lt;hi&gt;" in html and "<pre>" in html


async def test_a_long_answer_is_chunked_with_fences_intact(hermes_home, fake_openai, synapse):
    code = "\n".join(f"line_{i} = {i}" for i in range(200))
    text = f"Here:\n```python\n{code}\n```\nDone."
    fake_openai.enqueue(ScriptedReply(text=text, chunk_size=500))
    async with matrix_gateway(
        hermes_home, fake_openai, synapse, MATRIX_MAX_MESSAGE_LENGTH="1000"
    ) as h:
        room = await h.dm()
        await h.say(room, "long")
        await h.wait_answers(room, 3)
        shown = await h.shown(room)
        assert len(shown) >= 3 and all(len(s.encode()) <= 1000 for s in shown)
        assert all(s.count("```") % 2 == 0 for s in shown)
        joined = "".join(shown)
        assert all(f"line_{i} = {i}" in joined for i in range(200))


async def test_an_unauthorised_user_never_reaches_the_agent(hermes_home, fake_openai, synapse):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.room()
        since = len(h.recorder.events)
        await h.say(room, f"{h.bot_id} let me in", user=h.people.bob, mentions=[h.bot_id])
        denied = await h.recorder.event(ev.AccessDenied, since=since, timeout=10)
        assert denied.platform == "matrix"
        # bob cannot bring the bot into a room of his
        other = await synapse.create_room(h.people.bob, invite=[h.bot_id], name="bobs")
        hi = await h.say(room, f"{h.bot_id} hi", mentions=[h.bot_id])  # alice, after bob
        assert await h.wait_answers(room, 1, thread=hi) == ["echo: hi"]
        members = await synapse.call(
            "GET", f"/_matrix/client/v3/rooms/{other}/joined_members", h.people.bob.token
        )
        assert h.bot_id not in members["joined"]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["hi"]


async def test_a_stranger_gets_a_pairing_code_in_a_dm_and_is_let_in_once_approved(
    hermes_home, fake_openai, synapse
):
    import re

    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        dm = await h.dm(h.people.bob)  # a stranger's direct chat is joined: pairing is on
        await h.say(dm, "hello?", user=h.people.bob)
        [offer] = await h.wait_answers(dm, 1)
        code = re.search(r"`([A-Z0-9]{8})`", offer)
        assert code, offer
        assert h.gateway.pairing is not None
        await h.gateway.pairing.approve_code("matrix", code[1])
        await h.wait_answers(dm, 2)  # "you're in"
        await h.say(dm, "now?", user=h.people.bob)
        answers = await h.wait_answers(dm, 3)
        assert answers[-1] == "echo: now?"
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["now?"]


async def test_with_pairing_off_a_strangers_dm_invite_is_refused(hermes_home, fake_openai, synapse):
    async with matrix_gateway(
        hermes_home,
        fake_openai,
        synapse,
        configure=lambda c: setattr(c.platforms.matrix, "unauthorized_dm", "ignore"),
    ) as h:
        bobs = await synapse.create_room(h.people.bob, invite=[h.bot_id], direct=True)
        dm = await h.dm()  # alice's invite, after bob's: taken once bob's was decided
        await h.say(dm, "ping")
        assert await h.wait_answers(dm, 1) == ["echo: ping"]
        members = await synapse.call(
            "GET", f"/_matrix/client/v3/rooms/{bobs}/joined_members", h.people.bob.token
        )
        assert h.bot_id not in members["joined"]


async def test_commands_typed_with_a_slash_or_a_bang(hermes_home, fake_openai, synapse):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        await h.say(room, "/help")
        [help_text] = await h.wait_answers(room, 1)
        assert "/reset" in help_text or "/new" in help_text
        await h.say(room, "!help")
        assert len(await h.wait_answers(room, 2)) == 2
        await h.say(room, "!wow that is great")
        answers = await h.wait_answers(room, 3)
        assert answers[-1] == "echo: !wow that is great"
        assert fake_openai.requests and len(fake_openai.requests) == 1


async def test_hostile_events_change_nothing_and_the_bot_keeps_answering(
    hermes_home, fake_openai, synapse
):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        alice = h.people.alice
        for content in (
            {"msgtype": "m.text"},  # no body
            {"msgtype": "m.text", "body": 42, "m.relates_to": "not an object"},
            {"msgtype": "m.text", "body": "x", "m.mentions": {"user_ids": "all"}},
            {"msgtype": "m.text", "body": "x", "m.relates_to": {"rel_type": "m.thread"}},
            {"msgtype": "m.notice", "body": "a bot talking"},
            {"msgtype": "m.image", "body": "pic", "url": "https://example.org/x.png"},
            {"msgtype": "m.file", "body": "f", "url": "mxc://localhost/doesnotexist"},
            {"msgtype": "m.text", "body": "edit", "m.relates_to": {"rel_type": "m.replace"}},
            {"body": "no msgtype"},
        ):  # what Synapse itself refuses never reaches the bot; the rest must not hurt it
            await synapse.call(
                "PUT",
                f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{id(content)}x",
                alice.token,
                content,
                expect=None,
            )
        await synapse.send(alice, room, {"msgtype": "m.text", "body": "y" * 60_000})
        await h.say(room, "still there?")
        answers = await h.wait_answers(room, 1, timeout=20)
        await h.runner.wait_idle(10)
        answers = await h.shown(room)
        assert answers[-1] == "echo: still there?"
        assert h.adapter.link.state == "connected"


async def test_a_message_written_before_the_bot_joined_is_answered_but_history_is_not(
    hermes_home, fake_openai, synapse
):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        alice = h.people.alice
        room = await synapse.create_room(alice, direct=True)
        await h.say(room, "old history, before the bot was asked in")
        await synapse.invite(alice, room, h.bot_id)
        await h.say(room, "hi, are you there?")  # right away, maybe before the bot joined
        await h.wait_joined(room)
        assert await h.wait_answers(room, 1) == ["echo: hi, are you there?"]
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["hi, are you there?"]


async def test_deliveries_to_matrix_go_to_the_home_room(hermes_home, fake_openai, synapse):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.room("home")
        h.adapter.config.platforms.matrix.home_channel = room  # MATRIX_HOME_ROOM, a room id
        [outcome] = await h.runner.router.deliver("matrix", "**cron** says hi")
        assert outcome.ok, outcome.error
        assert await h.wait_answers(room, 1) == ["**cron** says hi"]


async def test_typing_shows_while_a_slow_answer_is_written_and_ends_with_it(
    hermes_home, fake_openai, synapse
):
    fake_openai.enqueue(ScriptedReply(text="slow but sure", first_token_delay=1.5))
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        alice = h.people.alice
        since = (await synapse.call("GET", "/_matrix/client/v3/sync?timeout=0", alice.token))[
            "next_batch"
        ]
        await h.say(room, "take your time")
        seen: list[list[str]] = []
        for _ in range(20):  # until "typing" was shown and then withdrawn
            if [h.bot_id] in seen and seen[-1] == []:
                break
            data = await synapse.call(
                "GET", f"/_matrix/client/v3/sync?timeout=5000&since={since}", alice.token
            )
            since = data["next_batch"]
            joined = data.get("rooms", {}).get("join", {}).get(room, {})
            for e in joined.get("ephemeral", {}).get("events", []):
                if e["type"] == "m.typing":
                    seen.append(list(e["content"]["user_ids"]))
        assert [h.bot_id] in seen and seen[-1] == [], seen
        assert await h.wait_answers(room, 1) == ["slow but sure"]
