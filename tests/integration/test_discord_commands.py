"""Slash commands: the shared registry published to Discord, and interactions run through it.

Discord shows only commands registered with its API, so the sync payload is checked against
Discord's rules; an invocation must be acknowledged within 3 s, so the adapter defers it
("thinking...") and replaces that with the command's reply from the runner.
"""

from __future__ import annotations

import re

from hermes_gateway.commands.registry import CommandContext, CommandResult, CommandSpec
from hermes_gateway.delivery import split_message
from hermes_gateway.platforms.discord.commands import command_payload, interaction_command_text
from tests.fakes.openai_server import ScriptedReply
from tests.integration.test_discord_harness import (
    ALICE,
    BOB,
    CHANNEL,
    DM_ALICE,
    DM_BOB,
    GUILD,
    discord_gateway,
)


async def test_registry_is_synced_as_application_commands(hermes_home, fake_openai):
    async with discord_gateway(hermes_home, fake_openai) as h:
        # The fake records the request before the adapter reads the reply: wait for both.
        await h.fake.wait_for(lambda: bool(h.fake.commands_payloads and h.adapter.synced_commands))
        payload = h.fake.commands_payloads[0]
        # A reconnect under load may sync again: always the same list.
        assert all(p == payload for p in h.fake.commands_payloads)
        by_name = {c["name"]: c for c in payload}
        expected = {s.name for s in h.runner.commands.specs("discord")}
        assert set(by_name) == expected and "quit" not in by_name  # local-only stays local
        for command in payload:
            assert re.fullmatch(r"[-_a-z0-9]{1,32}", command["name"]), command["name"]
            assert 1 <= len(command["description"]) <= 100
            assert command["type"] == 1
        for spec in h.runner.commands.specs("discord"):
            options = by_name[spec.name].get("options", [])
            if spec.args_hint:
                assert options == [
                    {"type": 3, "name": "args", "description": spec.args_hint, "required": False}
                ]
            else:
                assert options == []
        assert h.adapter.synced_commands == payload


async def test_slash_command_is_deferred_then_answered_by_the_runner(hermes_home, fake_openai):
    async with discord_gateway(hermes_home, fake_openai) as h:
        record = await h.fake.inject_interaction(
            "title", "Sprint review", user_id=ALICE, channel_id=DM_ALICE
        )
        await h.fake.wait_for(lambda: bool(record.original))
        assert record.callback_types == [5]  # deferred: "hermes-bot is thinking..."
        assert record.shown == "Title set to “Sprint review”."
        rt = h.runner.sessions[f"discord:dm:{DM_ALICE}"]
        assert rt.record.title == "Sprint review"
        # In a guild channel the command is addressed to the bot: no mention needed.
        other = await h.fake.inject_interaction(
            "help", None, user_id=ALICE, channel_id=CHANNEL, guild_id=GUILD
        )
        await h.fake.wait_for(lambda: bool(other.original))
        assert "/new" in other.shown
        assert h.answers(DM_ALICE) == [] and h.answers(CHANNEL) == []
        assert fake_openai.requests == []


async def test_long_command_reply_continues_in_followups(hermes_home, fake_openai):
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 30 for i in range(12))

    async def long(ctx: CommandContext) -> CommandResult:
        return CommandResult(text)

    async with discord_gateway(hermes_home, fake_openai) as h:
        h.runner.commands.register(CommandSpec("long", "A long reply", long))
        record = await h.fake.inject_interaction("long", None, user_id=ALICE, channel_id=DM_ALICE)
        chunks = split_message(text, 2000)
        await h.fake.wait_for(lambda: len(record.followups) == len(chunks) - 1)
        assert [record.shown, *record.followups] == chunks


async def test_unauthorised_slash_command_is_answered_privately(hermes_home, fake_openai):
    async with discord_gateway(hermes_home, fake_openai) as h:
        in_guild = await h.fake.inject_interaction(
            "new", None, user_id=BOB, channel_id=CHANNEL, guild_id=GUILD
        )
        await h.fake.wait_for(lambda: bool(in_guild.original))
        assert in_guild.callback_types == [5] and in_guild.ephemeral
        assert in_guild.shown == "You are not allowed to use this bot."
        # In a DM the access policy's deny hook answers: a pairing code, only for them.
        in_dm = await h.fake.inject_interaction("new", None, user_id=BOB, channel_id=DM_BOB)
        await h.fake.wait_for(lambda: bool(in_dm.original))
        assert in_dm.ephemeral and "pairing code" in in_dm.shown
        assert h.runner.sessions == {} and h.answers(DM_BOB) == []


async def test_stop_as_slash_command_interrupts_the_answer(hermes_home, fake_openai):
    fake_openai.enqueue(ScriptedReply(text="word " * 200, chunk_size=5, delay=0.02))
    async with discord_gateway(hermes_home, fake_openai) as h:
        await h.dm("talk a lot")
        await h.fake.wait_for(lambda: len(h.answers(DM_ALICE)) == 1)
        record = await h.fake.inject_interaction("stop", None, user_id=ALICE, channel_id=DM_ALICE)
        await h.fake.wait_for(lambda: bool(record.original))
        assert record.shown == "Stopped."
        await h.runner.wait_idle()
        [answer] = h.answers(DM_ALICE)
        assert answer.endswith("(interrupted)")


def test_payload_follows_discords_naming_rules():
    async def noop(ctx: CommandContext) -> CommandResult:
        return CommandResult("")

    specs = [
        CommandSpec("Summarise Everything In This Channel Please", "x" * 150, noop),
        CommandSpec("summarise-everything-in-this-channel-please", "duplicate once cut", noop),
        CommandSpec("ok", "short", noop, args_hint="[a very long hint " + "y" * 120 + "]"),
    ]
    payload = command_payload(specs)
    assert [c["name"] for c in payload] == ["summarise-everything-in-this-cha", "ok"]
    assert len(payload[0]["description"]) == 100 and payload[0]["description"].endswith("…")
    [option] = payload[1]["options"]
    assert len(option["description"]) == 100 and option["required"] is False
    data = {"name": "ok", "options": [{"name": "args", "type": 3, "value": "two words"}]}
    assert interaction_command_text(data) == "/ok two words"
    assert interaction_command_text({"name": "help"}) == "/help"
