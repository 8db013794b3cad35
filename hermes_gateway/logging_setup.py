"""Logging to HERMES_HOME/logs (always) and stderr (headless only).

The TUI owns the terminal, so it must never get log lines on stderr; headless mode prints
them. Either way, ``gateway.log`` rotates so a long-running server cannot fill the disk,
and every line passes :class:`RedactingFilter`: a library's exception text that repeats the
model URL with its credentials, or a bot token in a request path, never reaches a log file.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from hermes_gateway.redact import redact

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler formats it."""

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def log_file(logs_dir: Path) -> Path:
    """The gateway's log (``hermes logs`` reads it); rotated copies are ``.1``, ``.2``, ..."""
    return logs_dir / "gateway.log"


def setup_logging(
    logs_dir: Path,
    *,
    stderr: bool,
    level: int = logging.INFO,
    stderr_level: int | None = None,
    file_name: str = "gateway.log",
) -> None:
    """File logging at ``level``; with ``stderr``, also the terminal at ``stderr_level``.

    ``hermes gateway -vv`` asks for debug lines on the terminal; the file then gets them too.
    ``file_name``: ``hermes chat`` runs beside a gateway and keeps its own file, since two
    processes rotating one file would lose lines.
    """
    logs_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    console_level = level if stderr_level is None else stderr_level
    root.setLevel(min(level, console_level) if stderr else level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = logging.handlers.RotatingFileHandler(
        logs_dir / file_name, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
    )
    file_handler.setFormatter(logging.Formatter(FORMAT))
    file_handler.addFilter(RedactingFilter())
    root.addHandler(file_handler)
    if stderr:
        console = logging.StreamHandler()
        console.setLevel(console_level)
        console.setFormatter(logging.Formatter(FORMAT))
        console.addFilter(RedactingFilter())
        root.addHandler(console)
    # Libraries' chatter (every HTTP request) is debug material for us.
    noisy_loggers = (
        "httpx",
        "httpx2",
        "httpcore",
        "telegram",
        "discord",
        "slack_bolt",
        "slack_sdk",
        "nio",
        "aiohttp.access",
        "openai",
    )
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(logging.WARNING)
