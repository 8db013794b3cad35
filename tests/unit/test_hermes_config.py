"""A Hermes Agent home loads: its keys are honoured, ignored and listed, or refused by name.

The fixture ``tests/fixtures/hermes_home`` is a Hermes Agent 0.19 ``config.yaml`` with every
key of its default configuration and gateway loader, and a ``.env`` with its documented
variables (see the files' headers).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hermes_cron.settings import CronSettings
from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.config import ConfigError, ConfigErrors, inspect_config, load_config
from hermes_gateway.models import SessionSource
from hermes_gateway.paths import HermesPaths

FIXTURE = Path(__file__).parent.parent / "fixtures" / "hermes_home"


def load(home: Path, text: str = "", env: str | None = None, **environ: str):
    (home / "config.yaml").write_text(text)
    if env is not None:
        (home / ".env").write_text(env)
    return load_config(HermesPaths(home), {"HERMES_HOME": str(home), **environ})


def errors_of(home: Path, text: str, **environ: str) -> list[ConfigError]:
    with pytest.raises(ConfigError) as caught:
        load(home, text, **environ)
    exc = caught.value
    return exc.errors if isinstance(exc, ConfigErrors) else [exc]


@pytest.fixture
def hermes_agent_home(tmp_path: Path) -> Path:
    home = tmp_path / "from-hermes-agent"
    shutil.copytree(FIXTURE, home)
    return home


def test_the_hermes_agent_home_loads_with_its_values_in_force(hermes_agent_home):
    config = load_config(HermesPaths(hermes_agent_home), {"HERMES_HOME": str(hermes_agent_home)})
    # config.yaml, under Hermes' names and shapes
    assert config.model.name == "fixture-model" and config.model.provider == "custom"
    assert config.model.base_url == "http://127.0.0.1:9/v1"
    assert config.model.context_length == 131072
    assert config.gateway.busy_mode == "queue"  # display.busy_input_mode
    assert config.platforms.discord.tool_progress == "off"  # display.platforms.discord
    assert config.timezone == "Europe/Berlin"
    assert CronSettings.from_config(config).timezone == "Europe/Berlin"  # cron follows it
    assert config.cron.output_keep == 7  # cron.output_retention
    assert config.gateway.approval_timeout == 90  # approvals.timeout
    assert config.platforms.api_server.max_concurrency == 10  # gateway.api_server.*
    assert config.personality == "pirate"  # display.personality
    assert config.personalities["pirate"] == "You are a pirate.\nTone: salty"
    reset = config.session_reset
    assert (reset.mode, reset.notify) == ("both", False)
    assert not config.group_sessions_per_user
    assert config.streaming.enabled and config.streaming.edit_interval == 1.5
    assert config.platforms.telegram.edit_interval == 1.5  # streaming.edit_interval applies
    assert config.unauthorized_dm_behavior == "ignore"
    assert config.platforms.discord.unauthorized_dm == "ignore"  # the top-level default
    assert config.platforms.telegram.unauthorized_dm == "pair"  # its own extra wins
    assert config.platforms.telegram.enabled is True
    assert config.platforms.webhook.routes["github"].events == ["push"]
    assert config.platforms.api_server.host == "127.0.0.1"
    # .env wins over config.yaml, as in Hermes Agent
    assert config.agent.max_iterations == 60  # HERMES_MAX_ITERATIONS over agent.max_turns 42
    assert config.agent.cwd == "/tmp"
    assert config.display.tool_progress == "all"  # legacy HERMES_TOOL_PROGRESS=true
    assert (reset.idle_minutes, reset.at_hour) == (600, 3)
    tg, dc = config.platforms.telegram, config.platforms.discord
    assert not tg.require_mention and tg.home == "-100123:77"
    assert tg.allowed_users == ["1001", "1002"]
    assert dc.require_mention and dc.auto_thread and dc.home == "3001:3002"
    assert dc.free_response_channels == ["111"] and dc.allowed_channels == ["111", "222"]
    api = config.platforms.api_server
    assert api.enabled and api.model_name == "my-hermes" and api.port == 0
    assert api.cors_origins == ["http://localhost:3000", "https://chat.example.test"]
    hook = config.platforms.webhook
    assert hook.enabled and hook.port == 0 and hook.secret == "fixture-webhook-secret-0123"


def test_what_is_ignored_is_listed_once_and_key_by_key(hermes_agent_home):
    config, errors = inspect_config(
        HermesPaths(hermes_agent_home), {"HERMES_HOME": str(hermes_agent_home)}
    )
    assert errors == []
    (warning,) = [w for w in config.warnings if "ignored" in w]
    assert warning.startswith("Hermes Agent settings not supported here, ignored: ")
    assert "toolsets" in warning and "hermes config check" in warning
    status = {r.key: r.status for r in config.report}
    assert status["memory.*"] == "ignored" and status["toolsets"] == "ignored"
    assert status["agent.gateway_timeout"] == "ignored"
    # Slack is a platform here: its section is read (an explicit enabled: false keeps it off
    # even with SLACK_BOT_TOKEN set, as in Hermes Agent); only what we lack is ignored.
    assert status["platforms.slack.enabled"] == "honoured"
    assert status["slack.require_mention"] == "honoured"
    assert status["slack.channel_prompts"] == "ignored"
    assert status["agent.max_turns"] == "honoured"
    assert status["session_reset.mode"] == "honoured"  # enforced by session_reset.py
    assert status["DISCORD_REACTIONS"] == "ignored" and status["WEBHOOK_PORT"] == "honoured"
    assert status["OPENROUTER_API_KEY"] == "ignored"  # the provider is custom


def test_defaults_are_hermes_agents(hermes_home):
    config = load(hermes_home)
    assert config.agent.max_iterations == 90
    assert config.platforms.discord.auto_thread is True
    assert config.session_reset.mode == "none" and config.session_reset.idle_minutes == 1440
    assert config.unauthorized_dm_behavior == "pair"


def test_model_as_a_string_and_a_provider_by_name(hermes_home):
    assert load(hermes_home, "model: gpt-4o\n").model.name == "gpt-4o"
    config = load(
        hermes_home,
        "model:\n  default: x/y\n  provider: openrouter\n",
        env="OPENROUTER_API_KEY=sk-or\n",
    )
    assert config.model.base_url == "https://openrouter.ai/api/v1"
    assert config.model.api_key == "sk-or" and config.model.configured
    config, _ = inspect_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
    assert config.model.configured
    (hermes_home / "config.yaml").write_text("model:\n  default: claude\n  provider: anthropic\n")
    config, _ = inspect_config(HermesPaths(hermes_home), {"HERMES_HOME": str(hermes_home)})
    assert not config.model.base_url
    assert any("anthropic" in w and "model.base_url" in w for w in config.warnings)
    assert {r.key: r.status for r in config.report}["model.provider"] == "ignored"


def test_busy_input_mode_steer_and_queue_are_honoured(hermes_home):
    config = load(hermes_home, "display:\n  busy_input_mode: steer\n")
    assert config.gateway.busy_mode == "steer" and not config.warnings
    assert {r.key: r.status for r in config.report}["display.busy_input_mode"] == "honoured"
    config = load(hermes_home, "display:\n  busy_input_mode: Queue\n")
    assert config.gateway.busy_mode == "queue"
    config = load(hermes_home, "", HERMES_GATEWAY_BUSY_INPUT_MODE="steer")
    assert config.gateway.busy_mode == "steer"
    with pytest.raises(ConfigError, match="busy"):
        load(hermes_home, "display:\n  busy_input_mode: sometimes\n")


def test_busy_acknowledgement_settings_are_honoured(hermes_home):
    config = load(hermes_home, "")
    assert config.gateway.busy_ack and config.gateway.busy_steer_ack  # Hermes' defaults
    config = load(
        hermes_home, "display:\n  busy_ack_enabled: false\n  busy_steer_ack_enabled: false\n"
    )
    assert not config.gateway.busy_ack and not config.gateway.busy_steer_ack
    report = {r.key: r.status for r in config.report}
    assert report["display.busy_ack_enabled"] == "honoured"
    assert report["display.busy_steer_ack_enabled"] == "honoured"
    config = load(hermes_home, "", HERMES_GATEWAY_BUSY_STEER_ACK_ENABLED="false")
    assert config.gateway.busy_ack and not config.gateway.busy_steer_ack
    with pytest.raises(ConfigError, match="busy_ack"):
        load(hermes_home, "display:\n  busy_ack_enabled: sometimes\n")


def test_hermes_gateway_display_settings_load_as_ignored_not_unknown(hermes_home):
    """Hermes Agent's gateway reads these display keys (gateway/display_config.py and its
    loader) though its default config.yaml does not list them: a user's own must load."""
    text = (
        "display:\n  busy_ack_detail: false\n  busy_text_mode: queue\n"
        "  cleanup_progress: true\n  live_status: verb\n"
        "  long_running_notifications: generic\n  thinking_progress: true\n"
        "  platforms:\n    telegram:\n      busy_ack_detail: true\n"
        "      busy_steer_ack_enabled: false\n"
    )
    config = load(hermes_home, text)
    report = {r.key: r.status for r in config.report}
    for key in (
        "busy_ack_detail",
        "busy_text_mode",
        "cleanup_progress",
        "live_status",
        "long_running_notifications",
        "thinking_progress",
    ):
        assert report[f"display.{key}"] == "ignored", key
    assert report["display.platforms.telegram.busy_steer_ack_enabled"] == "ignored"


