"""The one writer of ``HERMES_HOME/.env`` (and the atomic file replace it rests on).

The first-run form saves the model's key here and ``/sethome`` saves a platform's home
channel; both change a few ``KEY=value`` lines of a file the user also edits by hand, often a
Hermes Agent user's own ``.env``. So a write:

- keeps every other line as it was: comments, blank lines, ``export KEY=`` lines, order;
- replaces a key's line in place (``KEY=`` or ``export KEY=``; a repeated line collapses into
  one, since python-dotenv used the last and one line is clearer), appends a new key at the end;
- quotes values so python-dotenv reads back exactly what was written;
- is atomic: a temporary file in the same folder, fsynced, renamed over the old one (a crash
  leaves the old file or the new one, never half of one), mode 0600 since the file holds
  tokens; a symlinked ``.env`` is written where the link points, so the link survives;
- is serialised in this process (two saves from different threads cannot lose each other's
  line).

Blocking file I/O: call these from a thread, never on the event loop.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Collection, Mapping
from pathlib import Path

__all__ = [
    "ENV_MODE",
    "EnvFileError",
    "env_text_with",
    "quote_env_value",
    "replace_file",
    "update_env_file",
]

ENV_MODE = 0o600
"""``.env`` holds tokens: readable by its owner only."""

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BOM = "\ufeff"
_lock = threading.Lock()


class EnvFileError(Exception):
    """The file could not be read or written, or a value cannot be kept in it; nothing was
    changed (the message names the file or the key)."""


def quote_env_value(value: str) -> str:
    """``value`` single-quoted the way python-dotenv reads it back unchanged.

    Raises:
        EnvFileError: A line break or NUL: it would end the line and the rest would be read as
            another line.
    """
    if any(ch in value for ch in "\r\n\x00"):
        raise EnvFileError("a value in .env cannot contain a line break")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def env_text_with(
    text: str | None,
    values: Mapping[str, str | None],
    *,
    add: Collection[str] | None = None,
) -> tuple[str, set[str]]:
    """``text`` (a ``.env``'s content, None if there is none) with ``values`` set.

    A value of None removes the key's lines. ``add`` names the keys appended when they have no
    line yet (default: every key with a value); the others are only updated where present.

    Returns:
        The new text and the keys that already had a line.

    Raises:
        EnvFileError: A bad key name or a value that cannot be kept in one line.
    """
    for key in values:
        if not _NAME.fullmatch(key):
            raise EnvFileError(f"{key!r} is not a variable name")
    quoted = {k: quote_env_value(v) for k, v in values.items() if v is not None}
    wanted = set(values) if add is None else set(add) & set(values)
    bom = ""
    if text and text.startswith(_BOM):  # kept: an editor that wrote it expects it back
        bom, text = _BOM, text[len(_BOM) :]
    found: set[str] = set()
    out: list[str] = []
    for line in (text or "").splitlines(keepends=True):
        match = _LINE.match(line)
        name: str | None = match.group(1) if match else None
        if name is None or name not in values:
            out.append(line)
            continue
        if name in found or values[name] is None:
            found.add(name)
            continue
        found.add(name)
        out.append(f"{name}={quoted[name]}\n")
    missing = [k for k in values if k not in found and k in wanted and values[k] is not None]
    if missing and out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    out.extend(f"{key}={quoted[key]}\n" for key in missing)
    return bom + "".join(out), found


def update_env_file(
    path: Path,
    values: Mapping[str, str | None],
    *,
    add: Collection[str] | None = None,
) -> set[str]:
    """Set ``values`` in the ``.env`` at ``path`` (see :func:`env_text_with`), atomically.

    Nothing is written when the file does not exist and nothing would be added.

    Returns:
        The keys that already had a line.

    Raises:
        EnvFileError: Unreadable, not UTF-8, not writable, or a bad key or value.
    """
    with _lock:
        text = _read(path)
        new, found = env_text_with(text, values, add=add)
        if text is None and not new:
            return found
        if new != text or _mode(path) != ENV_MODE:
            replace_file(path, new, ENV_MODE)
        return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"{path} cannot be read: {exc}") from None


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return None


def replace_file(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    A symlinked file (kept in a dotfiles repository) is written where the link points, so the
    link survives. The folder is fsynced after the rename so the new name survives a power cut.

    Raises:
        EnvFileError: The file could not be written (the old one is left as it was).
    """
    path = path.resolve() if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a save that was killed (one gateway per home)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise EnvFileError(f"{path} could not be written: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EnvFileError(f"{path} could not be written: {exc.strerror or exc}") from None
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    except OSError:
        pass
    finally:
        os.close(folder)
