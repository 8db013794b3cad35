"""Broken HERMES_HOMEs, one per way a start can go wrong, for the start-up tests.

Each case builds its home and names what the one-line error must mention. Cases whose breakage
is a missing permission run the command without root's file-permission override (root may read
and write anything, so ``chmod`` alone would not stop it): :func:`unprivileged` gives the prefix.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DB = "hermes_tui.db"


@dataclass(frozen=True)
class Broken:
    name: str
    needles: tuple[str, ...]
    """What the one line must say (the file or key at fault, and why)."""
    needs_permissions: bool = False


CASES = [
    Broken("config_not_utf8", ("config.yaml", "not UTF-8")),
    Broken("config_unreadable", ("config.yaml", "cannot be read"), needs_permissions=True),
    Broken("home_is_file", ("HERMES_HOME", "is a file")),
    Broken("home_read_only", ("HERMES_HOME", "not writable"), needs_permissions=True),
    Broken("db_corrupt", (DB, "not a database")),
    Broken("db_newer", (DB, "newer")),
    Broken("db_read_only", (DB, "read-only"), needs_permissions=True),
    Broken("logs_read_only", ("logs", "not writable"), needs_permissions=True),
    Broken("env_bad_line", (".env", "line 2")),
    Broken("port_70000", ("platforms.api_server.port", "65535")),
    Broken("max_iterations_2_5", ("agent.max_iterations", "whole number")),
    Broken("timeout_nan", ("model.timeout", "finite")),
]


def build(root: Path, case: Broken) -> Path:
    """Create ``root/<case>`` broken the case's way; returns the HERMES_HOME to use."""
    home = root / case.name
    if home.is_dir():
        shutil.rmtree(home)
    if case.name == "home_is_file":
        home.write_text("not a folder\n")
        return home
    home.mkdir(parents=True)
    config = home / "config.yaml"
    db = home / DB
    match case.name:
        case "config_not_utf8":
            config.write_bytes("model:\n  name: caf\xe9\n".encode("latin-1"))
        case "config_unreadable":
            config.write_text("model:\n  name: x\n")
            config.chmod(0)
        case "home_read_only":
            home.chmod(0o555)
        case "db_corrupt":
            db.write_bytes(b"this is not sqlite " * 300)
        case "db_newer":
            with sqlite3.connect(db) as conn:
                conn.execute("CREATE TABLE t (x)")
                conn.execute("PRAGMA user_version = 999")
            conn.close()
        case "db_read_only":
            conn = sqlite3.connect(db, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.close()
            db.chmod(0o444)
        case "logs_read_only":
            (home / "logs").mkdir()
            (home / "logs").chmod(0o555)
        case "env_bad_line":
            (home / ".env").write_text("OPENAI_API_KEY=k\nTELEGRAM_BOT_TOKEN 123:abc\n")
        case "port_70000":
            config.write_text("platforms:\n  api_server:\n    port: 70000\n")
        case "max_iterations_2_5":
            config.write_text("agent:\n  max_iterations: 2.5\n")
        case "timeout_nan":
            config.write_text("model:\n  timeout: .nan\n")
        case _:
            raise ValueError(case.name)
    return home


def unprivileged() -> list[str] | None:
    """A command prefix under which file permissions apply; None if this machine has none.

    As root, drop the capabilities that override them (setpriv, util-linux); as anyone else,
    permissions apply already.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def one_line(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]
