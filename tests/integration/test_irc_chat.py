"""IRC against a real ngircd: private messages, channel mentions, access, the 512-byte line,
a server killed and started again, a flood of questions, TLS and a refused password."""

from __future__ import annotations

import asyncio

import pytest

from hermes_gateway import events as ev
from tests.fakes.openai_server import ScriptedReply
from tests.integration.irc_harness import BOT, CHANNEL, IrcUser, irc_gateway, needs_ngircd
from tests.integration.irc_server import Ngircd

pytestmark = needs_ngircd


def asked(fake_openai) -> list[str]:
    return [r["messages"][-1]["content"] for r in fake_openai.requests]


async def test_private_message_and_channel_mention_answered_with_exact_text(
    hermes_home, fake_openai, tmp_path
):
    async with (
        Ngircd(tmp_path / "irc") as server,
        irc_gateway(hermes_home, fake_openai, server) as h,
    ):
        alice = await h.user("alice")
        await alice.say(BOT, "hello in private")
        assert await alice.wait_bot_lines(1) == ["echo: hello in private"]

        await alice.say(CHANNEL, f"{BOT}: what time is it?")
        assert await alice.wait_bot_lines(1, CHANNEL) == ["echo: what time is it?"]

        # Not addressed: handed over as not mentioned, dropped by the runner, never asked.
        since = len(h.recorder.events)
        await alice.say(CHANNEL, "just chatting, hermes is great")
        dropped = await h.recorder.event(ev.MessageDropped, since=since)
        assert dropped.reason == "not_mentioned"
        assert dropped.session_key == f"irc:channel:{CHANNEL}:@alice"  # per member
        assert asked(fake_openai) == ["hello in private", "what time is it?"]
        assert len(alice.from_bot(CHANNEL)) == 1

        # One session per private peer, one per member of a channel (group_sessions_per_user).
        keys = set(h.runner.sessions)
        assert "irc:dm:alice" in keys and f"irc:channel:{CHANNEL}:@alice" in keys


async def test_unauthorised_nick_never_reaches_the_agent(hermes_home, fake_openai, tmp_path):
    async with (
        Ngircd(tmp_path / "irc") as server,
        irc_gateway(hermes_home, fake_openai, server) as h,
    ):
        mallory = await h.user("mallory")
        since = len(h.recorder.events)
        await mallory.say(CHANNEL, f"{BOT}, run rm -rf /")
        denied = await h.recorder.event(ev.AccessDenied, since=since)
        assert denied.session_key == f"irc:channel:{CHANNEL}:@mallory"
        since = len(h.recorder.events)
        await mallory.say(BOT, "let me in")
        await h.recorder.event(ev.AccessDenied, since=since)
        assert fake_openai.requests == []
        # A stranger's private message gets a pairing code, nothing from the agent.
        lines = await mallory.wait_bot_lines(1)
        assert "echo" not in " ".join(lines)
        assert not mallory.from_bot(CHANNEL)


async def test_long_multibyte_answer_fits_512_byte_lines_and_reassembles(
    hermes_home, fake_openai, tmp_path
):
    long_word = "ü€😀ñ" * 400  # 1,600 characters, 4,400 bytes, no space to cut at
    words = " ".join(f"wörd{i}→" for i in range(150))
    fake_openai.enqueue(ScriptedReply(text=f"{long_word}\n\n{words}\nshort last line"))
    async with (
        Ngircd(tmp_path / "irc") as server,
        irc_gateway(hermes_home, fake_openai, server) as h,
    ):
        alice = await h.user("alice")
        await alice.say(BOT, "say something long")
        await h.runner.wait_idle(10)
        await alice.wait(lambda: any(r.params[-1] == "short last line" for r in alice.from_bot()))
        got = alice.from_bot()
        for line in got:
            assert len(line.raw) <= 512, line.raw
            line.raw.decode("utf-8")  # every line whole: no character cut in two
        texts = [r.params[-1] for r in got]
        assert texts[-1] == "short last line"
        first = [t for t in texts if set(t) <= set("ü€😀ñ")]
        assert len(first) >= 8 and "".join(first) == long_word
        rest = texts[len(first) : -1]
        assert len(rest) >= 3 and " ".join(rest) == words


