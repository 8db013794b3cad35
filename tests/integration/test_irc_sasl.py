"""SASL PLAIN and IRCv3 message tags, against the fake CAP/SASL server (ngircd has no SASL)."""

from __future__ import annotations

from tests.fakes.irc_sasl_server import FakeSaslIrc
from tests.integration.irc_harness import BOT, irc_gateway


async def test_sasl_login_then_a_tagged_private_message_is_answered(hermes_home, fake_openai):
    async with (
        FakeSaslIrc({"hermes": "right"}) as server,
        irc_gateway(
            hermes_home,
            fake_openai,
            server,
            IRC_CHANNEL="",
            IRC_SASL_USERNAME="hermes",
            IRC_SASL_PASSWORD="right",
        ) as h,
    ):
        assert server.logins == ["hermes"]
        sent = [line.split(" ")[0] for line in server.received]
        assert sent.index("CAP") < sent.index("AUTHENTICATE") < len(sent)
        assert "CAP END" in server.received
        await server.deliver(
            f"@msgid=abc123;time=2026-12-02T00:00:00Z :alice!a@h PRIVMSG {BOT} :hi"
        )
        replies = await server.wait_received(lambda line: line.startswith("PRIVMSG alice "))
        assert replies == ["PRIVMSG alice :echo: hi"]
        await h.runner.wait_idle(5)
        assert [r["messages"][-1]["content"] for r in fake_openai.requests] == ["hi"]


async def test_refused_sasl_login_is_one_clear_failure(hermes_home, fake_openai):
    async with (
        FakeSaslIrc({"hermes": "right"}) as server,
        irc_gateway(
            hermes_home,
            fake_openai,
            server,
            IRC_CHANNEL="",
            IRC_SASL_USERNAME="hermes",
            IRC_SASL_PASSWORD="wrong-password",
            wait_connected=False,
        ) as h,
    ):
        await h.wait_state("failed")
        failed = [s for s in h.states() if s[0] == "failed"]
        assert len(failed) == 1
        assert "IRC_SASL_PASSWORD" in failed[0][1] and "wrong-password" not in failed[0][1]
        assert server.failures == 1 and server.logins == []
        assert not [s for s in h.states() if s[0] == "reconnecting"]


async def test_a_server_that_stops_answering_ping_is_left_and_reconnected(hermes_home, fake_openai):
    def quick_ping(config):
        config.platforms.irc.ping_interval = 0.3

    async with (
        FakeSaslIrc({}) as server,
        irc_gateway(hermes_home, fake_openai, server, IRC_CHANNEL="", configure=quick_ping) as h,
    ):
        # The fake never answers our PING: after two quiet intervals the link is dropped.
        await h.recorder.wait_for(
            lambda: any(s[0] == "reconnecting" and "no PONG" in s[1] for s in h.states()), 10
        )
        assert any(line == "PING hermes" for line in server.received)
        await h.recorder.wait_for(lambda: h.adapter.connections >= 2, 10)
        assert server.welcomes >= 2
