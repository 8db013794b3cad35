"""Session keys and the command registry's parsing, suggestions and completion."""

from __future__ import annotations

import pytest

from hermes_gateway.commands.builtin import build_registry
from hermes_gateway.commands.registry import CommandResult, CommandSpec, parse_command
from hermes_gateway.models import MessageEvent, SessionSource, build_session_key, parse_session_key


def test_session_keys_are_built_one_way():
    assert build_session_key("telegram", "group", -100123) == "telegram:group:-100123"
    assert build_session_key("discord", "thread", "55", "77") == "discord:thread:55:77"
    assert build_session_key("local", "dm", "operator", None) == "local:dm:operator"
    src = SessionSource("discord", "55", "thread", thread_id="77")
    assert src.session_key == "discord:thread:55:77"
    assert parse_session_key(src.session_key) == ("discord", "thread", "55", "77")
    with pytest.raises(ValueError):
        build_session_key("bad:platform", "dm", "1")


def test_commands_are_recognised():
    source = SessionSource("local", "operator")
    assert MessageEvent("/help", source).is_command
    assert not MessageEvent("/ not a command", source).is_command
    assert not MessageEvent("hello /help", source).is_command
    assert parse_command("/model  gpt-x ") == ("model", "gpt-x")
    assert parse_command("/help@hermes_bot", bot_username="hermes_bot") == ("help", "")
    assert parse_command("/help@other_bot", bot_username="hermes_bot") is None
    assert parse_command("/clear_pending") == ("clear-pending", "")


def test_registry_resolves_aliases_and_suggests():
    reg = build_registry()
    assert reg.resolve("reset").name == "new" and reg.resolve("EXIT").name == "quit"
    assert "model" in reg.suggest("modle")
    assert "status" in reg.suggest("stat")
    assert reg.suggest("xyzzy") == []
    assert "quit" not in reg.suggest("qui", platform="telegram")


def test_completion_prefix_then_fuzzy_and_scoped():
    reg = build_registry()
    names = [s.name for s in reg.complete("mo")]
    assert names[0] == "model"
    # prefix matches (aliases too: /reset is /new) come before fuzzy ones
    assert [s.name for s in reg.complete("re")][:3] == ["new", "retry", "resume"]
    assert "quit" in [s.name for s in reg.complete("q")]
    assert "quit" not in [s.name for s in reg.complete("q", platform="telegram")]
    assert len(reg.complete("")) == len(reg.specs("local"))


def test_duplicate_names_are_refused():
    reg = build_registry()

    async def handler(ctx):
        return CommandResult("x")

    with pytest.raises(ValueError):
        reg.register(CommandSpec("stop", "again", handler))
    with pytest.raises(ValueError):
        reg.register(CommandSpec("halt", "alias clash", handler, aliases=("reset",)))


def test_help_lists_every_command_with_hints():
    text = build_registry().help_text("local")
    assert "`/model [name]`" in text and "/reset" in text and "**Control**" in text
