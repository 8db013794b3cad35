"""Messages that arrive while a platform has not connected yet, or while the start's resume
runs, are this run's own: the resume of what the last run left must not answer them again.

Why: the resume runs on a platform's first "connected". A message received before that (a
webhook, a catch-up, a slow connect) is already being answered live; the resume read it from
the inbox as "taken" and answered it a second time.
"""

from __future__ import annotations

from hermes_gateway import events as ev
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import PlatformAdapter
from hermes_tui.assembly import build_gateway
from tests.conftest import make_config
from tests.fakes.openai_server import ScriptedReply
from tests.helpers import Recorder

ANN = SessionSource("latechat", "c1", user_id="ann", user_name="ann")


class LateChat(PlatformAdapter):
    """A platform that connects only when the test says so; records what is sent."""

    name = "latechat"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def start(self) -> None:
        self.report("connecting")

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        self.sent.append(text)


async def test_a_message_answered_live_before_the_first_connect_is_not_resumed(
    hermes_home, fake_openai
) -> None:
    config = make_config(hermes_home, fake_openai)
    config.allowed_users = ["ann"]
    gateway = build_gateway(config)
    chat = LateChat()
    rec = Recorder(gateway.bus)
    await gateway.start(local=False, adapters=[chat], offer_import=False)
    try:
        fake_openai.enqueue(ScriptedReply(text="the one answer", hold_at=[1]))
        await chat.dispatch(MessageEvent(text="hello", source=ANN, message_id="m1"))
        await rec.event(ev.TurnStarted, lambda e: e.session_key == ANN.session_key)
        await rec.wait_for(lambda: fake_openai.held == 1)
        chat.report("connected")  # the resume runs while the live turn is half-way
        fake_openai.release()
        await rec.event(ev.TurnFinished, lambda e: e.session_key == ANN.session_key)
        runner = gateway.runner
        assert runner is not None
        await rec.wait_for(lambda: not any(n.startswith("resume:") for n in runner.background))
        await runner.wait_idle()
        turns = rec.of(ev.TurnStarted)
        assert len(turns) == 1, turns
        assert len(fake_openai.requests) == 1
    finally:
        await gateway.stop()
