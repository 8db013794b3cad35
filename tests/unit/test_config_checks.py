"""Config values that used to slip through: unreadable files, bad .env lines, odd numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hermes_gateway.config import ConfigError, ConfigErrors, load_config
from hermes_gateway.paths import HermesPaths


def load(home: Path, **env: str):
    return load_config(HermesPaths(home), {"HERMES_HOME": str(home), **env})


def test_non_utf8_config_names_the_file(hermes_home: Path) -> None:
    (hermes_home / "config.yaml").write_bytes("model:\n  name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"config\.yaml.*not UTF-8"):
        load(hermes_home)


@pytest.mark.parametrize(
    ("yaml", "key", "why"),
    [
        ("platforms:\n  api_server:\n    port: 70000\n", "platforms.api_server.port", "65535"),
        ("agent:\n  max_iterations: 2.5\n", "agent.max_iterations", "whole number"),
        ("agent:\n  max_iterations: 0\n", "agent.max_iterations", "at least 1"),
        ("model:\n  timeout: .nan\n", "model.timeout", "finite"),
        ("model:\n  timeout: .inf\n", "model.timeout", "finite"),
        ("model:\n  timeout: 0\n", "model.timeout", "greater than 0"),
        ("cron:\n  grace_minutes: .nan\n", "cron.grace_minutes", "finite"),
        ("platforms:\n  telegram:\n    global_rate: -1\n", "platforms.telegram.global_rate", "-1"),
    ],
    ids=lambda v: v if "\n" not in v else None,
)
def test_out_of_range_and_non_finite_numbers_name_the_key(
    hermes_home: Path, yaml: str, key: str, why: str
) -> None:
    (hermes_home / "config.yaml").write_text(yaml)
    with pytest.raises(ConfigError) as err:
        load(hermes_home)
    assert err.value.key == key and why in err.value.reason


def test_whole_floats_and_port_zero_are_fine(hermes_home: Path) -> None:
    (hermes_home / "config.yaml").write_text(
        "agent:\n  max_iterations: 3.0\nplatforms:\n  api_server:\n    port: 0\n"
    )
    config = load(hermes_home)
    assert config.agent.max_iterations == 3 and isinstance(config.agent.max_iterations, int)
    assert config.platforms.api_server.port == 0


def test_environment_numbers_are_checked_too(hermes_home: Path) -> None:
    with pytest.raises(ConfigError, match=r"API_SERVER_PORT.*at most 65535"):
        load(hermes_home, API_SERVER_PORT="99999")


def test_bad_env_lines_name_file_and_line_but_not_the_value(hermes_home: Path) -> None:
    (hermes_home / ".env").write_text(
        'OPENAI_API_KEY=k\nsecret token alone\nTELEGRAM_BOT_TOKEN="123:abc\n'
    )
    with pytest.raises(ConfigErrors) as err:
        load(hermes_home)
    text = str(err.value)
    assert ".env: line 2" in text and ".env: line 3" in text and "TELEGRAM_BOT_TOKEN" in text
    assert "secret token alone" not in text and "123:abc" not in text


def test_every_wrong_key_is_reported_at_once(hermes_home: Path) -> None:
    (hermes_home / "config.yaml").write_text(
        "model:\n  timout: 3\n  timeout: .nan\nagent:\n  max_iterations: 2.5\n"
        "gateway:\n  busy_mode: later\n"
    )
    with pytest.raises(ConfigErrors) as err:
        load(hermes_home)
    keys = [e.key for e in err.value.errors]
    assert keys == ["model.timout", "model.timeout", "agent.max_iterations", "gateway.busy_mode"]
    assert "\n" not in str(err.value)  # one line for the terminal


def test_a_zero_global_rate_turns_the_bot_wide_limit_off(hermes_home: Path) -> None:
    """0 is documented (and used by the tests' fast configs) as "no global limit"."""
    (hermes_home / "config.yaml").write_text("platforms:\n  telegram:\n    global_rate: 0\n")
    assert load(hermes_home).platforms.telegram.global_rate == 0
