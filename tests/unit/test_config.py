"""Config: precedence, types, and errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hermes_gateway.config import ConfigError, load_config
from hermes_gateway.paths import HermesPaths


def load(home: Path, yaml: str | None = None, dotenv: str | None = None, **env: str):
    if yaml is not None:
        (home / "config.yaml").write_text(yaml)
    if dotenv is not None:
        (home / ".env").write_text(dotenv)
    return load_config(HermesPaths(home), env)


def test_defaults_without_files(tmp_path):
    config = load(tmp_path)
    assert not config.model.configured
    assert config.display.tool_progress is None and config.gateway.busy_mode == "interrupt"
    # Hermes Agent's per-platform defaults when nothing is set
    assert config.platforms.telegram.progress_mode(config.display) == "off"
    assert config.platforms.discord.progress_mode(config.display) == "all"
    assert config.platforms.api_server.port == 8642 and not config.allow_all_users


def test_environment_beats_dotenv_beats_yaml(tmp_path):
    config = load(
        tmp_path,
        yaml="model:\n  base_url: http://yaml/v1\n  name: from-yaml\n  api_key: yaml-key\n",
        dotenv="OPENAI_BASE_URL=http://dotenv/v1\nHERMES_MODEL=from-dotenv\n",
        HERMES_MODEL="from-env",
    )
    assert config.model.base_url == "http://dotenv/v1"
    assert config.model.name == "from-env"
    assert config.model.api_key == "yaml-key"
    assert config.env["OPENAI_BASE_URL"] == "http://dotenv/v1"


def test_hermes_user_env_names_are_understood(tmp_path):
    config = load(
        tmp_path,
        TELEGRAM_BOT_TOKEN="1:abc",
        TELEGRAM_ALLOWED_USERS="11, 22",
        GATEWAY_ALLOW_ALL_USERS="true",
        DISCORD_ALLOWED_ROLES="7",
        API_SERVER_ENABLED="1",
        API_SERVER_PORT="9000",
    )
    assert config.platforms.telegram.token == "1:abc"
    assert config.platforms.telegram.allowed_users == ["11", "22"]
    assert config.allow_all_users and config.platforms.api_server.enabled
    assert config.platforms.api_server.port == 9000
    assert config.platforms.discord.allowed_roles == ["7"]


@pytest.mark.parametrize(
    ("yaml", "env", "key", "reason"),
    [
        ("model:\n  bse_url: x\n", {}, "model.bse_url", "did you mean 'model.base_url'"),
        ("modle:\n  name: x\n", {}, "modle", "did you mean 'model'"),
        ("model:\n  timeout: soon\n", {}, "model.timeout", "must be a number"),
        ("model:\n  timeout: -1\n", {}, "model.timeout", "must not be negative"),
        ("display:\n  tool_progress: loud\n", {}, "display.tool_progress", "off | new | all"),
        ("model: [1, 2]\n", {}, "model", "must be a mapping"),
        (
            "platforms:\n  telegram:\n    require_mention: maybe\n",
            {},
            "platforms.telegram.require_mention",
            "true or false",
        ),
        ("personality: pirate\n", {}, "personality", "not in 'personalities'"),
        ("model:\n  name: [x\n", {}, "line", "not valid YAML"),
        ("", {"HERMES_BUSY_MODE": "panic"}, "gateway.busy_mode", "interrupt | queue"),
    ],
)
def test_bad_settings_name_key_and_source(tmp_path, yaml, env, key, reason):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, yaml=yaml, **env)
    message = str(err.value)
    assert key in message and reason in message
    assert ("config.yaml" in message) or ("environment variable" in message)


def test_paths_follow_hermes_home(tmp_path):
    paths = HermesPaths.from_env({"HERMES_HOME": str(tmp_path / "h")})
    assert paths.database == tmp_path / "h" / "hermes_tui.db"
    assert paths.config_file.name == "config.yaml" and paths.logs_dir.name == "logs"
