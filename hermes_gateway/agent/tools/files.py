"""File tools: ``read_file``, ``write_file`` and ``search_files``.

All disk work runs in ``asyncio.to_thread`` so a slow disk or a large tree never stalls the
event loop (the TUI and every platform share it). ``search_files`` matches with the ``regex``
module rather than ``re``: it releases the GIL while it matches (``concurrent=True``), so a
search in a worker thread cannot starve the loop, and it takes a ``timeout``, so a pattern that
backtracks catastrophically (``(a|aa)+$`` over a long line) ends with a clear error instead of
freezing the gateway until the process is killed (``re`` holds the GIL and ignores SIGTERM). Paths are resolved against the session's
working directory with ``~`` expanded. Results are capped so one call cannot flood the
model's context; the caps say how to get the rest (``offset=``, a narrower pattern).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import regex

from hermes_gateway.agent.tools.base import (
    Tool,
    ToolContext,
    ToolResult,
    cap_text,
    error_result,
    format_size,
    plural,
    refusal,
    resolve_path,
    working_dir,
)
from hermes_gateway.agent.tools.boundary import ToolBoundary
from hermes_gateway.text import one_line

BINARY_SNIFF = 8192
"""Bytes inspected for a NUL byte to decide that a file is binary (what git and grep do)."""
MAX_LINE_CHARS = 2000
"""Longer lines are cut in read_file output; minified files would otherwise eat the cap."""
SEARCH_LINE_CHARS = 300
SEARCH_MAX_FILE_BYTES = 1_000_000
SEARCH_TIMEOUT = 10.0
"""Seconds one search_files call may spend matching before it gives up."""
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".venv",
    }
)
"""Directories search_files never enters: VCS data, dependencies and caches, not the user's work."""


def _is_binary(path: Path) -> bool:
    with path.open("rb") as fh:
        return b"\0" in fh.read(BINARY_SNIFF)


class ReadFileTool(Tool):
    """Read a text file as numbered lines, a window at a time."""

    name: ClassVar[str] = "read_file"
    description: ClassVar[str] = (
        "Read a text file and return its lines numbered like `cat -n`. Reads at most `limit` "
        "lines (default 500) starting at line `offset` (1-based); call again with a larger "
        "offset to continue. Binary files are not shown."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "File path, absolute or relative to the working directory.",
            },
            "offset": {
                "type": "integer",
                "description": "First line to read, 1-based (default 1).",
            },
            "limit": {"type": "integer", "description": "Maximum number of lines (default 500)."},
        },
        "required": ["path"],
    }

    default_limit: int = 500

    def __init__(self, *, output_cap: int = 50_000) -> None:
        self.output_cap = output_cap

    def preview(self, args: dict[str, Any]) -> str:
        return one_line(str(args.get("path", "")))

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = resolve_path(ctx, str(args.get("path", "")))
        offset = int(args.get("offset") or 1)
        limit = int(args.get("limit") or self.default_limit)
        if offset < 1:
            return error_result(f"offset must be >= 1 (lines are numbered from 1), got {offset}")
        if limit < 1:
            return error_result(f"limit must be >= 1, got {limit}")
        refused = await refusal(ctx, path, write=False)
        if refused is not None:
            return refused
        return await asyncio.to_thread(self._read, path, offset, limit)

    def _read(self, path: Path, offset: int, limit: int) -> ToolResult:
        if not path.exists():
            return error_result(f"file not found: {path}", summary="file not found")
        if path.is_dir():
            return error_result(
                f"{path} is a directory; use search_files or the terminal (ls) to list it",
                summary="is a directory",
            )
        size = path.stat().st_size
        if _is_binary(path):
            return error_result(
                f"{path} is a binary file ({format_size(size)}); not shown as text",
                summary="binary file",
            )
        out: list[str] = []
        used = 0
        lineno = 0
        last = offset - 1
        more = False
        capped = False
        with path.open("r", encoding="utf-8", errors="replace", newline=None) as fh:
            for lineno, line in enumerate(fh, start=1):
                if lineno < offset:
                    continue
                if lineno >= offset + limit:
                    more = True
                    break
                text = line.rstrip("\n")
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + f" [... line cut, {len(text)} chars]"
                rendered = f"{lineno:>6}\t{text}"
                if out and used + len(rendered) + 1 > self.output_cap:
                    capped = more = True
                    break
                out.append(rendered)
                used += len(rendered) + 1
                last = lineno
        if not out:
            if lineno == 0:
                return ToolResult(content=f"{path} is empty", summary="empty file")
            return error_result(
                f"offset {offset} is beyond the end of {path} ({plural(lineno, 'line')})",
                summary="offset past end",
            )
        if more:
            why = "output cap reached" if capped else f"limit of {limit} lines reached"
            out.append(f"[... {why}; continue with offset={last + 1}]")
        return ToolResult(
            content="\n".join(out),
            summary=f"read {plural(last - offset + 1, 'line')}",
        )