def test_group_and_thread_sessions_per_user_top_level_or_under_gateway(hermes_home):
    config = load(hermes_home, "")
    assert config.group_sessions_per_user and not config.thread_sessions_per_user
    config = load(hermes_home, "gateway:\n  thread_sessions_per_user: true\n")
    assert config.thread_sessions_per_user
    config = load(hermes_home, "group_sessions_per_user: false\n")
    assert not config.group_sessions_per_user
    status = {r.key: r.status for r in config.report}
    assert status["group_sessions_per_user"] == "honoured"


def test_streaming_mode_alias_and_nested_gateway_forms(hermes_home):
    config = load(hermes_home, "streaming:\n  mode: edit\n")
    assert config.streaming.enabled and config.streaming.transport == "edit"
    config = load(hermes_home, "streaming:\n  mode: false\n")  # YAML's bare off
    assert not config.streaming.enabled and config.streaming.transport == "off"
    config = load(
        hermes_home,
        "gateway:\n  session_reset:\n    mode: idle\n  unauthorized_dm_behavior: ignore\n",
    )
    assert config.session_reset.mode == "idle"
    assert config.platforms.telegram.unauthorized_dm == "ignore"


def test_legacy_tool_progress_switch(hermes_home):
    assert load(hermes_home, HERMES_TOOL_PROGRESS="false").display.tool_progress == "off"
    assert load(hermes_home, HERMES_TOOL_PROGRESS="true").display.tool_progress == "all"
    assert load(hermes_home, HERMES_TOOL_PROGRESS_MODE="new").display.tool_progress == "new"


