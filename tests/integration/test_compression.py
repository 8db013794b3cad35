"""Context compression against the fake model server with a small window.

Why: a chat that runs for weeks must not end in the model's "context too long"; folding old
turns must never split a tool call from its result (servers refuse that history), never
lose a stored message, and a summary that fails must leave the history as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hermes_gateway import events as ev
from hermes_gateway.agent.context import SUMMARY_PREFIX
from hermes_gateway.config import Config
from hermes_gateway.gateway import Gateway
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import FakeOpenAI, ScriptedReply, ToolCallSpec
from tests.helpers import Recorder

WINDOW = 2000


def small_config(home: Path, fake: FakeOpenAI) -> Config:
    config = make_config(home, fake)
    config.gateway.auto_title = False
    return config


async def start(config: Config) -> tuple[Gateway, Recorder]:
    gateway = build_gateway(config)
    recorder = Recorder(gateway.bus)
    await gateway.start(local=True, adapters=[], offer_import=False)
    return gateway, recorder


async def say(gw: Gateway, text: str) -> None:
    assert gw.local is not None and gw.runner is not None
    await gw.local.submit(text)
    await gw.runner.wait_idle()


def words(turn: int, n: int = 60) -> str:
    return f"turn {turn}: " + " ".join(f"w{turn}x{i}" for i in range(n))


def assert_pairs_intact(messages: list[dict[str, Any]]) -> None:
    """Every tool call is answered right after it, and every result follows its call."""
    open_calls: set[str] = set()
    for m in messages:
        if m["role"] == "tool":
            assert m["tool_call_id"] in open_calls, f"result without its call: {m}"
            open_calls.discard(m["tool_call_id"])
            continue
        assert not open_calls, f"calls left without results: {open_calls}"
        for call in m.get("tool_calls") or []:
            open_calls.add(call["id"])
    assert not open_calls


@pytest.fixture
async def gw(hermes_home: Path, fake_openai: FakeOpenAI):
    fake_openai.context_length = WINDOW  # told by /v1/models; enforced with OpenAI's 400
    gateway, recorder = await start(small_config(hermes_home, fake_openai))
    gateway.rec = recorder  # type: ignore[attr-defined]
    yield gateway
    if not getattr(gateway, "stopped_by_test", False):
        recorder.close()
        await gateway.stop()


async def test_a_long_chat_with_tools_never_overflows(
    gw, fake_openai: FakeOpenAI, hermes_home: Path
) -> None:
    for turn in range(30):
        if turn % 4 == 1:
            fake_openai.enqueue(
                ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": f"echo t{turn}"})])
            )
        await say(gw, words(turn))
    assert fake_openai.overflows == 0
    errors = [e.error for e in gw.rec.of(ev.TurnFinished) if e.error]
    assert errors == []
    done = [e for e in gw.rec.of(ev.ContextCompressed) if not e.error]
    assert len(done) >= 2 and all(e.tokens_after < e.tokens_before for e in done)
    assert all(e.context_length == WINDOW for e in done)  # learnt from the server
    for request in fake_openai.requests:
        assert_pairs_intact(request["messages"])
    last = fake_openai.requests[-1]["messages"]
    assert last[1]["role"] == "user" and last[1]["content"].startswith(SUMMARY_PREFIX)
    # Nothing was deleted: every turn is still stored, and summaries are stored beside them.
    key = gw.local.source.session_key
    record = await gw.store.get_active_session(key)
    stored = await gw.store.get_messages(record.id)
    users = [m.content for m in stored if m.role == "user"]
    assert users == [words(t) for t in range(30)]
    summaries = [m for m in stored if m.role == "system"]
    assert len(summaries) == len(done)
    assert all(m.meta["compaction"]["through"] for m in summaries)
    hits = await gw.store.search("w0x7")
    assert hits, "the first turn is still searchable"
    finished = gw.rec.of(ev.TurnFinished)[-1]
    assert finished.context_length == WINDOW and 0 < finished.context_tokens < WINDOW

    # A restart on the same home picks the context up from the latest summary.
    gw.rec.close()
    await gw.stop()
    gw.stopped_by_test = True
    again, recorder = await start(small_config(hermes_home, fake_openai))
    try:
        await say(again, "after the restart")
        sent = fake_openai.requests[-1]["messages"]
        stored = await again.store.get_messages(record.id)
        latest = [m for m in stored if m.role == "system"][-1]  # maybe one more since
        assert sent[1]["content"] == SUMMARY_PREFIX + (latest.content or "")
        assert sent[-1]["content"] == "after the restart"
        assert fake_openai.overflows == 0
    finally:
        recorder.close()
        await again.stop()


@pytest.mark.parametrize("failure", ["error", "timeout"])
async def test_a_failed_summary_keeps_the_history_and_the_turn_goes_on(
    hermes_home: Path, fake_openai: FakeOpenAI, failure: str
) -> None:
    config = small_config(hermes_home, fake_openai)
    config.model.context_length = WINDOW  # the server itself has room: no 400 here
    config.compression.timeout = 0.3
    if failure == "error":
        fake_openai.summarizer = lambda body: ScriptedReply(status=500)
    else:
        fake_openai.summarizer = lambda body: ScriptedReply(text="late", delay=3.0)
    gw, rec = await start(config)
    try:
        for turn in range(14):
            await say(gw, words(turn))
        failed = [e for e in rec.of(ev.ContextCompressed) if e.error]
        assert failed and not [e for e in rec.of(ev.ContextCompressed) if not e.error]
        assert any("history kept" in e.text for e in rec.of(ev.Notice))
        assert [e.error for e in rec.of(ev.TurnFinished)] == [None] * 14  # answered anyway
        sent = fake_openai.requests[-1]["messages"]
        assert [m["content"] for m in sent if m["role"] == "user"] == [words(t) for t in range(14)]
        record = await gw.store.get_active_session(gw.local.source.session_key)
        stored = await gw.store.get_messages(record.id)
        assert not [m for m in stored if m.role == "system"]
    finally:
        rec.close()
        await gw.stop()


async def test_compress_on_demand_says_what_it_saved(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    config = small_config(hermes_home, fake_openai)
    config.compression.protect_last_n = 2
    gw, rec = await start(config)
    try:
        await say(gw, "/compress")
        assert rec.of(ev.CommandReplied)[-1].text.startswith("Not compressed: nothing older")
        for turn in range(4):
            await say(gw, words(turn))
        await say(gw, "/compress")
        reply = rec.of(ev.CommandReplied)[-1]
        assert reply.ok and reply.text.startswith("Compressed 6 messages into a summary")
        [done] = rec.of(ev.ContextCompressed)
        assert f"saved ~{done.tokens_before - done.tokens_after:,}" in reply.text
        await say(gw, "/usage")
        assert "Context: ~" in rec.of(ev.CommandReplied)[-1].text
        assert "% of 256k" in rec.of(ev.CommandReplied)[-1].text  # nothing said: the default
        await say(gw, "next")
        sent = fake_openai.requests[-1]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "user", "assistant", "user"]
        assert sent[2]["content"] == words(3)
    finally:
        rec.close()
        await gw.stop()


async def test_the_servers_count_wins_over_the_estimate(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """A server that counts more tokens than characters / 4 (code, other scripts, tool
    schemas) is believed: the next turn compresses although the estimate looks small."""
    config = small_config(hermes_home, fake_openai)
    config.model.context_length = WINDOW
    config.compression.protect_last_n = 2
    gw, rec = await start(config)
    try:
        for turn in range(3):
            await say(gw, f"short {turn}")
        assert not rec.of(ev.ContextCompressed)
        fake_openai.enqueue(ScriptedReply(text="dense answer", prompt_tokens=1600))
        await say(gw, "short 3")
        assert rec.of(ev.TurnFinished)[-1].context_tokens > 1600
        await say(gw, "short 4")
        [done] = rec.of(ev.ContextCompressed)
        assert done.error is None and done.tokens_before > 1600
        assert rec.of(ev.TurnFinished)[-1].context_tokens < 400
    finally:
        rec.close()
        await gw.stop()


async def test_a_server_that_hides_its_window_is_learnt_from_its_refusal(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """No window in the config or in /v1/models (256K assumed): the first prompt over the
    real 2k window fails with OpenAI's 400, whose message names the window; the history is
    compressed to it at once and every later turn fits."""
    fake_openai.context_length = WINDOW
    fake_openai.report_window = False
    gw, rec = await start(small_config(hermes_home, fake_openai))
    try:
        for turn in range(16):
            await say(gw, words(turn))
        errors = [e.error for e in rec.of(ev.TurnFinished) if e.error]
        assert fake_openai.overflows == 1 and len(errors) == 1
        assert "maximum context length is 2000" in errors[0]
        done = [e for e in rec.of(ev.ContextCompressed) if not e.error]
        assert done and all(e.context_length == WINDOW for e in done)
        assert rec.of(ev.TurnFinished)[-1].error is None
        record = await gw.store.get_active_session(gw.local.source.session_key)
        users = [m.content for m in await gw.store.get_messages(record.id) if m.role == "user"]
        assert users == [words(t) for t in range(16)]  # the refused turn's question is kept
    finally:
        rec.close()
        await gw.stop()


async def test_a_long_tool_output_cannot_overflow_the_turn(
    hermes_home: Path, fake_openai: FakeOpenAI
) -> None:
    """A command printing ~24,000 characters in a 2k window: the model is sent a shortened
    copy (head and tail) and answers; the stored result is whole."""
    fake_openai.context_length = WINDOW
    gw, rec = await start(small_config(hermes_home, fake_openai))
    try:
        fake_openai.enqueue(
            ScriptedReply(tool_calls=[ToolCallSpec("terminal", {"command": "seq 1 5000"})]),
            ScriptedReply(text="done"),
        )
        await say(gw, "count")
        assert fake_openai.overflows == 0
        assert rec.of(ev.TurnFinished)[-1].text == "done"
        sent = fake_openai.requests[-1]["messages"]
        tool = next(m for m in sent if m["role"] == "tool")
        assert "shortened to fit" in tool["content"] and "5000" in tool["content"]
        record = await gw.store.get_active_session(gw.local.source.session_key)
        [stored] = [m for m in await gw.store.get_messages(record.id) if m.role == "tool"]
        assert "2500\n" in (stored.content or "") and "shortened" not in (stored.content or "")
    finally:
        rec.close()
        await gw.stop()
