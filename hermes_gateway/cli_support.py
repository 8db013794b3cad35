"""Shared start of the ``hermes`` sub-commands that work on a (possibly live) HERMES_HOME."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from hermes_gateway.config import Config


def run_with_config(
    run_async: Callable[[argparse.Namespace, Config], Coroutine[Any, Any, int]],
    args: argparse.Namespace,
) -> int:
    """Load the configuration (a bad one is reported by key and file, exit 2), then run."""
    import asyncio

    from hermes_gateway.config import ConfigError, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"hermes: bad configuration: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_async(args, config))
