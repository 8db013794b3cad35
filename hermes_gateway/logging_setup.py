"""Logging to HERMES_HOME/logs (always) and stderr (headless only).

The TUI owns the terminal, so it must never get log lines on stderr; headless mode prints
them. Either way, ``gateway.log`` rotates so a long-running server cannot fill the disk.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(logs_dir: Path, *, stderr: bool, level: int = logging.INFO) -> None:
    logs_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = logging.handlers.RotatingFileHandler(
        logs_dir / "gateway.log", maxBytes=5_000_000, backupCount=3, encoding="utf-8"
    )
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    if stderr:
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(console)
    # Libraries' chatter (every HTTP request) is debug material for us.
    for noisy in ("httpx", "httpx2", "httpcore", "telegram", "discord", "aiohttp.access", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