class WriteFileTool(Tool):
    """Write a whole file atomically, creating parent directories."""

    name: ClassVar[str] = "write_file"
    mutates: ClassVar[bool] = True
    description: ClassVar[str] = (
        "Write text to a file, replacing its whole content (creates the file and missing "
        "parent directories). The write is atomic: readers see the old or the new file, "
        "never a half-written one."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "File path, absolute or relative to the working directory.",
            },
            "content": {"type": "string", "description": "The complete new file content."},
        },
        "required": ["path", "content"],
    }

    def preview(self, args: dict[str, Any]) -> str:
        return one_line(str(args.get("path", "")))

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = resolve_path(ctx, str(args.get("path", "")))
        data = str(args.get("content", "")).encode("utf-8")
        refused = await refusal(ctx, path, write=True)
        if refused is not None:
            return refused
        return await asyncio.to_thread(self._write, path, data)

    @staticmethod
    def _write(path: Path, data: bytes) -> ToolResult:
        # Write through a symlink to its target so the link itself survives os.replace.
        target = Path(os.path.realpath(path)) if path.is_symlink() else path
        if target.is_dir():
            return error_result(f"{path} is a directory", summary="is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        mode: int | None = None
        if target.exists():
            mode = target.stat().st_mode & 0o7777
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        # 0o666 through os.open lets the kernel apply the umask, like any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ToolResult(
            content=f"wrote {len(data)} bytes to {path}",
            summary=f"wrote {format_size(len(data))}",
        )


@dataclass
class _SearchOutcome:
    lines: list[str]
    files_scanned: int
    truncated: bool
    interrupted: bool
    timed_out: bool = False


