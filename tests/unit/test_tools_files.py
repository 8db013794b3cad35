"""read_file, write_file and search_files on real temp directories."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from hermes_gateway.agent.tools.base import ToolContext
from hermes_gateway.agent.tools.files import ReadFileTool, SearchFilesTool, WriteFileTool


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory of our own: the shared conftest puts HERMES_HOME inside tmp_path."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def ctx(work: Path) -> ToolContext:
    return ToolContext(
        session_id="s1", session_key="local:dm:me", cwd=work, interrupt=asyncio.Event()
    )


def _lines(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, n + 1))


# --- read_file ----------------------------------------------------------------------------


async def test_read_numbers_every_line(ctx: ToolContext, work: Path) -> None:
    (work / "a.txt").write_text(_lines(3))
    result = await ReadFileTool().run({"path": "a.txt"}, ctx)
    assert result.ok
    assert result.content.splitlines() == ["     1\tline 1", "     2\tline 2", "     3\tline 3"]
    assert result.summary == "read 3 lines"


async def test_read_offset_and_limit(ctx: ToolContext, work: Path) -> None:
    (work / "a.txt").write_text(_lines(10))
    result = await ReadFileTool().run({"path": "a.txt", "offset": 3, "limit": 2}, ctx)
    lines = result.content.splitlines()
    assert lines[:2] == ["     3\tline 3", "     4\tline 4"]
    assert "offset=5" in lines[2]
    assert result.summary == "read 2 lines"


async def test_read_default_limit_is_500(ctx: ToolContext, work: Path) -> None:
    (work / "big.txt").write_text(_lines(600))
    result = await ReadFileTool().run({"path": "big.txt"}, ctx)
    assert "   500\tline 500" in result.content
    assert "line 501" not in result.content
    assert "offset=501" in result.content


async def test_read_output_cap(ctx: ToolContext, work: Path) -> None:
    (work / "wide.txt").write_text(("x" * 100 + "\n") * 100)
    result = await ReadFileTool(output_cap=1000).run({"path": "wide.txt"}, ctx)
    assert len(result.content) < 1200
    assert "output cap reached" in result.content


async def test_read_missing_file(ctx: ToolContext) -> None:
    result = await ReadFileTool().run({"path": "nope.txt"}, ctx)
    assert not result.ok
    assert "file not found" in result.content and "nope.txt" in result.content


async def test_read_binary_file(ctx: ToolContext, work: Path) -> None:
    (work / "blob.bin").write_bytes(b"PK\x03\x04\x00\x00binary")
    result = await ReadFileTool().run({"path": "blob.bin"}, ctx)
    assert not result.ok and "binary file" in result.content


async def test_read_directory_and_offset_past_end(ctx: ToolContext, work: Path) -> None:
    (work / "d").mkdir()
    (work / "a.txt").write_text(_lines(2))
    directory = await ReadFileTool().run({"path": "d"}, ctx)
    assert not directory.ok and "is a directory" in directory.content
    past = await ReadFileTool().run({"path": "a.txt", "offset": 9}, ctx)
    assert not past.ok and "beyond the end" in past.content


async def test_read_empty_file(ctx: ToolContext, work: Path) -> None:
    (work / "empty.txt").write_text("")
    result = await ReadFileTool().run({"path": "empty.txt"}, ctx)
    assert result.ok and "empty" in result.content


async def test_read_expands_home(
    ctx: ToolContext, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = work / "home"
    home.mkdir()
    (home / "notes.txt").write_text("from home\n")
    monkeypatch.setenv("HOME", str(home))
    result = await ReadFileTool().run({"path": "~/notes.txt"}, ctx)
    assert result.ok and "from home" in result.content


# --- write_file ---------------------------------------------------------------------------


async def test_write_creates_parents_and_reports_bytes(ctx: ToolContext, work: Path) -> None:
    result = await WriteFileTool().run({"path": "a/b/c.txt", "content": "héllo\n"}, ctx)
    target = work / "a" / "b" / "c.txt"
    assert result.ok
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert "7 bytes" in result.content  # é is two bytes in UTF-8
    assert result.summary == "wrote 7 B"


async def test_write_is_atomic_replace(ctx: ToolContext, work: Path) -> None:
    target = work / "conf.txt"
    target.write_text("old")
    target.chmod(0o640)
    old_inode = target.stat().st_ino
    with target.open() as reader:  # a reader that opened the old file keeps the old content
        result = await WriteFileTool().run({"path": str(target), "content": "new" * 1000}, ctx)
        assert reader.read() == "old"
    assert result.ok and result.summary == "wrote 3.0 kB"
    assert target.read_text() == "new" * 1000
    assert target.stat().st_ino != old_inode  # replaced, not rewritten in place
    assert target.stat().st_mode & 0o777 == 0o640  # permissions carried over
    assert sorted(os.listdir(work)) == ["conf.txt"]  # no temp file left


async def test_write_through_symlink_keeps_the_link(ctx: ToolContext, work: Path) -> None:
    real = work / "real.txt"
    real.write_text("old")
    (work / "link.txt").symlink_to(real)
    result = await WriteFileTool().run({"path": "link.txt", "content": "new"}, ctx)
    assert result.ok
    assert (work / "link.txt").is_symlink()
    assert real.read_text() == "new"


async def test_write_onto_a_directory_fails(ctx: ToolContext, work: Path) -> None:
    (work / "d").mkdir()
    result = await WriteFileTool().run({"path": "d", "content": "x"}, ctx)
    assert not result.ok and "is a directory" in result.content


# --- search_files -------------------------------------------------------------------------


@pytest.fixture
def tree(work: Path) -> Path:
    (work / "sub").mkdir()
    (work / ".git").mkdir()
    (work / "node_modules" / "pkg").mkdir(parents=True)
    (work / "a.py").write_text("import os\nneedle = 1\n")
    (work / "b.txt").write_text("a needle in text\n")
    (work / "sub" / "c.py").write_text("x = 1\ny = 2\ndef needle2(): pass\n")
    (work / ".git" / "config.py").write_text("needle\n")
    (work / "node_modules" / "pkg" / "index.py").write_text("needle\n")
    (work / "blob.bin").write_bytes(b"\x00\x01needle\x00")
    (work / "huge.txt").write_text("needle\n" + "z" * 1_100_000)
    return work


async def test_search_finds_matches_and_skips_noise(ctx: ToolContext, tree: Path) -> None:
    result = await SearchFilesTool().run({"pattern": "needle"}, ctx)
    assert result.ok
    assert sorted(result.content.splitlines()) == [
        "a.py:2: needle = 1",
        "b.txt:1: a needle in text",
        "sub/c.py:3: def needle2(): pass",
    ]
    assert result.summary == "3 matches in 3 files"


async def test_search_glob_and_regex(ctx: ToolContext, tree: Path) -> None:
    result = await SearchFilesTool().run({"pattern": r"needle\d", "glob": "*.py"}, ctx)
    assert result.content.splitlines() == ["sub/c.py:3: def needle2(): pass"]
    only_py = await SearchFilesTool().run({"pattern": "needle", "glob": "*.py"}, ctx)
    assert {line.split(":")[0] for line in only_py.content.splitlines()} == {"a.py", "sub/c.py"}


async def test_search_in_subdir_or_single_file(ctx: ToolContext, tree: Path) -> None:
    sub = await SearchFilesTool().run({"pattern": "=", "path": "sub"}, ctx)
    assert [line.split(":")[1] for line in sub.content.splitlines()] == ["1", "2"]
    one = await SearchFilesTool().run({"pattern": "import", "path": "a.py"}, ctx)
    assert one.content == "a.py:1: import os"


async def test_search_invalid_regex(ctx: ToolContext, tree: Path) -> None:
    result = await SearchFilesTool().run({"pattern": "(unclosed"}, ctx)
    assert not result.ok and "invalid regex" in result.content


async def test_search_max_results_and_no_matches(ctx: ToolContext, tree: Path) -> None:
    limited = await SearchFilesTool().run({"pattern": "needle", "max_results": 2}, ctx)
    lines = limited.content.splitlines()
    assert len(lines) == 3 and "stopped after 2 matches" in lines[-1]
    none = await SearchFilesTool().run({"pattern": "absent-word"}, ctx)
    assert none.ok and "no matches" in none.content


async def test_search_missing_path(ctx: ToolContext) -> None:
    result = await SearchFilesTool().run({"pattern": "x", "path": "nowhere"}, ctx)
    assert not result.ok and "path not found" in result.content


async def test_search_stops_when_interrupted(ctx: ToolContext, tree: Path) -> None:
    ctx.interrupt.set()
    result = await SearchFilesTool().run({"pattern": "needle"}, ctx)
    assert "interrupted" in result.content


async def test_file_io_does_not_block_the_loop(ctx: ToolContext, work: Path) -> None:
    # A loop tick keeps running while a large search is in a worker thread.
    for i in range(200):
        (work / f"f{i}.txt").write_text(_lines(2000))
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    result = await SearchFilesTool().run({"pattern": "line 1999$", "max_results": 500}, ctx)
    done.set()
    await task
    assert result.summary == "200 matches in 200 files"
    assert ticks > 10


async def test_catastrophic_regex_times_out_without_freezing_the_loop(
    ctx: ToolContext, work: Path
) -> None:
    """``(a|aa)+$`` over a long line of a's backtracks exponentially. With ``re`` the worker
    thread held the GIL for as long as that took (the whole gateway froze); now the loop keeps
    ticking and the tool returns a timeout error within its deadline."""
    (work / "bomb.txt").write_text("ok line\n" + "a" * 38 + "!\n")
    tool = SearchFilesTool()
    tool.timeout = 1.0
    worst_lag = 0.0
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def probe() -> None:
        nonlocal worst_lag
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.05)
            worst_lag = max(worst_lag, loop.time() - before - 0.05)

    task = asyncio.ensure_future(probe())
    started = loop.time()
    result = await tool.run({"pattern": r"(a|aa)+$"}, ctx)
    elapsed = loop.time() - started
    done.set()
    await task
    # Bounds for a shared, loaded machine: a frozen loop stalls for the whole backtracking
    # (many seconds), and without the deadline the search would run far past 5 s (38 a's: about 15 s with `re`).
    assert worst_lag < 0.5, f"the event loop stalled for {worst_lag:.2f}s"
    assert not result.ok and "gave up after 1s" in result.content
    assert result.summary == "search timed out"
    assert elapsed < 5.0, f"took {elapsed:.2f}s for a 1 s deadline"


async def test_nested_quantifier_still_searches(ctx: ToolContext, work: Path) -> None:
    """The issue's own example, ``(a+)+$``, finishes (the engine does not explode on it)."""
    (work / "x.txt").write_text("a" * 50 + "!\n" + "aaa\n")
    result = await SearchFilesTool().run({"pattern": r"(a+)+$"}, ctx)
    assert result.ok and result.content == "x.txt:2: aaa"
