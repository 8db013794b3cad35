"""Background runs as stored (their kv entry) and the registry seam the feature extends /stop by."""

from __future__ import annotations

import json

import pytest

from hermes_gateway.background.runs import BackgroundRun, new_run_id, preview
from hermes_gateway.commands.registry import (
    CommandContext,
    CommandRegistry,
    CommandResult,
    CommandSpec,
)
from hermes_gateway.models import SessionSource

ORIGIN = SessionSource(
    platform="slack",
    chat_id="C1",
    chat_type="thread",
    thread_id="17.5",
    user_id="U9",
    user_name="Ann",
)


def test_an_entry_round_trips_with_the_origin_thread_and_state() -> None:
    run = BackgroundRun(
        id=new_run_id(0.0),
        origin=ORIGIN,
        prompt="sum 🎉 up",
        started_at=12.5,
        state="answered",
        text="✅ done",
        model_name="m2",
    )
    back = BackgroundRun.from_json(run.to_json())
    assert back == run and back.origin == ORIGIN and back.origin_key == "slack:thread:C1:17.5"
    assert back.key == f"background:dm:{run.id}" and back.source.user_id == "U9"
    assert run.id.startswith("bg_") and len(run.id) == len("bg_000000_abcdef")


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        json.dumps({"id": "x"}),
        json.dumps({"id": "x", "prompt": "p", "origin": {"platform": "a:b", "chat_id": "1"}}),
        json.dumps(
            {
                "id": "x",
                "prompt": "p",
                "state": "weird",
                "origin": {"platform": "t", "chat_id": "1"},
            }
        ),
    ],
)
def test_an_entry_that_is_not_a_run_is_refused(raw: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        BackgroundRun.from_json(raw)


def test_preview_is_one_short_line() -> None:
    assert preview("a\n\nb   c") == "a b c"
    assert len(preview("x" * 500)) <= 60


async def _reply(text: str, ctx: CommandContext) -> CommandResult:
    return CommandResult(text)


def test_replace_swaps_a_command_keeping_its_names() -> None:
    reg = CommandRegistry()
    old = CommandSpec("stop", "Stop", lambda ctx: _reply("old", ctx), aliases=("halt",))
    reg.register(old)
    new = CommandSpec("stop", "Stop more", lambda ctx: _reply("new", ctx), aliases=("halt",))
    assert reg.replace(new) is old
    assert reg.resolve("stop") is new and reg.resolve("halt") is new
    assert [s.name for s in reg.specs()] == ["stop"]
    with pytest.raises(ValueError, match="keep its aliases"):
        reg.replace(CommandSpec("stop", "x", new.handler))
    with pytest.raises(ValueError, match="no command /nope"):
        reg.replace(CommandSpec("nope", "x", new.handler))
