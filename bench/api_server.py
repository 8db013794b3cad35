"""Benchmark of the OpenAI-compatible API server against a zero-latency scripted model.

Three processes, so that each one's CPU is its own: the scripted model
(``tests/fakes/openai_server``, default echo reply, no delay), the gateway with only the API
server enabled (this file with ``--serve``) and the load generator (this process, aiohttp).

Prints, for concurrency 1, 8 and 32, streaming and not: requests/s, p50/p99 latency and, when
streaming, time to first token; the same client straight against the model at concurrency 1
and 32, so the gateway's added latency and its throughput relative to the bare upstream
(gateway req/s / upstream req/s at c=32) can be read off; the gateway's CPU per request and peak
resident memory; the time from spawning the gateway process to its first 200 on ``/health``
(and, inside the process, from ``Gateway.start()`` to listening). It asserts nothing.

For c=32 it also prints the CPU each process spends per request (the load generator and the
model alone, then the load generator, the model and the gateway), and from those the best
ratio the machine's cores allow: every process here is one event loop, so with N cores the
run is bounded by its busiest process and by the cores' total. When the bare model server
costs 0.1 ms per request, no gateway that is itself an HTTP server and an HTTP client can
keep up with it; that line says how far the measured ratio is from what is possible.

Then a bare aiohttp relay takes the gateway's place (server and client, nothing else): its
ratio is the most a gateway built on aiohttp could reach on this machine.

A second gateway then runs with the agent's model call replaced by an instant echo (no model
client at all), which separates the cost of the API server, runner, store and events from the
cost of the agent's call to the model server.

Run: ``python bench/api_server.py [--seconds 2.5]`` (about 25 s; only 127.0.0.1 is used).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE, Process
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key-0123456789abcdef"
CONCURRENCY = (1, 8, 32)
PROMPT = "benchmark request, please echo me back"


# --- the gateway process --------------------------------------------------------------------


async def serve(model_url: str, stub_agent: bool) -> None:
    """Run a gateway with only the API server; print ``READY <port> <seconds>``; serve until
    SIGTERM."""
    sys.path.insert(0, str(ROOT))
    if stub_agent:
        _stub_agent()
    from hermes_gateway.config import load_config
    from hermes_gateway.events import PlatformStatus
    from hermes_gateway.paths import HermesPaths
    from hermes_tui.assembly import build_gateway

    home = Path(os.environ["HERMES_HOME"])
    (home / "config.yaml").write_text(
        "platforms:\n  api_server:\n    enabled: true\n    port: 0\n    max_concurrency: 64\n"
    )
    env = {
        "HERMES_HOME": str(home),
        "OPENAI_BASE_URL": model_url,
        "OPENAI_API_KEY": "test-key",
        "HERMES_MODEL": "fake-model",
        "API_SERVER_KEY": KEY,
    }
    config = load_config(HermesPaths(home), env)
    config.agent.cwd = str(home)
    gateway = build_gateway(config)
    changed = asyncio.Event()
    gateway.bus.add_listener(lambda e: changed.set() if isinstance(e, PlatformStatus) else None)
    started = time.perf_counter()
    runner = await gateway.start(local=False)
    while getattr(runner.platform_state.get("api"), "state", "starting") == "starting":
        changed.clear()
        await changed.wait()
    ready = time.perf_counter() - started
    print(f"READY {getattr(runner.adapters['api'], 'port', 0)} {ready:.4f}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await gateway.stop()


async def relay(model_url: str) -> None:
    """The least any gateway in front of the model does: an aiohttp server that passes each
    request to the model with one kept aiohttp client session and the answer back as it
    comes (no agent, store, sessions or events). Prints ``READY <port>``; serves until
    SIGTERM. Its ratio is the ceiling for a gateway built on aiohttp on this machine."""
    import aiohttp
    from aiohttp import web

    session = aiohttp.ClientSession(headers={"Authorization": "Bearer test-key"})
    target = f"{model_url}/chat/completions"

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": "application/json"}
        async with session.post(target, data=body, headers=headers) as upstream:
            if not json.loads(body).get("stream"):
                return web.Response(body=await upstream.read(), content_type="application/json")
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            try:
                await response.prepare(request)
                async for piece in upstream.content.iter_any():
                    await response.write(piece)
                await response.write_eof()
            except ConnectionError:  # the load generator hung up at the end of a run
                pass
            return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    print(f"READY {server.sockets[0].getsockname()[1]} 0", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    await session.close()


def _stub_agent() -> None:
    """Answer every turn with an instant echo, in two deltas, without any model client."""
    from hermes_gateway.agent.loop import Agent, TurnResult
    from hermes_gateway.store import StoredMessage

    async def run_turn(self: Agent, *, messages: list, sink: object, **_: object) -> TurnResult:
        text = "echo: " + str(messages[-1]["content"])
        sink.on_delta(text[:8])  # type: ignore[attr-defined]
        sink.on_delta(text[8:])  # type: ignore[attr-defined]
        reply = StoredMessage(role="assistant", content=text)
        return TurnResult(text=text, messages=[reply], prompt_tokens=12, completion_tokens=6)

    Agent.run_turn = run_turn  # type: ignore[method-assign]


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def line(self, name: str) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"{name:<30} no successful requests ({self.errors} errors)"
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        text = f"{name:<30} {len(lat) / self.elapsed:7.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
        if self.first_tokens:
            text += f"   TTFT p50 {statistics.median(self.first_tokens) * 1000:6.2f} ms"
        if self.errors:
            text += f"   ({self.errors} errors)"
        return text


async def one(
    session, url: str, body: bytes, headers: dict[str, str], stream: bool, run: Run
) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            if resp.status != 200:
                await resp.read()
                run.errors += 1
                return
            if stream:
                first = None
                async for line in resp.content:
                    if first is None and b'"content":"' in line and b'"content":""' not in line:
                        first = time.perf_counter() - started
                    if line.startswith(b"data: [DONE]"):
                        break
                if first is not None:
                    run.first_tokens.append(first)
            else:
                await resp.read()
    except Exception:
        run.errors += 1
        return
    run.latencies.append(time.perf_counter() - started)


async def load(
    url: str,
    key: str,
    model: str,
    concurrency: int,
    stream: bool,
    seconds: float,
    request: dict[str, object] | None = None,
) -> Run:
    """``concurrency`` clients sending requests back to back for ``seconds``.

    ``request`` replaces the one-question body (to send the model what the gateway sends it).
    """
    import aiohttp

    message = {"role": "user", "content": PROMPT}
    request = request or {"model": model, "messages": [message], "stream": stream}
    body = json.dumps(request).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    run = Run()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        for _ in range(min(concurrency, 8)):  # warm the connections and the server's caches
            await one(session, url, body, headers, stream, Run())
        started = time.perf_counter()
        deadline = started + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                await one(session, url, body, headers, stream, run)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        run.elapsed = time.perf_counter() - started
    return run


def rate(run: Run) -> float:
    return len(run.latencies) / run.elapsed if run.elapsed else 0.0


async def _relay_figures(
    model_url: str, direct: dict[tuple[bool, int], Run], seconds: float
) -> None:
    """The bare relay (see :func:`relay`) at c=32: what no gateway on aiohttp can beat."""
    relay_proc, line = await spawn(__file__, "--relay", model_url)
    url = f"http://127.0.0.1:{line.split()[1]}/v1/chat/completions"
    try:
        print("a bare aiohttp relay (server + client, nothing else) in the gateway's place:")
        for stream in (False, True):
            before = cpu_seconds(relay_proc.pid)
            run = await load(url, "test-key", "fake-model", 32, stream, seconds)
            n = max(len(run.latencies) + run.errors + 8, 1)
            cpu = (cpu_seconds(relay_proc.pid) - before) / n
            kind = "streaming" if stream else "non-streaming"
            ratio = rate(run) / max(rate(direct[stream, 32]), 1e-9)
            print(
                run.line(f"  relay c=32{', stream' if stream else ''}")
                + f"   CPU {cpu * 1000:.2f} ms/request   relay / upstream ({kind}): {ratio:.2f}"
            )
    finally:
        relay_proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(relay_proc.wait(), 10)


async def _model_on_gateway_requests(
    model_url: str, direct: dict[tuple[bool, int], Run], seconds: float
) -> None:
    """The model alone, at c=32, sent what the gateway sends it for one question.

    The agent's request is not the client's: it carries the system prompt and the tool
    schemas and always streams, so the model spends more on it than on the client's bare
    question. The rate the model reaches on it is what a gateway costing nothing at all
    would reach; divided by the upstream's rate on the bare question, it bounds the ratio.
    """
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{model_url.removesuffix('/v1')}/_control/requests?last=1") as resp,
    ):
        sent = (await resp.json())[-1]
    size = len(json.dumps(sent).encode())
    run = await load(
        f"{model_url}/chat/completions",
        "test-key",
        "",
        32,
        bool(sent.get("stream")),
        seconds,
        request=sent,
    )
    print(
        run.line("model alone on the gateway's request c=32")
        + f"   ({size / 1024:.1f} KB, {len(sent.get('tools') or [])} tools,"
        + f" stream={bool(sent.get('stream'))})"
    )
    for stream in (False, True):
        kind = "streaming" if stream else "non-streaming"
        bound = rate(run) / max(rate(direct[stream, 32]), 1e-9)
        print(f"  a gateway costing nothing reaches at most {bound:.2f} ({kind})")


def _ceiling(kind: str, direct: tuple[float, float], via: tuple[float, float, float]) -> str:
    """The CPU of each process per request at c=32, and the ratio the cores allow.

    Each process is one event loop (one core at most) and all of them share the machine's
    cores, so a run can go no faster than its busiest process, nor than the cores can serve
    the sum; the ratio of those bounds is the best the gateway could reach at its present
    CPU per request, however the scheduler behaves.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    client, model = direct
    bare = min(1 / max(client, model), cores / (client + model))
    client2, model2, gateway = via
    through = min(1 / max(client2, model2, gateway), cores / (client2 + model2 + gateway))
    ms = 1000
    return (
        f"  CPU per request at c=32, {kind}: load generator {client * ms:.2f} ms and model "
        f"{model * ms:.2f} ms alone; through the gateway {client2 * ms:.2f} + "
        f"{model2 * ms:.2f} + gateway {gateway * ms:.2f} ms; CPU-bound on {cores} cores "
        f"(a busy machine is not), the ratio cannot exceed {through / bare:.2f}"
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def spawn(*args: str, env: dict[str, str] | None = None) -> tuple[Process, str]:
    """Start a Python process of ours and wait for its READY line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=PIPE, env=env, cwd=ROOT
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"{args} did not start: {line!r}")
    return proc, line


async def start_gateway(
    model_url: str, home: str, *extra: str
) -> tuple[Process, int, float, float]:
    """Spawn the gateway and poll /health until 200.

    Returns (process, port, seconds from spawn to the first 200, seconds Gateway.start took).
    """
    import aiohttp

    env = {**os.environ, "HERMES_HOME": home, "PYTHONPATH": str(ROOT)}
    spawned = time.perf_counter()
    proc, line = await spawn(__file__, "--serve", model_url, *extra, env=env)
    _, port, in_process = line.split()
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.002)
    return proc, int(port), time.perf_counter() - spawned, float(in_process)


async def main(seconds: float) -> None:
    fake, line = await spawn("-m", "tests.fakes.openai_server", "--port", "0")
    model_url = line.split()[1]
    with tempfile.TemporaryDirectory() as home:
        proc, port, to_health, in_process = await start_gateway(model_url, home)
        try:
            print(
                f"time to /health: {to_health * 1000:.0f} ms from spawning the process "
                f"(Gateway.start() to listening: {in_process * 1000:.0f} ms)"
            )
            direct: dict[tuple[bool, int], Run] = {}
            costs: dict[bool, tuple[float, float]] = {}
            for stream in (False, True):
                for c in (1, 32):
                    mine, theirs = time.process_time(), cpu_seconds(fake.pid)
                    run = await load(
                        f"{model_url}/chat/completions",
                        "test-key",
                        "fake-model",
                        c,
                        stream,
                        seconds,
                    )
                    direct[stream, c] = run
                    print(run.line(f"model directly c={c}{', stream' if stream else ''}"))
                    if c == 32:
                        n = max(len(run.latencies) + run.errors + min(c, 8), 1)
                        costs[stream] = (
                            (time.process_time() - mine) / n,
                            (cpu_seconds(fake.pid) - theirs) / n,
                        )
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            cpu_before, total = cpu_seconds(proc.pid), 0
            results: dict[tuple[bool, int], Run] = {}
            via: dict[bool, tuple[float, float, float]] = {}
            for stream in (False, True):
                for c in CONCURRENCY:
                    mine, theirs, ours = (
                        time.process_time(),
                        cpu_seconds(fake.pid),
                        cpu_seconds(proc.pid),
                    )
                    run = await load(url, KEY, "hermes-agent", c, stream, seconds)
                    results[stream, c] = run
                    n = len(run.latencies) + run.errors + min(c, 8)
                    total += n
                    print(run.line(f"gateway c={c}{', stream' if stream else ''}"))
                    if c == 32:
                        via[stream] = (
                            (time.process_time() - mine) / n,
                            (cpu_seconds(fake.pid) - theirs) / n,
                            (cpu_seconds(proc.pid) - ours) / n,
                        )
            cpu = cpu_seconds(proc.pid) - cpu_before
            for stream in (False, True):
                added = statistics.median(results[stream, 1].latencies) - statistics.median(
                    direct[stream, 1].latencies
                )
                kind = "streaming" if stream else "non-streaming"
                print(f"added p50 latency at c=1, {kind}: {added * 1000:.2f} ms")
                ratio = rate(results[stream, 32]) / max(rate(direct[stream, 32]), 1e-9)
                print(f"gateway / upstream req/s at c=32, {kind}: {ratio:.2f}")
                print(_ceiling(kind, costs[stream], via[stream]))
            print(f"gateway CPU per request: {cpu / max(total, 1) * 1000:.2f} ms")
            print(f"gateway peak RSS: {peak_rss_mb(proc.pid):.1f} MB")
            await _model_on_gateway_requests(model_url, direct, seconds)
            await _relay_figures(model_url, direct, seconds)
        finally:
            for process in (proc, fake):
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 10)
    with tempfile.TemporaryDirectory() as home:
        proc, port, _, _ = await start_gateway(model_url, home, "--stub-agent")
        try:
            print("without a model client (agent answers with an instant echo):")
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            cpu_before, total = cpu_seconds(proc.pid), 0
            for stream, c in ((False, 1), (False, 32), (True, 32)):
                run = await load(url, KEY, "hermes-agent", c, stream, seconds)
                total += len(run.latencies) + run.errors + min(c, 8)
                print(run.line(f"  gateway c={c}{', stream' if stream else ''}"))
            cpu = cpu_seconds(proc.pid) - cpu_before
            print(f"  gateway CPU per request: {cpu / max(total, 1) * 1000:.2f} ms")
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="API server benchmark (prints figures).")
    parser.add_argument("--seconds", type=float, default=2.5, help="duration of each load run")
    parser.add_argument("--serve", metavar="MODEL_URL", help=argparse.SUPPRESS)
    parser.add_argument("--stub-agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", metavar="MODEL_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        asyncio.run(relay(args.relay))
    elif args.serve:
        asyncio.run(serve(args.serve, args.stub_agent))
    else:
        asyncio.run(main(args.seconds))
