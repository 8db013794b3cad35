"""Where Hermes keeps its state.

Every path comes from here so that tests (and users with several setups) can point
``HERMES_HOME`` at another folder and nothing leaks into ``~/.hermes``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_FILENAME = "hermes_tui.db"
"""Our own database name: no other program keeps a file of this name in HERMES_HOME."""


@dataclass(frozen=True)
class HermesPaths:
    """The files and folders under one HERMES_HOME."""

    home: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> HermesPaths:
        env = os.environ if environ is None else environ
        raw = env.get("HERMES_HOME") or "~/.hermes"
        return cls(Path(raw).expanduser())

    @property
    def config_file(self) -> Path:
        return self.home / "config.yaml"

    @property
    def env_file(self) -> Path:
        return self.home / ".env"

    @property
    def database(self) -> Path:
        return self.home / DB_FILENAME

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def media_dir(self) -> Path:
        return self.home / "media"

    @property
    def cron_output_dir(self) -> Path:
        return self.home / "cron" / "output"
