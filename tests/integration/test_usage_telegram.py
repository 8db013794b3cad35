"""``/usage`` in a Telegram chat says how full the model's context is (the same figure the
TUI's status line shows after the turn), through the real adapter and the fake model."""

from __future__ import annotations

from hermes_gateway import events as ev
from tests.fakes.openai_server import ScriptedReply
from tests.integration.pairing_harness import PairingHarness, pairing_config

USER = 42
WINDOW = 8000


async def test_usage_in_a_chat_shows_context_use(hermes_home, fake_openai, tg):
    config = pairing_config(hermes_home, fake_openai, tg, TELEGRAM_ALLOWED_USERS=str(USER))
    config.model.context_length = WINDOW
    fake_openai.enqueue(ScriptedReply(text="Sure, noted.", prompt_tokens=1234, completion_tokens=6))
    h = await PairingHarness.start(config, tg)
    try:
        tg.inject_message(USER, "remember the blue door " * 20, user_id=USER)
        await h.message_to(USER, "Sure, noted.")
        (done,) = h.rec.of(ev.TurnFinished)
        assert done.context_length == WINDOW and done.context_tokens >= 1240
        tg.inject_message(USER, "/usage", user_id=USER)
        reply = (await h.message_to(USER, "Context:")).plain_text
    finally:
        await h.stop()
    used = done.context_tokens
    share = round(100 * used / WINDOW)
    assert f"Context: ~{used:,} of {WINDOW:,} tokens ({share}% of 8k)." in reply
    assert "Last turn: 1,234 + 6." in reply
