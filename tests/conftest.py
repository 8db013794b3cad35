"""Shared fixtures: a private HERMES_HOME, the scripted model server, a running gateway."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hermes_gateway.config import Config, load_config
from hermes_gateway.paths import HermesPaths
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.homes import HomeManifest, build_home


@pytest.fixture(autouse=True)
def hermes_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HERMES_HOME; nothing touches the real ~/.hermes."""
    home = tmp_path / "hermes-home"
    home.mkdir()
    monkeypatch.setenv("HERMES_HOME", str(home))
    for var in (
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "HERMES_MODEL",
        "TELEGRAM_BOT_TOKEN",
        "DISCORD_BOT_TOKEN",
        "API_SERVER_ENABLED",
        "API_SERVER_KEY",
        "GATEWAY_ALLOW_ALL_USERS",
        "GATEWAY_ALLOWED_USERS",
        "WEBHOOK_ENABLED",
        "TERMINAL_CWD",
        "TERMINAL_ENV",
        "HERMES_MAX_ITERATIONS",
        "HERMES_TOOL_PROGRESS",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """The fake Telegram Bot API on 127.0.0.1 (one per test)."""
    async with FakeTelegram() as fake:
        yield fake


def make_config(home: Path, fake: FakeOpenAI | None = None, **env: str) -> Config:
    environ = {"HERMES_HOME": str(home), **env}
    if fake is not None:
        environ.setdefault("OPENAI_BASE_URL", fake.base_url)
        environ.setdefault("OPENAI_API_KEY", "test-key")
        environ.setdefault("HERMES_MODEL", "fake-model")
    environ.setdefault("PATH", os.environ.get("PATH", ""))
    config = load_config(HermesPaths(home), environ)
    config.agent.cwd = str(home)
    config.model.timeout = 5.0
    config.model.connect_timeout = 2.0
    return config


@pytest.fixture
def config(hermes_home: Path, fake_openai: FakeOpenAI) -> Config:
    return make_config(hermes_home, fake_openai)


@pytest.fixture(scope="session")
def used_home_template(tmp_path_factory: pytest.TempPathFactory) -> HomeManifest:
    """A home used for a day (tests/homes.py, size ``day``), built once per test run."""
    return build_home(tmp_path_factory.mktemp("used-home") / "home", "day")


@pytest.fixture
def used_home(hermes_home: Path, used_home_template: HomeManifest) -> HomeManifest:
    """This test's HERMES_HOME filled with a copy of the used home; its manifest.

    The manifest lists every session (key, id, title, ended or not), the chats, the API
    clients, the cron jobs and a word found in exactly one message (``search_word``, with
    ``search_message_id`` and ``search_session_id``). The config enables Telegram and Discord
    pointed at a dead port on 127.0.0.1; a test that wants them connected sets
    TELEGRAM_BASE_URL / DISCORD_API_BASE / DISCORD_GATEWAY_URL to its fakes (environment
    variables win over config.yaml).
    """
    shutil.copytree(used_home_template.home_path, hermes_home, dirs_exist_ok=True)
    moved = used_home_template.moved(hermes_home)
    (hermes_home / "home-manifest.json").write_text(moved.to_json())
    return moved
