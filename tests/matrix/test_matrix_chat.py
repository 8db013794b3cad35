"""Matrix against a real Synapse: DMs, rooms and mentions, threads, streaming by edits."""

from __future__ import annotations

from hermes_gateway import events as ev
from tests.fakes.openai_server import ScriptedReply
from tests.matrix.conftest import MATRIX_TESTS
from tests.matrix.harness import matrix_gateway

pytestmark = MATRIX_TESTS


async def test_a_dm_is_answered_with_the_exact_text(hermes_home, fake_openai, synapse):
    async with matrix_gateway(hermes_home, fake_openai, synapse) as h:
        room = await h.dm()
        await h.say(room, "hello there")
        assert await h.wait_answers(room, 1) == ["echo: hello there"]
        [rt] = h.runner.sessions.values()
        assert rt.record.session_key.startswith("matrix:dm:")
        asked = [r["messages"][-1]["content"] for r in fake_openai.requests]
        assert asked == ["hello there"]
