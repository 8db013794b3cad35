"""Finding and importing hooks: ``HERMES_HOME/hooks/<name>/HOOK.yaml`` + ``handler.py``.

The manifest's keys are Hermes Agent's: ``name`` (default: the directory's name),
``description``, ``events`` (a list; ``command:*`` style wildcards allowed). One key of ours,
``timeout`` (seconds per call, default :data:`DEFAULT_TIMEOUT`), is ignored by Hermes Agent,
so the same directory still works there. ``handler.py`` must define ``handle(event_type,
context)``, sync or async, imported as module ``hermes_hook_<name>`` (registered in
``sys.modules`` before it runs, as Hermes Agent does, so dataclasses and pydantic models in it
resolve their annotations).

Hermes Agent skips a broken hook with a line on stdout; here every directory that is not a
working hook becomes a :class:`~.events.HookProblem` the app shows (missing file, bad YAML, no
events, import error, no ``handle``), and the other hooks load regardless. The import runs in
a daemon thread with the hook's timeout: a handler that hangs at import is skipped, not
waited for. Blocking: call :func:`load_hooks` from a thread.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from hermes_gateway.hooks.calls import describe, in_daemon_thread
from hermes_gateway.hooks.events import HookInfo, HookProblem

__all__ = ["DEFAULT_TIMEOUT", "KNOWN_EVENTS", "LoadedHook", "load_hooks"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
"""Seconds one call of a hook may take unless its HOOK.yaml says ``timeout``."""
MAX_TIMEOUT = 300.0
KNOWN_EVENTS = frozenset(
    {
        "gateway:startup",
        "session:start",
        "session:end",
        "session:reset",
        "agent:start",
        "agent:step",
        "agent:end",
        "command:*",
    }
)
"""Events this gateway fires (``command:<name>`` for every command, matched by ``command:*``)."""
_EVENT = re.compile(r"[a-z_]+:[a-z0-9_*-]+")


@dataclass(frozen=True)
class LoadedHook:
    """A hook ready to be called."""

    info: HookInfo
    handle: Callable[..., Any]


def load_hooks(folder: Path) -> tuple[list[LoadedHook], list[HookProblem]]:
    """Every hook under ``folder`` that loads, and why each other one does not."""
    hooks: list[LoadedHook] = []
    problems: list[HookProblem] = []
    if not folder.is_dir():
        return hooks, problems
    names: set[str] = set()
    for hook_dir in sorted(folder.iterdir()):
        if not hook_dir.is_dir() or hook_dir.name.startswith((".", "__")):
            continue
        try:
            hook = _load_one(hook_dir, names)
        except _Skip as skip:
            problems.append(HookProblem(skip.name or hook_dir.name, str(hook_dir), str(skip)))
            log.warning("hook %s not loaded: %s", hook_dir.name, skip)
            continue
        names.add(hook.info.name)
        hooks.append(hook)
        log.debug("hook %r loaded for %s", hook.info.name, ", ".join(hook.info.events))
    return hooks, problems


class _Skip(Exception):
    def __init__(self, reason: str, name: str = "") -> None:
        super().__init__(reason)
        self.name = name


def _load_one(hook_dir: Path, taken: set[str]) -> LoadedHook:
    manifest_path = hook_dir / "HOOK.yaml"
    handler_path = hook_dir / "handler.py"
    missing = [p.name for p in (manifest_path, handler_path) if not p.is_file()]
    if missing:
        raise _Skip(f"missing {' and '.join(missing)}")
    manifest = _manifest(manifest_path)
    name = str(manifest.get("name") or hook_dir.name).strip()
    if not name.isprintable() or len(name) > 100:
        raise _Skip("HOOK.yaml: name must be one printable line of at most 100 characters")
    if name in taken:
        raise _Skip(f"another hook is already named {name!r}", name)
    events = _events(manifest.get("events"), name)
    timeout = _timeout(manifest.get("timeout"), name)
    description = str(manifest.get("description") or "").strip()
    module = _import(name, handler_path, timeout)
    handle = getattr(module, "handle", None)
    if not callable(handle):
        raise _Skip("handler.py has no handle(event_type, context) function", name)
    info = HookInfo(name, str(hook_dir), events, description, timeout)
    return LoadedHook(info, handle)


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise _Skip(f"HOOK.yaml is not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _Skip(f"HOOK.yaml cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise _Skip("HOOK.yaml must be a mapping with 'name' and 'events'")
    return data


def _events(raw: Any, name: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]  # Hermes Agent would iterate its letters; one event is what was meant
    if not raw or not isinstance(raw, list):
        raise _Skip("HOOK.yaml declares no events (events: [agent:start, ...])", name)
    events = []
    for item in raw:
        event = str(item).strip()
        if not _EVENT.fullmatch(event):
            raise _Skip(f"HOOK.yaml: {event!r} is not an event name (like agent:start)", name)
        if event not in KNOWN_EVENTS and not event.startswith("command:"):
            log.warning("hook %s listens for %s, which this gateway never fires", name, event)
        events.append(event)
    return tuple(dict.fromkeys(events))


def _timeout(raw: Any, name: str) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= MAX_TIMEOUT:
        raise _Skip(f"HOOK.yaml: timeout must be seconds above 0, at most {MAX_TIMEOUT:g}", name)
    return float(raw)


def _import(name: str, path: Path, timeout: float) -> ModuleType:
    module_name = "hermes_hook_" + re.sub(r"\W", "_", name)  # Hermes Agent's module name
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise _Skip("handler.py cannot be imported", name)
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    sys.modules[module_name] = module
    future = in_daemon_thread(loader.exec_module, module, name=f"hook-import:{name}")
    try:
        future.result(timeout)
    except concurrent.futures.TimeoutError:
        sys.modules.pop(module_name, None)
        raise _Skip(f"handler.py did not finish importing within {timeout:g}s", name) from None
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit in its top level
        sys.modules.pop(module_name, None)
        raise _Skip(f"handler.py failed to import: {describe(exc)}", name) from None
    return module