async def test_server_killed_and_restarted_reconnects_rejoins_without_duplicates(
    hermes_home, fake_openai, tmp_path
):
    async with (
        Ngircd(tmp_path / "irc") as server,
        irc_gateway(hermes_home, fake_openai, server) as h,
    ):
        alice = await h.user("alice")
        await alice.say(BOT, "before the crash")
        assert await alice.wait_bot_lines(1) == ["echo: before the crash"]
        await alice.close()
        h.users.clear()

        await server.kill()
        await h.wait_state("reconnecting")
        await server.start()
        await h.wait_state("connected")
        assert h.adapter.connections == 2
        assert CHANNEL in h.states()[-1][1]  # joined again

        alice = await h.user("alice")
        await alice.say(CHANNEL, f"{BOT}: after the crash")
        assert await alice.wait_bot_lines(1, CHANNEL) == ["echo: after the crash"]
        await alice.say(BOT, "and in private")
        assert await alice.wait_bot_lines(1) == ["echo: and in private"]
        await h.runner.wait_idle(5)
        assert asked(fake_openai) == ["before the crash", "after the crash", "and in private"]
        retries = [s for s in h.states() if s[0] == "reconnecting"]
        assert retries and any(s[2] for s in retries)


@pytest.mark.slow
@pytest.mark.timeout(240)  # ngircd paces the fifty registrations from one address
async def test_flood_of_fifty_questions_all_answered_once_without_a_kick(
    hermes_home, fake_openai, tmp_path
):
    nicks = [f"user{i}" for i in range(50)]
    async with (
        Ngircd(tmp_path / "irc") as server,
        irc_gateway(hermes_home, fake_openai, server, IRC_ALLOWED_USERS=",".join(nicks)) as h,
    ):
        # Ten connects at a time: fifty at once overflow ngircd's accept queue on a busy machine.
        gate = asyncio.Semaphore(10)

        async def connect(nick: str) -> IrcUser:
            async with gate:
                return await h.user(nick, join=False)

        users = await asyncio.gather(*(connect(n) for n in nicks))
        await asyncio.gather(*(u.say(BOT, f"question from {u.nick}") for u in users))
        for u in users:
            assert await u.wait_bot_lines(1, timeout=60) == [f"echo: question from {u.nick}"]
        await h.runner.wait_idle(10)
        assert sorted(asked(fake_openai)) == sorted(f"question from {n}" for n in nicks)
        # The connection held: no flood kick, no reconnect, one registration.
        assert not [s for s in h.states() if s[0] in ("reconnecting", "failed")]
        assert h.adapter.connections == 1
        assert h.adapter.bucket.waited > 0  # the bucket paced the answers
        assert all(len(u.from_bot()) == 1 for u in users)


async def test_tls_connection_answers(hermes_home, fake_openai, tmp_path):
    async with Ngircd(tmp_path / "irc", tls=True) as server:
        assert server.cert is not None
        async with irc_gateway(
            hermes_home,
            fake_openai,
            server,
            IRC_USE_TLS="true",
            IRC_PORT=str(server.tls_port),
            configure=lambda c: setattr(c.platforms.irc, "tls_ca_file", str(server.cert)),
        ) as h:
            alice = await h.user("alice")
            await alice.say(BOT, "over tls")
            assert await alice.wait_bot_lines(1) == ["echo: over tls"]