class SearchFilesTool(Tool):
    """Regex search over a directory tree, grep style."""

    name: ClassVar[str] = "search_files"
    description: ClassVar[str] = (
        "Search file contents with a Python regular expression and return matches as "
        "`path:line: text`. Searches `path` (a directory or one file, default the working "
        "directory) recursively; `glob` filters file names (e.g. '*.py'). Skips .git, "
        "node_modules, caches, binary files and files over 1 MB."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Regular expression (Python syntax)."},
            "path": {
                "type": "string",
                "description": "Directory or file to search (default: cwd).",
            },
            "glob": {
                "type": "string",
                "description": "Only files whose name (or relative path) matches, e.g. '*.py'.",
            },
            "max_results": {
                "type": "integer",
                "description": "Stop after this many matching lines (default 50).",
            },
        },
        "required": ["pattern"],
    }

    default_max_results: int = 50

    def __init__(self, *, output_cap: int = 50_000, timeout: float = SEARCH_TIMEOUT) -> None:
        """Args:
        output_cap: Characters of matches returned.
        timeout: Seconds the whole search may spend (walking and matching).
        """
        self.output_cap = output_cap
        self.timeout = timeout

    def preview(self, args: dict[str, Any]) -> str:
        text = str(args.get("pattern", ""))
        if args.get("glob"):
            text += f"  ({args['glob']})"
        if args.get("path"):
            text += f"  in {args['path']}"
        return one_line(text)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw = str(args.get("pattern", ""))
        try:
            pattern = regex.compile(raw)
        except (regex.error, OverflowError, RecursionError) as exc:
            return error_result(f"invalid regex {raw!r}: {exc}", summary="invalid regex")
        root = resolve_path(ctx, str(args.get("path") or "."))
        glob = args.get("glob") or None
        max_results = int(args.get("max_results") or self.default_max_results)
        if max_results < 1:
            return error_result(f"max_results must be >= 1, got {max_results}")
        refused = await refusal(ctx, root, write=False)
        if refused is not None:
            return refused
        confined = ctx.boundary if ctx.boundary is not None and ctx.boundary.confined else None
        found = await asyncio.to_thread(
            self._search,
            pattern,
            root,
            glob,
            max_results,
            working_dir(ctx),
            ctx.interrupt,
            confined,
        )
        if found is None:
            return error_result(f"path not found: {root}", summary="path not found")
        if found.timed_out:
            return error_result(
                f"search_files gave up after {self.timeout:g}s with {raw!r} "
                f"({plural(found.files_scanned, 'file')} scanned, "
                f"{plural(len(found.lines), 'match', 'matches')} so far). The pattern may "
                "backtrack catastrophically (nested quantifiers like (a+)+ or (a|aa)+): "
                "simplify it, or narrow path/glob",
                summary="search timed out",
            )
        n = len(found.lines)
        if not n:
            note = " (interrupted)" if found.interrupted else ""
            return ToolResult(
                content=f"no matches for {raw!r} in {plural(found.files_scanned, 'file')}{note}",
                summary="no matches",
            )
        body = "\n".join(found.lines)
        if found.truncated:
            body += f"\n[stopped after {n} matches; narrow the pattern or raise max_results]"
        if found.interrupted:
            body += "\n[search interrupted]"
        return ToolResult(
            content=cap_text(body, self.output_cap),
            summary=f"{plural(n, 'match', 'matches')} in {plural(found.files_scanned, 'file')}",
        )

    def _search(
        self,
        pattern: regex.Pattern[str],
        root: Path,
        glob: str | None,
        max_results: int,
        base: Path,
        interrupt: asyncio.Event,
        boundary: ToolBoundary | None = None,
    ) -> _SearchOutcome | None:
        if not root.exists():
            return None
        out = _SearchOutcome(lines=[], files_scanned=0, truncated=False, interrupted=False)
        deadline = time.monotonic() + self.timeout
        for file in self._candidates(root, glob):
            if interrupt.is_set():  # reading a bool flag is safe from this worker thread
                out.interrupted = True
                break
            if time.monotonic() >= deadline:
                out.timed_out = True
                break
            if boundary is not None and boundary.refusal(file, write=False):
                continue  # a link out of the workspace, or a protected file: not searched
            try:
                if file.stat().st_size > SEARCH_MAX_FILE_BYTES or _is_binary(file):
                    continue
                out.files_scanned += 1
                shown = _display(file, base)
                with file.open("r", encoding="utf-8", errors="replace") as fh:
                    for lineno, line in enumerate(fh, start=1):
                        left = deadline - time.monotonic()
                        if left <= 0:
                            out.timed_out = True
                            return out
                        try:
                            hit = pattern.search(line, timeout=left, concurrent=True)
                        except TimeoutError:
                            out.timed_out = True
                            return out
                        if hit:
                            text = line.rstrip("\n")
                            if len(text) > SEARCH_LINE_CHARS:
                                text = text[:SEARCH_LINE_CHARS] + " [...]"
                            out.lines.append(f"{shown}:{lineno}: {text}")
                            if len(out.lines) >= max_results:
                                out.truncated = True
                                return out
            except OSError:
                continue  # unreadable or vanished mid-walk: not worth failing the search
        return out

    @staticmethod
    def _candidates(root: Path, glob: str | None) -> Iterator[Path]:
        if root.is_file():
            yield root
            return
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if glob is not None:
                    rel = path.relative_to(root).as_posix()
                    if not (fnmatch.fnmatch(name, glob) or fnmatch.fnmatch(rel, glob)):
                        continue
                if path.is_file():
                    yield path


def _display(path: Path, base: Path) -> str:
    """Show paths relative to the working directory when they are inside it."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)
