"""Streaming answers and tool progress into a chat through the shared rate gate.

The transport here is an in-memory stand-in for a platform (the real Telegram and Discord
transports are tested against fake servers elsewhere): it keeps the chat's messages,
enforces the size limit, answers "not modified" like the platforms do, and can be scripted
to fail given calls with 429s or permanent edit failures.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable

import pytest

from hermes_gateway.delivery.chunking import split_message, utf16_len
from hermes_gateway.delivery.errors import (
    DeliveryError,
    EditFailed,
    MessageGone,
    MessageNotModified,
    PermanentDeliveryError,
    RetryAfter,
)
from hermes_gateway.delivery.rate_gate import RateGate
from hermes_gateway.delivery.stream_consumer import StreamConsumer, StreamingTurn
from hermes_gateway.delivery.tool_progress import ToolProgressMessage

CURSOR = " ▌"
Fault = Callable[[str, int, str], BaseException | None]


class MemoryChat:
    """In-memory platform: records every call, applies the limit, injects faults."""

    def __init__(self, limit: int = 4096, measure: Callable[[str], int] = len) -> None:
        self.limit = limit
        self._measure = measure
        self.messages: dict[str, str] = {}  # id -> text, in sending order
        self.history: dict[str, list[str]] = {}  # id -> every text it showed
        self.sends: list[str] = []  # successful sends
        self.edits: list[tuple[str, str]] = []  # successful edits
        self.attempts: list[tuple[str, str]] = []  # (kind, text) for every call
        self.fault: Fault | None = None
        self._next = 100

    def measure(self, text: str) -> int:
        return self._measure(text)

    def _check(self, kind: str, text: str) -> None:
        self.attempts.append((kind, text))
        if self.fault is not None:
            exc = self.fault(kind, len(self.attempts), text)
            if exc is not None:
                raise exc
        if not text.strip():
            raise DeliveryError("message text is empty")
        if self._measure(text) > self.limit:
            raise DeliveryError(f"message is too long ({self._measure(text)} > {self.limit})")

    async def send_text(self, chat: str, text: str) -> str:
        await asyncio.sleep(0)
        self._check("send", text)
        self._next += 1
        mid = str(self._next)
        self.messages[mid] = text
        self.history[mid] = [text]
        self.sends.append(text)
        return mid

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        await asyncio.sleep(0)
        self._check("edit", text)
        if message_id not in self.messages:
            raise MessageGone("message to edit not found")
        if self.messages[message_id] == text:
            raise MessageNotModified("message is not modified")
        self.messages[message_id] = text
        self.history[message_id].append(text)
        self.edits.append((message_id, text))

    @property
    def texts(self) -> list[str]:
        return list(self.messages.values())


def make(
    limit: int = 4096, measure: Callable[[str], int] = len, **kw: object
) -> tuple[MemoryChat, RateGate, StreamConsumer]:
    chat = MemoryChat(limit, measure)
    gate = RateGate(per_chat_interval=0.001, max_retries=kw.pop("max_retries", 5))  # type: ignore[arg-type]
    opts: dict[str, object] = {"first_send_chars": 20, "edit_interval": 0.004}
    opts.update(kw)
    consumer = StreamConsumer(chat, "chat-1", gate, **opts)  # type: ignore[arg-type]
    return chat, gate, consumer


async def eventually(cond: Callable[[], bool]) -> None:
    """Wait (bounded) for background delivery to reach a state."""
    async with asyncio.timeout(2.0):
        while not cond():  # noqa: ASYNC110 - the state lives in a test double, no event
            await asyncio.sleep(0.002)


async def stream(consumer: StreamConsumer, text: str, step: int = 7, pause: float = 0.001) -> None:
    for i in range(0, len(text), step):
        consumer.feed(text[i : i + step])
        await asyncio.sleep(pause)


ANSWER = (
    "Sure! Here is how the **rate gate** works.\n\n"
    "Every send and edit for a chat goes through one queue, in order, paced.\n\n"
    "```python\nasync def run(self, chat_key, op):\n    return await op()\n```\n\n"
    "- ordered\n- paced\n- retried after 429\n\nThat's all."
)


async def test_progressive_edits_end_in_exactly_the_final_text() -> None:
    chat, gate, consumer = make()
    await stream(consumer, ANSWER)
    await eventually(lambda: chat.texts == [ANSWER + CURSOR])
    assert len(chat.sends) == 1, "one message, edited as the answer grows"
    assert len(chat.edits) >= 3
    assert chat.texts[0].endswith(CURSOR)
    assert all(text.endswith(CURSOR) for _, text in chat.edits)
    ids = await consumer.finish(ANSWER)
    assert chat.texts == [ANSWER]
    assert ids == list(chat.messages)
    # Streamed states grew monotonically towards the answer.
    shown = [t.removesuffix(CURSOR) for t in chat.history[ids[0]]]
    assert all(ANSWER.startswith(s) for s in shown)
    assert len(chat.sends) == 1
    await gate.aclose()


async def test_first_send_waits_for_enough_text() -> None:
    chat, gate, consumer = make(first_send_chars=30)
    consumer.feed("Hello ")
    consumer.feed("there, ")
    await asyncio.sleep(0.02)
    assert chat.attempts == []
    consumer.feed("this is now long enough to show.")
    await eventually(lambda: bool(chat.sends))
    assert chat.sends == ["Hello there, this is now long enough to show." + CURSOR]
    await consumer.finish("Hello there, this is now long enough to show.")
    assert chat.texts == ["Hello there, this is now long enough to show."]
    await gate.aclose()


async def test_short_answer_is_sent_once_at_finish() -> None:
    chat, gate, consumer = make(first_send_chars=40)
    consumer.feed("Hi!")
    ids = await consumer.finish("Hi!")
    assert chat.sends == ["Hi!"] and chat.edits == []
    assert ids == list(chat.messages)
    await gate.aclose()


async def test_finish_without_any_stream_and_blank_answer() -> None:
    chat, gate, consumer = make()
    assert await consumer.finish("   ") == []
    assert chat.attempts == []
    chat2, gate2, consumer2 = make(limit=50)
    text = "word " * 40
    await consumer2.finish(text.strip())
    assert chat2.texts == split_message(text.strip(), 50)
    await gate.aclose()
    await gate2.aclose()


class SteppedClock:
    """A clock that moves only when the test says so; sleepers wake as it passes them.

    Shared by the consumer and its rate gate, so the whole delivery runs on virtual time.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, wake))
        await wake

    async def advance(self, seconds: float) -> None:
        """Let everything due now run, move the clock, then run what that woke."""
        await settle()
        self.now += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self.now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self.now and not f.done()]
        for _, wake in due:
            if not wake.done():
                wake.set_result(None)
        await settle()


