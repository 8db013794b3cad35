"""Where a session's context may be cut, and how big it is (no model, no sockets).

Why: a cut between an assistant's tool calls and their results makes every later request
invalid (servers refuse a call without its result); the estimate decides when to compress.
"""

from __future__ import annotations

import pytest

from hermes_gateway.agent.context import (
    SUMMARY_PREFIX,
    active_context,
    context_share,
    effective_threshold,
    estimate_tokens,
    plan_compression,
)
from hermes_gateway.store import StoredMessage


def conversation() -> list[StoredMessage]:
    call = {"id": "c1", "type": "function", "function": {"name": "terminal", "arguments": "{}"}}
    messages = [
        StoredMessage(role="user", content="u1"),
        StoredMessage(role="assistant", content="a1"),
        StoredMessage(role="user", content="u2"),
        StoredMessage(role="assistant", content=None, tool_calls=[call]),
        StoredMessage(role="tool", content="out", tool_call_id="c1", name="terminal"),
        StoredMessage(role="assistant", content="a2"),
        StoredMessage(role="user", content="u3"),
        StoredMessage(role="assistant", content="a3"),
    ]
    for i, m in enumerate(messages, start=1):
        m.id = i
    return messages


@pytest.mark.parametrize("keep", range(1, 9))
def test_a_cut_never_separates_a_call_from_its_result(keep: int) -> None:
    plan = plan_compression(conversation(), tail_tokens=0, protect_last_n=keep, tail_cap=10**6)
    if plan is None:
        return
    assert plan.tail[0].role == "user"
    called = {c["id"] for m in plan.head for c in m.tool_calls or []}
    answered = {m.tool_call_id for m in plan.head if m.role == "tool"}
    assert called == answered


def test_the_tail_keeps_what_protect_last_n_asks_when_it_can() -> None:
    plan = plan_compression(conversation(), tail_tokens=0, protect_last_n=4, tail_cap=10**6)
    assert plan is not None
    assert [m.content for m in plan.tail] == ["u3", "a3"]  # moved forward to a user message
    plan = plan_compression(conversation(), tail_tokens=0, protect_last_n=6, tail_cap=10**6)
    assert plan is not None and plan.tail[0].content == "u2"
    assert plan_compression(conversation(), tail_tokens=0, protect_last_n=8, tail_cap=10**6) is None


def test_the_active_context_starts_at_the_latest_summary() -> None:
    stored = conversation()
    summary = StoredMessage(role="system", content="S", meta={"compaction": {"through": 5}})
    summary.id = 9
    context = active_context([*stored, summary])
    assert context[0] == {"role": "user", "content": SUMMARY_PREFIX + "S"}
    assert [m["content"] for m in context[1:]] == ["a2", "u3", "a3"]
    # The next plan folds the previous summary in, never the messages it already covers.
    plan = plan_compression([*stored, summary], tail_tokens=0, protect_last_n=2, tail_cap=10**6)
    assert plan is not None and plan.previous is summary
    assert [m.content for m in plan.head] == ["a2"]


def test_estimates_and_thresholds() -> None:
    assert estimate_tokens([{"role": "user", "content": "x" * 400}]) == 104
    calls = [{"function": {"name": "terminal", "arguments": '{"command": "ls"}'}}]
    assert estimate_tokens([{"role": "assistant", "content": None, "tool_calls": calls}]) > 4
    assert effective_threshold(0.5, 8_000) == 0.75  # Hermes' floor below 512K
    assert effective_threshold(0.9, 8_000) == 0.9
    assert effective_threshold(0.5, 1_000_000) == 0.5
    assert context_share(54_000, 128_000) == "42% of 128k"
    assert context_share(1, 0) == "window unknown"
