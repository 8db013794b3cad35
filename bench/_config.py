"""A throwaway HERMES_HOME and config pointed at the fake model server, for benchmarks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hermes_gateway.config import Config, load_config
from hermes_gateway.paths import HermesPaths


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