async def settle() -> None:
    """Run the loop until in-memory delivery has nothing left to do at this instant.

    Every step here is in memory (no sockets, no real sleeps), so a fixed number of loop
    turns reaches the same state on every run.
    """
    for _ in range(30):
        await asyncio.sleep(0)


class TimedChat(MemoryChat):
    """A MemoryChat that notes the virtual time of every successful send and edit."""

    def __init__(self, clock: SteppedClock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[tuple[float, str, int]] = []  # (time, kind, shown length)

    async def send_text(self, chat: str, text: str) -> str:
        mid = await super().send_text(chat, text)
        self.at.append((self.clock.now, "send", len(text)))
        return mid

    async def edit_text(self, chat: str, message_id: str, text: str) -> None:
        await super().edit_text(chat, message_id, text)
        self.at.append((self.clock.now, "edit", len(text)))


async def test_edits_are_paced_by_edit_interval() -> None:
    # Why virtual time: on a loaded machine real sleeps stretch, and a pacing test on them
    # can only bound the count loosely. Here every round's instant and content is exact.
    # Steps of 1/16 s and an interval of 1 s are exact binary fractions: no rounding.
    clock = SteppedClock()
    chat = TimedChat(clock)
    gate = RateGate(per_chat_interval=0.001, clock=clock.monotonic, sleep=clock.sleep)
    consumer = StreamConsumer(
        chat, "chat-1", gate, first_send_chars=5, edit_interval=1.0, clock=clock
    )
    step = 1 / 16
    for _ in range(100):  # 400 characters, 4 every 1/16 s: 6.25 s of streaming
        consumer.feed("xxxx")
        await clock.advance(step)
    await consumer.finish("x" * 400)

    # The first round as soon as 5 characters are there (8 at t=1/16), then one round per
    # second, each showing everything streamed by then, then the final edit at finish().
    streamed = [(t, kind) for t, kind, _ in chat.at]
    assert streamed == [
        (1 / 16, "send"),
        *((k + 1 / 16, "edit") for k in range(1, 7)),
        (100 / 16, "edit"),
    ]
    cursor = len(CURSOR)
    shown = [n for _, _, n in chat.at]
    assert shown == [8 + cursor, *(4 * (16 * k + 1) + cursor for k in range(1, 7)), 400]
    assert chat.texts == ["x" * 400]
    await gate.aclose()


LONG = "\n\n".join(
    [
        "# Report",
        "A long answer that does not fit in one message, with paragraphs.",
        *(f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 5 for i in range(8)),
        "```sh\n" + "\n".join(f"echo line {i}" for i in range(25)) + "\n```",
        "Closing words.",
    ]
)


async def test_long_answer_continues_in_new_messages() -> None:
    chat, gate, consumer = make(limit=300)
    await stream(consumer, LONG, step=13)
    await eventually(lambda: len(chat.messages) >= 3)  # chunks frozen while streaming
    ids = await consumer.finish(LONG)
    expected = split_message(LONG, 300)
    assert chat.texts == expected
    assert len(ids) == len(expected)
    assert len(chat.sends) == len(expected)  # no message was sent twice
    # A frozen message never changed again once it showed its final chunk.
    for mid, final in zip(ids, expected, strict=True):
        hist = chat.history[mid]
        assert final in hist
        assert all(h == final for h in hist[hist.index(final) :])
    await gate.aclose()


async def test_telegram_utf16_limit_with_emoji_stream() -> None:
    chat, gate, consumer = make(limit=120, measure=utf16_len)
    text = " ".join(["🚀 launch", "👍🏽 ok", "é", "家族👨‍👩‍👧"] * 40)
    await stream(consumer, text, step=9)
    await consumer.finish(text)
    assert chat.texts == split_message(text, 120, measure=utf16_len)
    assert all(utf16_len(t) <= 120 for h in chat.history.values() for t in h)
    await gate.aclose()


async def test_429_storm_loses_nothing_and_duplicates_nothing() -> None:
    chat, gate, consumer = make(limit=250, max_retries=100)
    rng = random.Random(3)
    chat.fault = lambda kind, n, text: RetryAfter(0.001) if rng.random() < 0.5 else None
    await stream(consumer, LONG, step=17)
    ids = await consumer.finish(LONG)
    expected = split_message(LONG, 250)
    assert chat.texts == expected
    assert len(chat.sends) == len(expected) == len(ids)
    refused = sum(1 for kind, _ in chat.attempts) - len(chat.sends) - len(chat.edits)
    assert refused >= 10, "the storm really happened"
    await gate.aclose()


async def test_edit_failure_falls_back_to_new_messages() -> None:
    """Every edit refused ("too old"): one message stays as the platform froze it (nothing
    can change it), the rest arrives once, starting at a word start, never mid-word."""
    chat, gate, consumer = make(limit=200)
    chat.fault = lambda kind, n, text: EditFailed("too old") if kind == "edit" else None
    await stream(consumer, LONG, step=11)
    await consumer.finish(LONG)
    texts = chat.texts
    assert len(chat.edits) == 0
    assert [k for k, _ in chat.attempts].count("edit") == 2, "one refused edit, one last try"
    assert texts[0].endswith(CURSOR), "the first message is stuck as it was"
    assert not any(t.endswith(CURSOR) for t in texts[1:])
    stuck = no_cursor(texts[0])
    assert LONG.startswith(stuck)
    resume = LONG.rfind(texts[1].split()[0], 0, len(stuck) + 1)
    assert 0 < resume <= len(stuck) and LONG[resume - 1].isspace(), "a word start"
    assert texts[1:] == split_message(LONG[resume:], 200)
    assert all(len(t) <= 200 for t in texts)
    await gate.aclose()


PROSE = " ".join(
    f"Sentence number {i} explains one more detail of the plan, calmly." for i in range(40)
)


def assert_clean_cover(texts: list[str], answer: str) -> None:
    """No cursor, each message ends where a word ends, together exactly the answer."""
    assert not any(CURSOR.strip() in t for t in texts)
    pos = 0
    for t in texts:
        at = answer.find(t, pos)
        assert at >= 0 and not answer[pos:at].strip(), (pos, at, t[:40])
        pos = at + len(t)
        assert pos == len(answer) or answer[pos].isspace(), f"mid-word end: {t[-30:]!r}"
    assert pos == len(answer)


async def test_refused_edit_ends_the_message_cleanly_and_streams_on() -> None:
    chat, gate, consumer = make(limit=300)
    refused: list[str] = []

    def fault(kind: str, n: int, text: str) -> BaseException | None:
        if kind == "edit" and not refused and len(text) > 120:
            refused.append(text)
            return EditFailed("Bad Request: message can't be edited")
        return None

    chat.fault = fault
    await stream(consumer, PROSE, step=9)
    await consumer.finish(PROSE)
    assert refused, "an edit was refused mid-stream"
    assert_clean_cover(chat.texts, PROSE)
    first = chat.texts[0]
    assert refused[0].removesuffix(CURSOR).startswith(first) and first.endswith("calmly.")
    assert len(chat.sends) == len(chat.texts), "nothing sent twice"
    await gate.aclose()


async def test_refused_edit_inside_code_closes_and_reopens_the_block() -> None:
    code = "\n".join(f"step_{i} = run({i})" for i in range(40))
    answer = f"Here is the script:\n\n```python\n{code}\n```\n\nDone."
    chat, gate, consumer = make(limit=4096)
    refused: list[str] = []

    def fault(kind: str, n: int, text: str) -> BaseException | None:
        if kind == "edit" and not refused and "step_12" in text:
            refused.append(text)
            return EditFailed("message can't be edited")
        return None

    chat.fault = fault
    await stream(consumer, answer, step=13)
    await consumer.finish(answer)
    first, *rest = chat.texts
    assert first.startswith("Here is the script:") and first.endswith("\n```")
    assert rest[0].startswith("```python\n")
    assert not any(CURSOR.strip() in t for t in chat.texts)
    assert no_fences("\n".join(chat.texts)) == no_fences(answer)
    await gate.aclose()


async def test_deleted_message_is_sent_again() -> None:
    chat, gate, consumer = make(limit=4096)
    text = PROSE[:1500]
    await stream(consumer, text[:400], step=9)
    await eventually(lambda: bool(chat.edits))
    deleted = next(iter(chat.messages))
    del chat.messages[deleted]  # a moderator deleted the message being written
    await stream(consumer, text[400:], step=9)
    ids = await consumer.finish(text)
    assert chat.texts == [text], "the deleted part came back, once"
    assert deleted not in ids[1:] and len(ids) == 2
    await gate.aclose()


async def test_deleted_later_message_is_sent_again_and_the_rest_follows() -> None:
    chat, gate, consumer = make(limit=300)
    await stream(consumer, LONG[:1200], step=9)
    await eventually(lambda: len(chat.messages) >= 3)
    deleted = list(chat.messages)[-1]
    del chat.messages[deleted]
    await stream(consumer, LONG[1200:], step=9)
    await consumer.finish(LONG)
    assert chat.texts == split_message(LONG, 300)
    await gate.aclose()


async def test_a_moderator_deleting_everything_stops_streaming_but_loses_nothing() -> None:
    chat, gate, consumer = make(limit=4096)
    deletions = 0

    def fault(kind: str, n: int, text: str) -> BaseException | None:
        nonlocal deletions
        if kind == "edit" and chat.messages:
            deletions += 1
            chat.messages.clear()
        return None

    chat.fault = fault
    await stream(consumer, PROSE, step=9)
    chat.fault = None
    await consumer.finish(PROSE)
    assert chat.texts == [PROSE]
    assert 4 <= deletions and len(chat.sends) <= 5 + 1


def no_fences(text: str) -> str:
    """Text without fence lines and whitespace (chunking adds fences around splits)."""
    return "".join(re.sub(r"^(```|~~~)\w*$", "", text, flags=re.M).split())


def no_cursor(text: str) -> str:
    return text.removesuffix(CURSOR)


async def test_edit_failure_only_at_finish() -> None:
    chat, gate, consumer = make()
    text = "The answer begins here and keeps going for a while. " * 3
    await stream(consumer, text)
    await eventually(lambda: chat.texts == [text + CURSOR])
    chat.fault = lambda kind, n, t: EditFailed("deleted") if kind == "edit" else None
    await consumer.finish(text.strip())
    stuck = chat.texts[0].removesuffix(CURSOR)
    rest = "".join(chat.texts[1:])
    assert "".join((stuck + rest).split()) == "".join(text.split())
    await gate.aclose()


async def test_message_not_modified_is_not_an_error() -> None:
    chat, gate, consumer = make()
    edits_seen = 0

    def fault(kind: str, n: int, text: str) -> BaseException | None:
        nonlocal edits_seen
        if kind != "edit":
            return None
        edits_seen += 1
        if edits_seen <= 2:
            return MessageNotModified("message is not modified")
        if text == ANSWER:
            # An earlier attempt landed although its answer was lost: the platform already
            # shows the final text and says so.
            chat.messages[next(iter(chat.messages))] = text
            return MessageNotModified("message is not modified")
        return None

    chat.fault = fault
    await stream(consumer, ANSWER)
    ids = await consumer.finish(ANSWER)
    assert chat.texts == [ANSWER]
    assert ids == list(chat.messages)
    assert len(chat.sends) == 1
    await gate.aclose()


async def test_abort_finalises_what_was_shown_with_a_note() -> None:
    chat, gate, consumer = make()
    partial = ANSWER[:120]
    await stream(consumer, partial)
    await eventually(lambda: bool(chat.sends))
    await consumer.abort("(interrupted)")
    assert chat.texts == [partial.rstrip() + "\n\n(interrupted)"]
    assert not any(t.endswith(CURSOR) for t in chat.texts)
    await gate.aclose()


async def test_final_text_different_from_stream_is_corrected() -> None:
    chat, gate, consumer = make(limit=200)
    await stream(consumer, LONG[:700])
    final = "Actually, a short answer."
    await consumer.finish(final)
    assert chat.texts[0] == final
    assert all(t == "…" for t in chat.texts[1:])
    await gate.aclose()


async def test_permanent_error_reaches_finish() -> None:
    chat, gate, consumer = make()
    chat.fault = lambda kind, n, text: PermanentDeliveryError("bot was blocked")
    await stream(consumer, ANSWER)
    with pytest.raises(PermanentDeliveryError):
        await consumer.finish(ANSWER)
    await gate.aclose()


# -- tool progress ------------------------------------------------------------------


async def run_tools(progress: ToolProgressMessage) -> None:
    await progress.tool_started("terminal", "ls -la")
    await progress.tool_finished("terminal", True, 0.4, "total 0")
    await progress.tool_started("terminal", "git status")
    await progress.tool_finished("terminal", False, 1.25, "fatal: not a git repository")
    await progress.tool_started("read_file", "README.md")
    await progress.tool_finished("read_file", True, 0.02, "# Hermes")
    await progress.flush()


async def test_tool_progress_all_collects_lines_in_one_message() -> None:
    chat = MemoryChat()
    gate = RateGate(per_chat_interval=0.001)
    progress = ToolProgressMessage(chat, "chat-1", gate, "all")
    await run_tools(progress)
    assert len(chat.sends) == 1
    assert chat.texts == [
        "✓ terminal: ls -la (0.4s)\n✗ terminal: git status (1.2s)\n✓ read_file: README.md (0.0s)"
    ]
    assert progress.message_ids == list(chat.messages)
    await gate.aclose()


async def test_tool_progress_new_shows_each_tool_once() -> None:
    chat = MemoryChat()
    gate = RateGate(per_chat_interval=0.001)
    progress = ToolProgressMessage(chat, "chat-1", gate, "new")
    await run_tools(progress)
    assert chat.texts == ["✓ terminal: ls -la (0.4s)\n✓ read_file: README.md (0.0s)"]
    await gate.aclose()


async def test_tool_progress_verbose_adds_previews() -> None:
    chat = MemoryChat()
    gate = RateGate(per_chat_interval=0.001)
    progress = ToolProgressMessage(chat, "chat-1", gate, "verbose")
    await progress.tool_started("terminal", "ls -la")
    await progress.flush()
    assert chat.texts == ["⚙ terminal: ls -la"]
    await progress.tool_finished("terminal", True, 0.4, "total 0\ndrwxr-xr-x 2 root")
    await progress.flush()
    assert chat.texts == ["⚙ terminal: ls -la\n✓ terminal 0.4s: total 0 drwxr-xr-x 2 root"]
    assert len(chat.sends) == 1 and len(chat.edits) == 1
    await gate.aclose()


async def test_tool_progress_off_sends_nothing() -> None:
    chat = MemoryChat()
    gate = RateGate(per_chat_interval=0.001)
    progress = ToolProgressMessage(chat, "chat-1", gate, "off")
    await run_tools(progress)
    assert chat.attempts == []
    with pytest.raises(ValueError):
        ToolProgressMessage(chat, "chat-1", gate, "loud")  # type: ignore[arg-type]
    await gate.aclose()


async def test_tool_progress_overflows_into_a_new_message_and_survives_edit_failure() -> None:
    chat = MemoryChat(limit=60)
    gate = RateGate(per_chat_interval=0.001)
    progress = ToolProgressMessage(chat, "chat-1", gate, "all")
    for i in range(6):
        progress.on_tool_started(f"tool{i}", "x" * 10)
    await progress.flush()
    assert len(chat.messages) >= 2
    assert all(len(t) <= 60 for t in chat.texts)
    assert "\n".join(chat.texts).count("⚙") == 6
    chat.fault = lambda kind, n, text: EditFailed("gone") if kind == "edit" else None
    progress.on_tool_started("late", "y")
    await progress.flush()
    assert chat.texts[-1] == "⚙ late: y"
    await gate.aclose()


async def test_streaming_turn_orders_progress_and_answer_through_one_gate() -> None:
    chat = MemoryChat(limit=300)
    gate = RateGate(per_chat_interval=0.001)
    turn = StreamingTurn(
        chat, "chat-1", gate, tool_progress="all", first_send_chars=10, edit_interval=0.004
    )
    turn.on_tool_started("terminal", "pytest -q")
    turn.on_delta("Running the tests now, ")
    await asyncio.sleep(0.01)
    turn.on_tool_finished("terminal", True, 2.0, "5 passed")
    for word in "all five tests pass and the suite is green.".split():
        turn.on_delta(word + " ")
        await asyncio.sleep(0.001)
    final = "Running the tests now, all five tests pass and the suite is green."
    await turn.finish(final, interrupted=True, error=None)
    assert chat.texts == ["✓ terminal: pytest -q (2.0s)", final + "\n\n(interrupted)"]
    await gate.aclose()
