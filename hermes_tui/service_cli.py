"""``hermes gateway install|uninstall|start|stop|restart|status`` and ``hermes logs [-f]``.

Plain commands (no Textual, no event loop): they write a unit file, call the service manager
and read the gateway's lock, status file and log.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["SERVICE_COMMANDS", "add_logs_parser", "add_service_parsers", "logs", "run"]

SERVICE_COMMANDS = {
    "install": "install the gateway as a user service (systemd; launchd on macOS) and start it",
    "uninstall": "stop and remove that service",
    "start": "start the installed service",
    "stop": "stop the installed service",
    "restart": "restart the installed service",
    "status": "running or stopped, with PID, uptime and platforms",
}


def add_service_parsers(
    gateway_sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    for name, text in SERVICE_COMMANDS.items():
        parser = gateway_sub.add_parser(name, help=text)
        if name == "install":
            parser.add_argument(
                "--no-start", action="store_true", help="write and enable it, do not start it now"
            )


def add_logs_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("logs", help="print the gateway log (-f: keep following it)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument(
        "-n", "--lines", type=int, default=50, help="how many of the last lines (default 50)"
    )


def _home() -> Path:
    from hermes_gateway.paths import HermesPaths

    return HermesPaths.from_env().home


def run(args: argparse.Namespace) -> int:
    from hermes_gateway.service import ServiceError, ServiceManager, status_lines

    home = _home()
    manager = ServiceManager(home)
    command = args.gateway_command
    try:
        if command == "status":
            lines = status_lines(home, installed=manager.file)
        elif command == "install":
            lines = manager.install(start=not args.no_start)
        else:
            lines = getattr(manager, command)()
    except ServiceError as exc:
        print(f"hermes: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def logs(args: argparse.Namespace) -> int:
    """Print the last lines of the gateway log; with ``follow``, keep printing (Ctrl+C ends)."""
    from hermes_gateway.logging_setup import log_file

    path = log_file(_home() / "logs")
    if not path.exists() and not args.follow:
        print(f"hermes: no log yet ({path})", file=sys.stderr)
        return 1
    try:
        offset = _print_tail(path, max(0, args.lines))
        while args.follow:
            offset = _follow_once(path, offset)
            time.sleep(0.2)  # polling a file: there is no portable "wait for a write"
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # | head
        return 0
    return 0


def _print_tail(path: Path, count: int) -> int:
    """Print the last ``count`` lines; returns where the file ended."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.decode("utf-8", "replace").splitlines()
    for line in lines[-count:] if count else []:
        print(line)
    sys.stdout.flush()
    return len(data)


def _follow_once(path: Path, offset: int) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size < offset:  # rotated (gateway.log -> gateway.log.1): start the new file
        offset = 0
    if size == offset:
        return offset
    with path.open("rb") as f:
        f.seek(offset)
        chunk = f.read()
    # Only whole lines: a line being written is printed when its end arrives.
    end = chunk.rfind(b"\n") + 1
    if end:
        sys.stdout.write(chunk[:end].decode("utf-8", "replace"))
        sys.stdout.flush()
    return offset + end
