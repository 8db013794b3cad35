"""One platform's answer wiring (delivery/answer_turn.py): text, then uploads, typing around it.

The platform here is a small in-memory adapter that records what it is asked to send, upload
and show; the delivery pieces (FinalOnlyDelivery, MediaTurn, TypingTurn, the workspace
boundary) are the real ones.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hermes_gateway.agent.tools.boundary import workspace_for
from hermes_gateway.delivery.answer_turn import AnswerTurns
from hermes_gateway.delivery.errors import DeliveryError
from hermes_gateway.models import SessionSource
from hermes_gateway.platforms.base import FinalOnlyDelivery, PlatformAdapter, TurnDelivery

SOURCE = SessionSource(platform="memo", chat_id="chat-1", user_id="u1")


class MemoAdapter(PlatformAdapter):
    """Records every call the answer wiring makes, in order."""

    name = "memo"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.typed = asyncio.Event()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, source: SessionSource, text: str) -> None:
        self.calls.append(("send", text))

    async def upload(self, chat: str, path: Path) -> None:
        self.calls.append(("upload", f"{chat}:{path.name}"))

    async def typing(self, chat: str) -> None:
        self.calls.append(("typing", chat))
        self.typed.set()

    async def typing_off(self, chat: str) -> None:
        self.calls.append(("off", chat))
        raise DeliveryError("the platform refused; the answer is delivered all the same")


def answers(home: Path, adapter: MemoAdapter, **kw: object) -> AnswerTurns:
    return AnswerTurns("memo", home, **kw)  # type: ignore[arg-type]


def final_only(wiring: AnswerTurns, adapter: MemoAdapter, source: SessionSource) -> TurnDelivery:
    """As Signal and WhatsApp wire it: the answer sent once, complete."""
    return wiring.around(FinalOnlyDelivery(adapter, source), source, source.chat_id)


async def test_final_only_sends_text_then_workspace_files_and_stops_typing(tmp_path: Path):
    adapter = MemoAdapter()
    wiring = answers(
        tmp_path,
        adapter,
        upload=adapter.upload,
        typing=adapter.typing,
        typing_every=0.01,
        typing_off=adapter.typing_off,
    )
    workspace = workspace_for(tmp_path, "memo", SOURCE.session_key)
    workspace.mkdir(parents=True)
    (workspace / "chart.png").write_bytes(b"png")
    outside = tmp_path / ".env"
    outside.write_text("SECRET=1")

    turn = final_only(wiring, adapter, SOURCE)
    turn.on_delta("ignored: final-only sends once")
    await asyncio.wait_for(adapter.typed.wait(), 10)
    refreshers = [t for t in asyncio.all_tasks() if t.get_name() == "memo-typing:chat-1"]
    await turn.finish(
        f"Here it is\nMEDIA:{workspace / 'chart.png'}\nMEDIA:{outside}",
        interrupted=False,
        error=None,
    )
    assert [c for c in adapter.calls if c[0] != "typing"] == [
        ("send", f"Here it is\n\nMEDIA:{outside}"),  # a file outside the workspace stays text
        ("upload", "chat-1:chart.png"),
        ("off", "chat-1"),  # its refusal does not fail the turn
    ]
    assert ("typing", "chat-1") in adapter.calls
    # finish cancelled the refresher: no typing after the answer
    await asyncio.wait(refreshers, timeout=10)
    assert refreshers and all(t.cancelled() for t in refreshers)


async def test_without_upload_or_typing_the_text_goes_alone(tmp_path: Path):
    adapter = MemoAdapter()
    workspace = workspace_for(tmp_path, "memo", SOURCE.session_key)
    workspace.mkdir(parents=True)
    (workspace / "a.txt").write_text("a")
    turn = final_only(answers(tmp_path, adapter), adapter, SOURCE)
    await turn.finish(f"text\nMEDIA:{workspace / 'a.txt'}", interrupted=True, error=None)
    assert adapter.calls == [("send", f"text\nMEDIA:{workspace / 'a.txt'}\n\n(interrupted)")]


async def test_cancel_stops_every_running_refresher(tmp_path: Path):
    adapter = MemoAdapter()
    wiring = answers(tmp_path, adapter, typing=adapter.typing, typing_every=0.01)
    other = SessionSource(platform="memo", chat_id="chat-2")
    first, second = final_only(wiring, adapter, SOURCE), final_only(wiring, adapter, other)
    assert len(wiring.live) == 2
    await asyncio.wait_for(adapter.typed.wait(), 10)
    wiring.cancel()
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("memo-typing:")]
    await asyncio.wait(tasks, timeout=10)
    assert tasks and all(t.cancelled() for t in tasks)
    del first, second
