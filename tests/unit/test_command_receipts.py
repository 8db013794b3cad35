"""Command receipts in the store (``store/command_receipts.py``): keys, states, pruning."""

from __future__ import annotations

import time
from pathlib import Path

from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.store import SessionStore
from hermes_gateway.store.command_receipts import KEEP, MAX_KEY, CommandReceipts, receipt_key

SOURCE = SessionSource(platform="telegram", chat_id="5", user_id="5")


def event(message_id: str | None, **kw: object) -> MessageEvent:
    return MessageEvent(text="/new", source=SOURCE, message_id=message_id, **kw)  # type: ignore[arg-type]


def test_keys_are_the_inboxs_form_bounded_and_absent_without_an_id() -> None:
    assert receipt_key(event("12")) == "telegram:dm:5#12"
    assert receipt_key(event(None)) is None
    assert receipt_key(event("")) is None
    assert receipt_key(event("12", from_operator=True)) is None
    huge = receipt_key(event("9" * 10_000))
    surrogate = receipt_key(event("a\ud800b"))
    assert huge is not None and huge.startswith("sha256:") and len(huge) <= MAX_KEY
    assert surrogate is not None and surrogate.startswith("sha256:")
    assert receipt_key(event("9" * 10_000)) == huge  # the same id, the same key
    other = SessionSource(platform="telegram", chat_id="6", user_id="6")
    assert receipt_key(MessageEvent(text="/new", source=other, message_id="12")) != receipt_key(
        event("12")
    )


async def test_a_claim_is_taken_once_and_moves_running_answered_done(tmp_path: Path) -> None:
    async with await SessionStore.open(tmp_path / "s.db") as store:
        receipts = CommandReceipts(store)
        assert await receipts.claim("telegram", "k#1", "new") is None
        again = await receipts.claim("telegram", "k#1", "undo")  # what is kept is the first
        assert again is not None and (again.command, again.state) == ("new", "running")
        assert await receipts.claim("mattermost", "k#1", "new") is None  # another platform
        await receipts.answered("telegram", "k#1", "New session started (x).")
        again = await receipts.claim("telegram", "k#1", "new")
        assert again is not None and (again.state, again.reply) == (
            "answered",
            "New session started (x).",
        )
        await receipts.done("telegram", "k#1")
        again = await receipts.claim("telegram", "k#1", "new")
        assert again is not None and (again.state, again.reply) == ("done", None)


async def test_receipts_past_the_window_are_pruned_and_newer_ones_kept(tmp_path: Path) -> None:
    async with await SessionStore.open(tmp_path / "s.db") as store:
        receipts = CommandReceipts(store)
        await receipts.claim("telegram", "old#1", "new")
        await receipts.claim("telegram", "new#2", "new")
        await store.write_sync(
            lambda c: c.execute(
                "UPDATE command_receipts SET received_at = ? WHERE dedupe_key = 'old#1'",
                (time.time() - KEEP - 60,),
            )
        )
        assert await receipts.prune() == 1
        assert await receipts.claim("telegram", "new#2", "new") is not None  # still known
        assert await receipts.claim("telegram", "old#1", "new") is None  # forgotten: new again
