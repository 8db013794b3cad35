"""``hermes pairing list | approve | revoke | clear-pending``: pairing from the shell.

Works on the same database as a running gateway (TUI or headless): each command is one
SQLite transaction, and the gateway notices the change within a second (it watches the
database's ``data_version``), tells an approved user that they are in and updates the
TUI. ``list`` prints the platform names exactly as ``approve`` and ``revoke`` take them; the
codes themselves are never shown (only their hashes are stored): the user reads theirs out.

Import-light on purpose (``hermes`` builds its parser on every start): the store and the
pairing module are imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from hermes_gateway.text import ago, safe_line

if TYPE_CHECKING:
    from hermes_gateway.access.pairing import ApprovedUser, PairingManager, PendingPairing
    from hermes_gateway.config import Config

__all__ = ["PLATFORMS", "add_parser", "run", "run_async"]

PLATFORMS = ("telegram", "discord", "slack", "mattermost", "sms", "whatsapp", "signal")
"""Platforms that offer pairing codes (those with an ``unauthorized_dm`` setting)."""


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``pairing`` command (and its sub-commands) to ``hermes``'s parser."""
    pairing = subparsers.add_parser(
        "pairing", help="approve who may DM the bot (works while a gateway is running)"
    )
    sub = pairing.add_subparsers(
        dest="pairing_command", metavar="{list,approve,revoke,clear-pending}"
    )
    sub.add_parser("list", help="waiting requests and approved users")
    approve = sub.add_parser("approve", help="approve the user who was sent a code")
    approve.add_argument("platform", help=" or ".join(PLATFORMS))
    approve.add_argument("code", nargs="?", help="the 8-character code the user received")
    approve.add_argument("--user", help="approve this user id instead (they lost the code)")
    revoke = sub.add_parser("revoke", help="shut an approved user out again")
    revoke.add_argument("platform", help=" or ".join(PLATFORMS))
    revoke.add_argument("user", help="the user id, as `hermes pairing list` shows it")
    clear = sub.add_parser("clear-pending", help="drop every waiting request")
    clear.add_argument("platform", nargs="?", help="only this platform's requests")
    return pairing


def run(args: argparse.Namespace) -> int:
    """Entry point from ``hermes pairing ...``; returns the exit status."""
    from hermes_gateway.cli_support import run_with_config

    return run_with_config(run_async, args)


async def run_async(
    args: argparse.Namespace,
    config: Config,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The command against ``config``'s database.

    Returns:
        0 on success, 1 when the code, user or platform is not usable, 2 on bad input.
    """
    from hermes_gateway.access.pairing import PairingError, PairingManager
    from hermes_gateway.store import SessionStore

    out = out or sys.stdout
    err = err or sys.stderr
    command = getattr(args, "pairing_command", None) or "list"
    platform = (getattr(args, "platform", None) or "").strip().lower() or None
    if platform is not None and platform not in PLATFORMS:
        print(f"unknown platform {platform!r}: use {' or '.join(PLATFORMS)}", file=err)
        return 2
    store = await SessionStore.open(config.paths.database)
    manager = PairingManager(store)
    try:
        if command == "list":
            await _list(manager, out)
            return 0
        assert platform is not None or command == "clear-pending"
        if command == "approve":
            assert platform is not None
            if bool(args.code) == bool(args.user):
                print("give either the code or --user <id>", file=err)
                return 2
            try:
                if args.user:
                    user = await manager.approve_user(platform, args.user, by="cli")
                else:
                    user = await manager.approve_code(platform, args.code, by="cli")
            except PairingError as exc:
                print(f"not approved: {exc}", file=err)
                return 1
            print(f"approved {_who(platform, user.user_id, user.user_name)}", file=out)
            return 0
        if command == "revoke":
            assert platform is not None
            revoked = await manager.revoke(platform, args.user.strip())
            if revoked is None:
                print(f"{safe_line(args.user, 40)} is not an approved {platform} user", file=err)
                return 1
            print(f"revoked {_who(platform, revoked.user_id, revoked.user_name)}", file=out)
            return 0
        if command == "clear-pending":
            dropped = await manager.clear_pending(platform)
            print(f"dropped {len(dropped)} waiting request(s)", file=out)
            return 0
        print(f"unknown pairing command {command!r}", file=err)
        return 2
    finally:
        await store.close()


async def _list(manager: PairingManager, out: TextIO) -> None:
    now = time.time()
    pending = await manager.list_pending()
    approved = await manager.list_approved()
    print(
        "Waiting for approval: hermes pairing approve <platform> <code the user received>"
        " (or --user <user id>)",
        file=out,
    )
    if pending:
        _table(
            out,
            ("PLATFORM", "USER ID", "NAME", "ASKED", "CODE EXPIRES"),
            _pending_rows(pending, now),
        )
    else:
        print("  (none)", file=out)
    for name in PLATFORMS:
        until = await manager.locked_until(name)
        if until is not None:
            left = max(1, round((until - now) / 60))
            print(f"  approval by code on {name} is locked for {left} more min", file=out)
    print("Approved: hermes pairing revoke <platform> <user id>", file=out)
    if approved:
        _table(
            out, ("PLATFORM", "USER ID", "NAME", "APPROVED", "BY"), _approved_rows(approved, now)
        )
    else:
        print("  (none)", file=out)


def _pending_rows(pending: list[PendingPairing], now: float) -> list[tuple[str, ...]]:
    return [
        (
            p.platform,
            safe_line(p.user_id, 40),
            safe_line(p.user_name, 40),
            ago(now - p.created_at),
            _in(p.expires_at - now),
        )
        for p in pending
    ]


def _approved_rows(approved: list[ApprovedUser], now: float) -> list[tuple[str, ...]]:
    return [
        (
            a.platform,
            safe_line(a.user_id, 40),
            safe_line(a.user_name, 40),
            ago(now - a.approved_at),
            a.approved_by,
        )
        for a in approved
    ]


def _table(out: TextIO, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print(
            "  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def _who(platform: str, user_id: str, name: str | None) -> str:
    who = f"{platform} user {safe_line(user_id, 40)}"
    return f"{who} ({safe_line(name, 40)})" if name else who


def _in(seconds: float) -> str:
    return f"in {max(1, round(seconds / 60))} min"
