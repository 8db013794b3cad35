"""The status line's context use, in a tiny host app (no gateway).

Why: a person watching a long chat should see how full the model's window is before it
overflows, and that a compression or a reset emptied it.
"""

from __future__ import annotations

from textual.app import App, ComposeResult

from hermes_gateway import events as ev
from hermes_tui import gateway_messages as gm
from hermes_tui.widgets.status_line import StatusLine

KEY = "telegram:dm:42"


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")


def finished(key: str, used: int, window: int) -> gm.GatewayMessage:
    return gm.message_for(
        ev.TurnFinished(
            session_key=key,
            session_id="s1",
            turn_id=1,
            text="ok",
            context_tokens=used,
            context_length=window,
        )
    )


async def test_context_use_follows_turns_compressions_and_resets() -> None:
    async with Host().run_test() as pilot:
        line = pilot.app.query_one(StatusLine)
        line.show(KEY, title="chat", model="m", tokens=0, busy=False)
        line.post_message(finished(KEY, 54_000, 128_000))
        line.post_message(finished("other:dm:1", 120_000, 128_000))  # not the shown chat
        await pilot.pause()
        assert "context 42% of 128k" in line.render().plain
        line.post_message(
            gm.message_for(
                ev.ContextCompressed(
                    session_key=KEY,
                    session_id="s1",
                    tokens_before=54_000,
                    tokens_after=12_800,
                    context_length=128_000,
                )
            )
        )
        await pilot.pause()
        assert "context 10% of 128k" in line.render().plain
        line.post_message(
            gm.message_for(
                ev.SessionChanged(session_key=KEY, session_id="s2", reason="reset", expired="idle")
            )
        )
        await pilot.pause()
        assert "context" not in line.render().plain