def test_api_key_alone_turns_the_api_on(hermes_home):
    assert not load(hermes_home).platforms.api_server.enabled
    assert load(hermes_home, API_SERVER_KEY="k" * 20).platforms.api_server.enabled


def test_top_level_require_mention_goes_to_telegram(hermes_home):
    assert not load(hermes_home, "require_mention: false\n").platforms.telegram.require_mention


def test_a_misspelt_key_is_an_error_with_did_you_mean(hermes_home):
    (error,) = errors_of(hermes_home, "agent:\n  max_turn: 5\n")
    assert error.key == "agent.max_turn" and "did you mean 'agent.max_turns'" in error.reason
    (error,) = errors_of(hermes_home, "discord:\n  auto_thred: true\n")
    assert error.key == "discord.auto_thred" and "did you mean 'discord.auto_thread'" in str(error)
    (error,) = errors_of(hermes_home, "gateway:\n  busy_mood: queue\n")
    assert "did you mean 'gateway.busy_mode'" in error.reason


def test_every_error_of_the_file_at_once(hermes_home):
    errors = errors_of(
        hermes_home,
        "agent:\n  max_turns: many\n  max_turn: 3\n"
        "display:\n  busy_input_mode: sometimes\n"
        "session_reset:\n  at_hour: 25\n  mode: weekly\n"
        "terminal:\n  backend: docker\n"
        "memmory:\n  provider: x\n",
    )
    keys = {e.key for e in errors}
    assert keys == {
        "agent.max_turns",
        "agent.max_turn",
        "display.busy_input_mode",
        "session_reset.at_hour",
        "session_reset.mode",
        "terminal.backend",
        "memmory",
    }
    by_key = {e.key: e.reason for e in errors}
    assert "whole number" in by_key["agent.max_turns"]  # named as written, not max_iterations
    assert "directly on this machine" in by_key["terminal.backend"]
    assert "did you mean 'memory'" in by_key["memmory"]


