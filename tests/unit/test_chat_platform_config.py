"""The fields every chat platform shares live in one place and mean the same everywhere."""

from __future__ import annotations

from hermes_gateway.access.approvals import ApprovalManager
from hermes_gateway.config import ChatPlatformConfig, DiscordConfig, TelegramConfig
from tests.conftest import make_config


def test_chat_sections_share_one_base(tmp_path):
    config = make_config(tmp_path)
    assert isinstance(config.platforms.chat("telegram"), TelegramConfig)
    assert isinstance(config.platforms.chat("discord"), DiscordConfig)
    assert config.platforms.chat("api") is None
    assert config.platforms.chat("api_server") is None  # not a chat platform
    assert config.platforms.chat("local") is None
    assert config.platforms.chat("__class__") is None
    assert issubclass(TelegramConfig, ChatPlatformConfig)
    assert issubclass(DiscordConfig, ChatPlatformConfig)


def test_discord_follows_display_tool_progress_unless_it_overrides(tmp_path):
    config = make_config(tmp_path, HERMES_TOOL_PROGRESS="off")
    discord = config.platforms.discord
    assert discord.progress_mode(config.display) == "off"
    discord.tool_progress = "all"
    assert discord.progress_mode(config.display) == "all"


def test_api_server_approvals_always_applies_to_api_and_webhook_turns(tmp_path):
    """``platforms.api_server.approvals: always`` used to be looked up under the platform
    name ``api`` and so never applied."""
    config = make_config(tmp_path)
    config.platforms.api_server.approvals = "always"
    manager = ApprovalManager(config, runner=None)  # type: ignore[arg-type]
    assert manager.always("api") and manager.always("webhook")
    assert not manager.always("telegram")
    config.platforms.telegram.approvals = "always"
    assert manager.always("telegram")


def test_chat_platforms_ask_before_shell_and_writes_by_default(tmp_path):
    """Remote users are not trusted: ``writes`` is the chat platforms' default; the API
    server and the local terminal keep ``dangerous``."""
    config = make_config(tmp_path)
    modes = {p: config.platforms.approvals_mode(p) for p in ("telegram", "discord")}
    assert modes == {"telegram": "writes", "discord": "writes"}
    assert config.platforms.approvals_mode("api") == "dangerous"
    assert config.platforms.approvals_mode("local") == "dangerous"