async def test_untrusted_certificate_is_not_accepted(hermes_home, fake_openai, tmp_path):
    async with (
        Ngircd(tmp_path / "irc", tls=True) as server,
        irc_gateway(
            hermes_home,
            fake_openai,
            server,
            IRC_USE_TLS="true",
            IRC_PORT=str(server.tls_port),
            wait_connected=False,
        ) as h,
    ):
        await h.recorder.wait_for(lambda: any(s[0] == "reconnecting" for s in h.states()), 10)
        detail = next(s[1] for s in h.states() if s[0] == "reconnecting")
        assert "TLS" in detail and "certificate" in detail.lower()
        assert h.adapter.connections == 0


async def test_wrong_server_password_is_one_clear_failure(hermes_home, fake_openai, tmp_path):
    async with (
        Ngircd(tmp_path / "irc", password="s3cret") as server,
        irc_gateway(
            hermes_home, fake_openai, server, IRC_SERVER_PASSWORD="wrong", wait_connected=False
        ) as h,
    ):
        await h.wait_state("failed")
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "IRC_SERVER_PASSWORD" in failed[0][1] and "wrong" not in failed[0][1]
        assert not [s for s in h.states() if s[0] == "reconnecting"]


async def test_right_server_password_connects(hermes_home, fake_openai, tmp_path):
    async with (
        Ngircd(tmp_path / "irc", password="s3cret") as server,
        irc_gateway(hermes_home, fake_openai, server, IRC_SERVER_PASSWORD="s3cret") as h,
    ):
        alice = await h.user("alice")
        await alice.say(BOT, "with a password")
        assert await alice.wait_bot_lines(1) == ["echo: with a password"]


async def test_nick_in_use_takes_an_alternative_and_still_answers_mentions(
    hermes_home, fake_openai, tmp_path
):
    async with Ngircd(tmp_path / "irc") as server:
        from tests.integration.irc_harness import IrcUser

        squatter = await IrcUser(BOT, server.port).connect()
        try:
            async with irc_gateway(hermes_home, fake_openai, server) as h:
                assert h.adapter.inbound.nick == f"{BOT}_"
                alice = await h.user("alice")
                await alice.say(CHANNEL, f"{BOT}_: hi there")
                assert await alice.wait_bot_lines(1, CHANNEL) == ["echo: hi there"]
        finally:
            await squatter.close()


async def test_restart_on_a_used_home_keeps_the_session_and_answers_once(
    used_home, fake_openai, tmp_path
):
    async with Ngircd(tmp_path / "irc") as server:
        async with irc_gateway(used_home.home_path, fake_openai, server) as h:
            alice = await h.user("alice")
            await alice.say(BOT, "first run")
            assert await alice.wait_bot_lines(1) == ["echo: first run"]
            await h.runner.wait_idle(5)
            first_id = h.runner.sessions["irc:dm:alice"].record.id
        async with irc_gateway(used_home.home_path, fake_openai, server) as h:
            alice = await h.user("alice")
            await alice.say(BOT, "second run")
            assert await alice.wait_bot_lines(1) == ["echo: second run"]
            await h.runner.wait_idle(5)
            record = h.runner.sessions["irc:dm:alice"].record
            assert record.id == first_id
            said = [
                m.content for m in await h.gateway.store.get_messages(record.id) if m.role == "user"
            ]
            assert said == ["first run", "second run"]
        assert asked(fake_openai)[-2:] == ["first run", "second run"]
        assert asked(fake_openai).count("first run") == 1


async def test_model_output_cannot_inject_irc_commands(hermes_home, fake_openai, tmp_path):
    fake_openai.enqueue(ScriptedReply(text="fine\r\nJOIN #evil\r\nQUIT :pwned\n\x01VERSION\x01"))
    async with (
        Ngircd(tmp_path / "irc") as server,
        irc_gateway(hermes_home, fake_openai, server) as h,
    ):
        alice = await h.user("alice")
        await alice.say(BOT, "please misbehave")
        assert await alice.wait_bot_lines(4) == ["fine", "JOIN #evil", "QUIT :pwned", "VERSION"]
        await h.runner.wait_idle(5)
        assert h.adapter.joined == {CHANNEL} and h.adapter.connections == 1
        assert h.states()[-1][0] == "connected"
