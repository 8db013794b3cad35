"""The ``hermes`` command.

Kept import-light on purpose: ``hermes`` must paint its first frame fast, so the gateway
and the heavy network libraries are imported only after the screen is up, and the
sub-commands import only what they use.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hermes",
        description="Hermes: chat with your agent and watch its gateway, in one terminal.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    gateway = sub.add_parser(
        "gateway", help="run the messaging gateway without a screen (alone: same as 'run')"
    )
    _add_run_options(gateway, suppress=False)
    gateway_sub = gateway.add_subparsers(dest="gateway_command")
    run = gateway_sub.add_parser(
        "run", help="serve the configured platforms until Ctrl+C / SIGTERM"
    )
    # SUPPRESS: 'hermes gateway -v run' keeps the -v given before 'run'.
    _add_run_options(run, suppress=True)
    from hermes_tui.service_cli import add_logs_parser, add_service_parsers

    add_service_parsers(gateway_sub)
    add_logs_parser(sub)
    from hermes_cron.cli import add_parser as add_cron_parser

    add_cron_parser(sub)
    from hermes_gateway.access.pairing_cli import add_parser as add_pairing_parser

    add_pairing_parser(sub)
    from hermes_tui.import_cli import add_parser as add_import_parser

    add_import_parser(sub)
    # Defined here: hermes_tui.chat_cli imports asyncio, too heavy for every start.
    chat = sub.add_parser(
        "chat", help="line-mode chat (no full screen): for plain terminals, SSH and pipes"
    )
    chat.add_argument("-q", "--query", help="ask this, print the answer and exit")
    from hermes_gateway.config_check import add_parser as add_config_parser

    add_config_parser(sub)
    return parser


def _add_run_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Hermes Agent's ``gateway run`` options, on both ``gateway`` and ``gateway run``."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="more log lines on stderr (-vv: debug)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default or False,
        help="no log lines on stderr (the log file still has them)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        default=default or False,
        help="stop the gateway running on this home (ours or Hermes Agent's) and take over",
    )


def _load_config():
    from hermes_gateway.config import ConfigError, load_config

    try:
        return load_config(), None
    except ConfigError as exc:
        return None, str(exc)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.version:
        from hermes_gateway import __version__

        print(f"hermes {__version__}")
        return 0
    if args.command == "gateway":
        return _gateway(args)
    if args.command == "cron":
        from hermes_cron.cli import run as cron_run

        return cron_run(args)
    if args.command == "pairing":
        from hermes_gateway.access.pairing_cli import run as pairing_run

        return pairing_run(args)
    if args.command == "chat":
        from hermes_tui.chat_cli import run as chat_run

        return chat_run(args)
    if args.command == "logs":
        from hermes_tui.service_cli import logs

        return logs(args)
    if args.command == "import":
        from hermes_tui.import_cli import run as import_run

        return import_run(args)
    if args.command == "config":
        from hermes_gateway.config_check import run as config_run

        return config_run(args)
    return _run_tui()


def _claim_home(config, *, replace: bool = False):
    """Check the home and lock it for this process (None after printing why not)."""
    from hermes_gateway.startup import StartupError, claim_home

    try:
        return claim_home(config.paths, replace=replace)
    except StartupError as exc:
        print(f"hermes: {exc}", file=sys.stderr)
        return None


def _gateway(args: argparse.Namespace) -> int:
    command = getattr(args, "gateway_command", None) or "run"
    if command == "run":
        return _gateway_run(args)
    from hermes_tui.service_cli import run as service_run

    return service_run(args)


def _gateway_run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from hermes_gateway.headless import run_headless
    from hermes_tui.assembly import default_features

    config, error = _load_config()
    if config is None:
        print(f"hermes: bad configuration: {error}", file=sys.stderr)
        return 2
    verbose = getattr(args, "verbose", 0) or 0
    level = (
        None if getattr(args, "quiet", False) else logging.DEBUG if verbose > 1 else logging.INFO
    )
    lock = _claim_home(config, replace=getattr(args, "replace", False))
    if lock is None:
        return 2
    with lock:
        try:
            return asyncio.run(
                run_headless(config, features=default_features(), stderr_level=level)
            )
        except KeyboardInterrupt:
            return 130


def _run_tui() -> int:
    # Every check runs before the full screen opens: a bad home or configuration is one line
    # on the normal terminal and exit code 2, never a half-started screen.
    config, error = _load_config()
    if config is None:
        print(f"hermes: bad configuration: {error}", file=sys.stderr)
        return 2
    lock = _claim_home(config)
    if lock is None:
        return 2
    from hermes_tui.app import HermesApp
    from hermes_tui.signals import run_until_signalled

    with lock:
        app = HermesApp(config=config)
        run_until_signalled(app)
        return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
