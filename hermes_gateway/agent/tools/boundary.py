"""Where the agent's tools may reach: a workspace per remote chat, HERMES_HOME off limits.

The operator (the local terminal, and cron jobs, which the operator sets up) is trusted and
keeps the configured working directory with everything readable; only the database files are
never written, since a tool writing there corrupts the store under the gateway's feet.

A remote chat (Telegram, Discord, the HTTP API, webhooks, any plugin platform) is not
trusted. Its tools get a workspace of its own,
``HERMES_HOME/workspaces/<platform>/<hash of the session key>/``, created on first use, as
their working directory, and the file tools refuse:

* any path outside that workspace, decided on the real path (``..`` and symlinks resolved,
  so a link inside the workspace that points out is refused too);
* HERMES_HOME's credentials and state (``.env``, ``config.yaml``, the SQLite database with
  its ``-wal``/``-shm``/``-journal`` files, ``auth*`` and ``pairing*`` files) and every other
  chat's workspace, whatever the workspace setting.

The shell of a remote chat starts in the workspace with an environment stripped of secrets
(:func:`shell_environment`). A shell is not a sandbox: it can read any file the OS user
can, which is why shell commands from remote chats ask for approval by default
(``approvals: writes``). Checks run on the real path at the moment of the call; a chat that
can run shell commands could still swap a symlink between check and use, one more reason
its shell asks first.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hermes_gateway.paths import DB_FILENAME

__all__ = ["ToolBoundary", "boundary_for", "shell_environment", "workspace_for"]

OPERATOR_PLATFORMS = frozenset({"local", "cron"})
"""Platforms whose tools act for the operator (the terminal; jobs the operator scheduled)."""
WORKSPACES_DIR = "workspaces"
_SECRET_NAMES = frozenset({".env", "config.yaml", "config.yml", "gateway.pid"})
_SECRET_PREFIXES = ("auth", "pairing", DB_FILENAME)
_SECRET_ENV = re.compile(
    r"(?:_TOKEN|_KEY|_SECRET|_PASSWORD|_PASSWD|_CREDENTIALS?)$|^(?:OPENAI_|API_SERVER_)|"
    r"^HERMES_HOME$",
    re.IGNORECASE,
)


def workspace_for(home: Path, platform: str, session_key: str) -> Path:
    """The workspace of one chat: stable for its session key, unguessable from the chat id
    alone, and never a path the chat chose."""
    digest = hashlib.sha256(session_key.encode("utf-8")).hexdigest()[:24]
    safe_platform = re.sub(r"[^A-Za-z0-9_.-]", "_", platform) or "unknown"
    return home / WORKSPACES_DIR / safe_platform / digest


@dataclass(frozen=True)
class ToolBoundary:
    """What one turn's tools may touch.

    Attributes:
        home: HERMES_HOME, whose credentials and database are protected.
        workspace: The chat's workspace; ``None`` for the operator (no confinement).
    """

    home: Path
    workspace: Path | None = None

    @property
    def confined(self) -> bool:
        return self.workspace is not None

    def ensure_workspace(self) -> None:
        """Create the workspace (private to the OS user) if it does not exist. Blocking."""
        if self.workspace is not None:
            self.workspace.mkdir(parents=True, exist_ok=True, mode=0o700)

    def refusal(self, path: Path, *, write: bool) -> str | None:
        """Why the tools may not touch ``path`` (None: they may). Blocking: resolves links."""
        real = Path(os.path.realpath(path))
        home = Path(os.path.realpath(self.home))
        inside_home = _within(real, home)
        protected = inside_home and _is_protected(real.relative_to(home))
        if self.workspace is None:
            if write and protected and _is_database(real.name):
                return f"refused: {path} is the gateway's database; tools never write it"
            return None
        if protected:
            return f"refused: {path} holds the gateway's credentials or data"
        workspace = Path(os.path.realpath(self.workspace))
        if _within(real, workspace):
            return None
        if inside_home and _within(real, home / WORKSPACES_DIR):
            return f"refused: {path} belongs to another chat's workspace"
        return (
            f"refused: {path} is outside this chat's workspace; file tools here may only use "
            "paths inside it (relative paths start there)"
        )


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _is_database(name: str) -> bool:
    return name.startswith(DB_FILENAME)


def _is_protected(rel: Path) -> bool:
    """Credentials and state directly in HERMES_HOME (or in a folder named like them)."""
    if not rel.parts:
        return False
    first = rel.parts[0]
    return first in _SECRET_NAMES or first.startswith(_SECRET_PREFIXES)


def boundary_for(home: Path, platform: str, session_key: str) -> ToolBoundary:
    """The boundary of a turn on ``platform``: the operator's, or a chat's workspace."""
    if platform in OPERATOR_PLATFORMS:
        return ToolBoundary(home=home)
    return ToolBoundary(home=home, workspace=workspace_for(home, platform, session_key))


def shell_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a remote chat's shell: no tokens, keys, secrets, OpenAI or API
    server settings, and no HERMES_HOME (so nothing points the shell at the gateway's
    state)."""
    env = dict(os.environ if environ is None else environ)
    return {k: v for k, v in env.items() if not _SECRET_ENV.search(k)}
