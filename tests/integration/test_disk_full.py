"""A full disk loses nothing: Telegram updates are not confirmed until they are stored.

HERMES_HOME lives on a small tmpfs that the test fills up. Messages sent meanwhile stay
unconfirmed on the (fake) Telegram side, the operator sees why in the Platforms state, and once
space is freed every message is stored and answered exactly once. Needs root to mount a
tmpfs (as in CI); skipped with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hermes_gateway import events as ev
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.integration.test_telegram_adapter import start_gateway, telegram_config

pytestmark = pytest.mark.slow
DM = 4242


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "3m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> Path:
    """Take every free byte of the file system holding ``path``."""
    filler = path / "filler.bin"
    with open(filler, "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    return filler


async def test_disk_full_leaves_updates_unconfirmed_then_answers_each_once(
    tmp_path: Path, fake_openai: FakeOpenAI, tg: FakeTelegram
) -> None:
    with small_tmpfs(tmp_path / "full-home") as home:
        # queue mode: each message is answered (interrupt mode would merge the follow-ups)
        config = telegram_config(home, fake_openai, tg, HERMES_BUSY_MODE="queue")
        h = await start_gateway(config, tg)
        try:
            tg.inject_message(DM, "before")
            await h.answered(1)
            filler = fill(home)
            for n in range(5):
                tg.inject_message(DM, f"while full {n}")
            await h.rec.wait_for(
                lambda: any("cannot store" in e.detail for e in h.rec.of(ev.PlatformStatus)),
                timeout=10,
            )
            assert tg.pending_updates == 5  # nothing confirmed that is not stored
            assert len(fake_openai.requests) == 1

            filler.unlink()  # space again: the next poll stores and answers them
            await h.rec.wait_for(lambda: "while full 4" in "".join(h.texts(DM)), timeout=20)
            await h.gw.runner.wait_idle()  # type: ignore[union-attr]
            await tg.wait_for(lambda: tg.pending_updates == 0, timeout=10)
            shown = "\n".join(h.texts(DM))
            for n in range(5):
                assert shown.count(f"while full {n}") == 1, shown
        finally:
            await h.stop()


async def test_a_command_runs_unrecorded_when_the_store_is_full(tmp_path: Path) -> None:
    """/stop, /help, /status must work when nothing can be written (on platforms whose
    adapter does not store updates first): the receipt that guards against a repeat is
    skipped, the operator told once, and the receipts resume when there is space again."""
    from hermes_gateway.models import MessageEvent, SessionSource
    from hermes_gateway.runner.command_guard import CommandGuard
    from hermes_gateway.store import SessionStore
    from tests.helpers import Recorder

    source = SessionSource(platform="mattermost", chat_id="c1", user_id="u1")

    def command(n: int) -> MessageEvent:
        return MessageEvent(text="/stop", source=source, message_id=f"post{n}")

    async def send(*_: object) -> bool:
        return True

    with small_tmpfs(tmp_path / "full-home") as home:
        bus = ev.EventBus()
        rec = Recorder(bus)
        async with await SessionStore.open(home / "state.db") as store:
            guard = CommandGuard(store, bus, send, lambda *_: None)
            filler = fill(home)
            assert await guard.admit(command(1), "stop")
            assert await guard.admit(command(2), "stop")
            await guard.replying(command(2), "Stopped.")  # no receipt: nothing written
            await guard.finished(command(2))
            notices = [n for n in rec.of(ev.Notice) if "Cannot record" in n.text]
            assert len(notices) == 1 and notices[0].level == "warning"
            filler.unlink()
            assert await guard.admit(command(3), "stop")  # recorded again
            assert not await guard.admit(command(3), "stop")  # so its repeat is dropped
        rec.close()
