"""A throwaway HERMES_HOME and config pointed at the fake model server, and a platform that
delivers into nothing, for benchmarks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hermes_gateway.config import Config, load_config
from hermes_gateway.models import SessionSource
from hermes_gateway.paths import HermesPaths
from hermes_gateway.platforms.base import PlatformAdapter


def bench_config(base_url: str, **extra: str) -> Config:
    """Config for a bench run; ``extra`` adds variables (a platform's, e.g. ``IRC_SERVER``)."""
    home = Path(tempfile.mkdtemp(prefix="hermes-bench-"))
    env = {
        "HERMES_HOME": str(home),
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
        "GATEWAY_ALLOW_ALL_USERS": "true",
        **extra,
    }
    config = load_config(HermesPaths(home), env)
    config.agent.cwd = str(home)
    return config


class BenchPlatform(PlatformAdapter):
    """A platform whose chats deliver into nothing (final answers only, counted)."""

    name = "bench"

    def __init__(self) -> None:
        super().__init__()
        self.delivered = 0

    async def start(self) -> None:
        self.report("connected")

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        self.delivered += 1
