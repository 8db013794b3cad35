"""The control room under load: 20 remote chats streaming at ~50 tokens/s each while keys
are typed into the input.

Measures, in one process with the real app, gateway and bridge (the model is the fake
OpenAI server in its own process, so it does not share this process's CPU):
- keystroke echo: a key posted to the app -> the input's document has it (p50/p99);
- frames per second the app composes (headless driver, Textual's own frame path);
- event-loop lag (a 10 ms ticker's lateness, p50/p99/max);
- CPU of this process, as a share of one core;
- how far the selected chat's streamed text on screen trails the gateway: time from each
  AgentDelta being published to the pane writing it (p50/p99/max).
Targets: keystroke p99 < 50 ms, loop lag p99 < 50 ms, on-screen text < 0.2 s behind.
Run: python bench/control_room.py
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _config import bench_config  # noqa: E402
from textual import events  # noqa: E402

from hermes_gateway import events as ev  # noqa: E402
from hermes_gateway.models import MessageEvent, SessionSource  # noqa: E402
from hermes_gateway.platforms.base import PlatformAdapter  # noqa: E402
from hermes_tui.app import HermesApp  # noqa: E402
from hermes_tui.messages import SessionSelected  # noqa: E402
from hermes_tui.widgets.conversation import ConversationView  # noqa: E402
from hermes_tui.widgets.prompt_input import PromptInput  # noqa: E402

CHATS = 20
TOKENS = 400  # per chat: ~8 s at 50 tokens/s
KEYS = 200


class Remote(PlatformAdapter):
    name = "remote"

    async def start(self) -> None:
        self.report("connected")

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        pass


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else 0.0


async def measure(base_url: str) -> None:
    if "--debug" in sys.argv:  # name the slow callbacks (asyncio debug mode; slower overall)
        import logging

        asyncio.get_running_loop().slow_callback_duration = 0.1
        logging.basicConfig(level=logging.WARNING, filename="/tmp/control_room_debug.log")
    config = bench_config(base_url)
    remote = Remote()
    app = HermesApp(config, discover_servers=False, adapters=[remote])
    frames = 0
    original_display = app._display

    def counting_display(screen, renderable) -> None:
        nonlocal frames
        frames += 1
        original_display(screen, renderable)

    app._display = counting_display  # type: ignore[method-assign]

    async with app.run_test(size=(160, 48)) as pilot:
        while app.main_screen.current_key is None:
            await pilot.pause(0.05)
        screen = app.main_screen
        conversation = screen.query_one(ConversationView)
        prompt = screen.query_one(PromptInput)

        # How late the selected chat's text reaches the pane.
        trail: list[float] = []
        published: dict[int, float] = {}
        original_append = conversation.append_delta

        async def timed_append(text: str) -> None:
            stamp = published.pop(id(text), None)
            if stamp is not None:
                trail.append(time.perf_counter() - stamp)
            await original_append(text)

        conversation.append_delta = timed_append  # type: ignore[method-assign]
        selected = "remote:dm:0"

        def on_event(event: ev.GatewayEvent) -> None:
            if isinstance(event, ev.AgentDelta) and event.session_key == selected:
                published[id(event.text)] = time.perf_counter()

        app.gateway.bus.add_listener(on_event)

        # Loop lag sampler.
        lags: list[float] = []
        stop = asyncio.Event()

        async def sampler() -> None:
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - before - 0.01)

        for chat in range(CHATS):
            source = SessionSource("remote", str(chat), user_id="u", user_name=f"user {chat}")
            await remote.dispatch(MessageEvent(text=f"stream please {chat}", source=source))
        await pilot.pause(0.3)
        screen.post_message(SessionSelected(selected))
        await pilot.pause(0.5)
        prompt.focus()
        await pilot.pause(0.5)
        sampler_task = asyncio.create_task(sampler())
        trail.clear()

        key_times: list[float] = []
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        frames_before, wall_before = frames, time.perf_counter()
        for i in range(KEYS):
            char = "abcdefghij"[i % 10]
            expected = len(prompt.text) + 1
            start = time.perf_counter()
            app.post_message(events.Key(char, char))
            while len(prompt.text) < expected:  # noqa: ASYNC110 - polling is the measurement
                await asyncio.sleep(0.0005)
            key_times.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)  # a fast typist: ~40 keys/s with the pauses
        wall = time.perf_counter() - wall_before
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        fps = (frames - frames_before) / wall
        cpu = (
            (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        ) / wall
        streaming = sum(1 for rt in app.gateway.runner.sessions.values() if rt.busy)
        stop.set()
        await sampler_task
        await app.gateway.runner.wait_idle(timeout=60)

    print(
        f"{CHATS} chats streaming (~50 tokens/s each; {streaming} still streaming at the end "
        f"of typing), {KEYS} keys typed"
    )
    print(f"keystroke echo:  p50 {pct(key_times, 0.5):.1f} ms  p99 {pct(key_times, 0.99):.1f} ms")
    print(f"frames:          {fps:.0f} per second")
    print(
        f"loop lag:        p50 {pct(lags, 0.5):.1f} ms  p99 {pct(lags, 0.99):.1f} ms  "
        f"max {max(lags) * 1000:.0f} ms"
    )
    print(f"CPU:             {cpu * 100:.0f}% of one core")
    print(
        f"on-screen trail: p50 {pct(trail, 0.5):.1f} ms  p99 {pct(trail, 0.99):.1f} ms  "
        f"max {max(trail, default=0) * 1000:.0f} ms ({len(trail)} deltas)"
    )


def main() -> None:
    script = Path(tempfile.mkdtemp()) / "script.json"
    reply = {"text": "tok " * TOKENS, "chunk_size": 4, "delay": 0.02}
    script.write_text(json.dumps([reply] * CHATS))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        asyncio.run(measure(proc.stdout.readline().split()[1]), debug="--debug" in sys.argv)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
