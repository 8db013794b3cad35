"""``hermes`` started on a used home: 1,000 sessions and 200,000 messages (tests/homes.py, size
``huge``).

Measures, over RUNS starts of the installed ``hermes`` in a pseudo-terminal (each on a fresh
copy of the home, since a start writes to it):
- first frame: process start -> the input's placeholder reaches the terminal;
- sessions list interactive: process start -> the name of one of the newest chats is painted
  in the Sessions list (the list is filled from the store after the gateway started);
- peak resident memory of the process (VmHWM) once the list is shown and the gateway settled;
and, in this process, the store calls the start makes (list of recent sessions, the shown
session's transcript) and the wider listings a grouped Sessions pane needs.
Targets: first frame < 0.5 s, list interactive < 1 s, memory < 150 MB.
Run: PYTHONPATH=. python bench/home_startup.py   (the home is built once, cached in /tmp)
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _terminal import drain, rss_mb, spawn_hermes, stop  # noqa: E402

from hermes_gateway.store import SessionStore, default_db_path  # noqa: E402
from tests.homes import HomeManifest, cached_home, copy_home  # noqa: E402

RUNS = 5
TARGET_FIRST_FRAME_S = 0.5
TARGET_LIST_S = 1.0
TARGET_RSS_MB = 150.0
_ESCAPES = re.compile(
    rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][A-Z0-9]|[=>78DEHM])"
)


def expected_names(manifest: HomeManifest) -> list[bytes]:
    """What the newest chats' rows show: a title, else the chat's name; an API session shows
    as its client's row (the Sessions list collapses API traffic per client)."""
    active = sorted(
        (s for s in manifest.sessions if not s.ended), key=lambda s: s.updated_at, reverse=True
    )
    return [(s.title or s.display_name).encode() for s in active[:5]]


def one_start(manifest: HomeManifest) -> tuple[float, float, float, float]:
    """(first frame s, list s, peak RSS MB, RSS now MB) of one start on a copy of the home."""
    workdir = Path(tempfile.mkdtemp(prefix="hermes-bench-home-"))
    home = copy_home(manifest, workdir / "home")
    names = expected_names(manifest)
    env = {
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "bench",
        "HERMES_MODEL": "m",
    }
    proc, master, started, _ = spawn_hermes(env, cols=160, rows=48, home=str(home.home_path))
    seen = b""
    first = listed = 0.0
    deadline = started + 30
    try:
        while time.perf_counter() < deadline and not listed:
            ready, _, _ = select.select([master], [], [], 0.02)
            if not ready:
                continue
            try:
                seen += os.read(master, 1 << 16)
            except OSError:
                break
            plain = _ESCAPES.sub(b"", seen)
            now = time.perf_counter()
            if not first and b"Message Hermes" in plain:
                first = now - started
            if first and any(n in plain for n in names):
                listed = now - started
        if not listed:
            tail = _ESCAPES.sub(b"", seen)[-2000:].decode(errors="replace")
            raise SystemExit(f"the sessions list never showed {names!r}; last output:\n{tail}")
        drain(master, 2.0)  # let the gateway settle (platforms retrying, cron)
        return first, listed, rss_mb(proc.pid, "VmHWM"), rss_mb(proc.pid)
    finally:
        stop(proc, master, str(workdir))


def timed(label: str, values: list[float]) -> str:
    values = sorted(values)
    median = statistics.median(values) * 1000
    return f"{label}: median {median:.1f} ms, max {values[-1] * 1000:.1f} ms"


async def store_calls(manifest: HomeManifest) -> None:
    """The store's share of the start, on the cached home itself (reads only)."""
    store = await SessionStore.open(default_db_path(manifest.home_path))
    try:
        biggest = max(manifest.sessions, key=lambda s: s.messages)
        calls = {
            "list_sessions(active, 50)": lambda: store.list_sessions(limit=50, include_ended=False),
            "list_sessions(all, 1000)": lambda: store.list_sessions(limit=1000),
            f"get_messages(biggest: {biggest.messages})": lambda: store.get_messages(biggest.id),
            "get_messages(biggest, last 200)": lambda: store.get_messages(biggest.id, limit=200),
        }
        for label, call in calls.items():
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                await call()
                times.append(time.perf_counter() - t0)
            print("  store " + timed(label, times))
    finally:
        await store.close()


def main() -> None:
    t0 = time.perf_counter()
    manifest = cached_home(os.environ.get("HOME_SIZE", "huge"))
    print(
        f"home: {len(manifest.sessions)} sessions, {manifest.messages} messages "
        f"({manifest.home}, ready in {time.perf_counter() - t0:.1f} s)"
    )
    asyncio.run(store_calls(manifest))
    firsts, lists, peaks, rss = [], [], [], []
    for _ in range(RUNS):
        first, listed, peak, now = one_start(manifest)
        firsts.append(first)
        lists.append(listed)
        peaks.append(peak)
        rss.append(now)
    f, li, p = statistics.median(firsts), statistics.median(lists), max(peaks)
    verdicts = [
        ("first frame", f, max(firsts), TARGET_FIRST_FRAME_S),
        ("sessions list", li, max(lists), TARGET_LIST_S),
    ]
    for label, median, worst, target in verdicts:
        ok = "ok" if median < target else "MISSED"
        print(
            f"{label + ':':20s}median {median * 1000:.0f} ms, max {worst * 1000:.0f} ms "
            f"(target < {target * 1000:.0f} ms) {ok}"
        )
    ok = "ok" if p < TARGET_RSS_MB else "MISSED"
    print(
        f"{'peak memory (HWM):':20s}max {p:.1f} MB, resident after 2 s "
        f"{statistics.median(rss):.1f} MB (target < {TARGET_RSS_MB:.0f} MB) {ok}"
    )
    print(f"({RUNS} starts, each on a fresh copy of the home)")


if __name__ == "__main__":
    main()