def test_a_misspelt_variable_in_env_is_an_error(hermes_home):
    (home := hermes_home).joinpath(".env").write_text("TELEGRAM_BOT_TOKN=1:x\nSOME_TOOL_KEY=1\n")
    config, errors = inspect_config(HermesPaths(home), {"HERMES_HOME": str(home)})
    (error,) = errors
    assert error.key == "TELEGRAM_BOT_TOKN" and "did you mean TELEGRAM_BOT_TOKEN" in error.reason
    status = {r.key: r.status for r in config.report}
    assert status["SOME_TOOL_KEY"] == "ignored"


def test_a_sandboxed_terminal_is_refused_not_run_locally(hermes_home):
    (error,) = errors_of(hermes_home, "", TERMINAL_ENV="docker")
    assert error.key == "TERMINAL_ENV"


@pytest.mark.parametrize(
    ("env", "user", "allowed"),
    [
        ({"TELEGRAM_ALLOWED_USERS": "*"}, "42", True),
        ({"GATEWAY_ALLOWED_USERS": "*"}, "42", True),
        ({"GATEWAY_ALLOW_ALL_USERS": "true"}, "42", True),
        # the global allow-all does not override an allowlist that names users
        ({"GATEWAY_ALLOW_ALL_USERS": "true", "TELEGRAM_ALLOWED_USERS": "7"}, "42", False),
        ({"GATEWAY_ALLOW_ALL_USERS": "true", "TELEGRAM_ALLOWED_USERS": "7"}, "7", True),
        ({"TELEGRAM_ALLOW_ALL_USERS": "true", "TELEGRAM_ALLOWED_USERS": "7"}, "42", True),
        ({}, "42", False),
    ],
)
def test_allowlists_as_hermes_agent(hermes_home, env, user, allowed):
    policy = AccessPolicy(load(hermes_home, **env))
    source = SessionSource("telegram", "100", "dm", user_id=user)
    assert policy.allowlisted(source) is allowed


def test_empty_and_wrongly_shaped_sections(hermes_home):
    assert load(hermes_home, "agent:\ncron:\n").agent.max_iterations == 90
    (error,) = errors_of(hermes_home, "agent: 5\n")
    assert error.key == "agent" and "mapping" in error.reason
    (error,) = errors_of(hermes_home, "telegram: yes\n")
    assert error.key == "telegram" and "mapping" in error.reason
    config = load(hermes_home, "display:\ngateway:\ntelegram:\nmodel:\ntimezone:\n")
    assert config.gateway.busy_mode == "interrupt" and config.timezone == ""
