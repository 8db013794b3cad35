"""``hermes config check``: what became of every key of config.yaml and variable of .env.

A Hermes Agent user's ``~/.hermes`` holds many settings; this says, key by key, which ones
take effect here (``honoured``), which are kept for a feature not enforced yet
(``accepted``), which belong to features this gateway does not have (``ignored``) and which
are wrong (``error``, with the reason and a did-you-mean). Values are never printed: the files
hold tokens. Exit status 1 when there is any error, so scripts can gate a deployment on it.

Import-light (``hermes`` builds its parser on every start): the loader is imported in
:func:`run`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from hermes_gateway.config import Config
    from hermes_gateway.config_hermes import KeyReport

__all__ = ["add_parser", "render", "run"]

_ORDER = {"error": 0, "honoured": 1, "accepted": 2, "ignored": 3}
_NOTES = {
    "accepted": "kept; not enforced yet",
    "ignored": "not supported here",
}


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``config check`` to ``hermes``'s parser."""
    config = subparsers.add_parser("config", help="inspect the configuration")
    sub = config.add_subparsers(dest="config_command", metavar="{check}", required=True)
    sub.add_parser(
        "check",
        help="say, key by key, what config.yaml and .env set: honoured, ignored or an error",
    )
    return config


def render(config: Config, reports: list[KeyReport]) -> list[str]:
    """The lines ``hermes config check`` prints: per file, each key with its fate."""
    paths = config.paths
    files = [str(paths.config_file), str(paths.env_file), "environment"]
    by_source: dict[str, list[KeyReport]] = {}
    for report in reports:
        by_source.setdefault(report.source, []).append(report)
    order = files + sorted(s for s in by_source if s not in files)
    lines: list[str] = []
    for source in order:
        found = by_source.get(source, [])
        if not found:
            if source in files[:2]:
                path = paths.config_file if source == files[0] else paths.env_file
                lines.append(f"{source}: {'no settings' if path.is_file() else 'not found'}")
            continue
        lines.append(f"{source}:")
        width = min(48, max(len(r.key) for r in found))
        for r in found:  # as the loader met them: our keys, Hermes' mapped ones, the ignored
            note = r.detail or _NOTES.get(r.status, "")
            lines.append(f"  {r.status:<9} {r.key:<{width}}  {note}".rstrip())
    counts = Counter(r.status for r in reports)
    summary = ", ".join(
        f"{counts[s]} {s if s != 'error' else 'error' + ('s' if counts[s] != 1 else '')}"
        for s in ("honoured", "accepted", "ignored", "error")
    )
    lines.append(summary)
    return lines


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point from ``hermes config check``; 1 when any key is wrong."""
    from hermes_gateway.config import ConfigError, inspect_config

    stream = out or sys.stdout
    try:
        config, errors = inspect_config()
    except ConfigError as exc:  # pragma: no cover - inspect_config collects file errors
        print(f"hermes: {exc}", file=sys.stderr)
        return 1
    for line in render(config, config.report):
        print(line, file=stream)
    return 1 if errors else 0
