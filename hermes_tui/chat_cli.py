"""``hermes chat``: the classic line-mode chat, for dumb terminals, plain SSH and pipes.

One more client of the same core, like the TUI: it builds a :class:`Gateway` with the
terminal as its only platform and only the approvals feature (a dangerous command asks here,
as in the app's dialog; with nobody at a terminal it is refused), none that would act on
other chats (no cron ticker, no pairing), so it runs beside a gateway serving the same home instead of fighting it for the
home's lock (SQLite lets both write, taking turns). It drives the gateway through
:class:`OperatorControl` and prints what the event bus says: the answer as it streams, one
line per tool call, command replies. No Textual is imported.

* At a terminal: a prompt-toolkit prompt with history (the same input history as the TUI)
  and Tab completion of slash commands from the command registry; Ctrl+C stops the answer
  being written (at the prompt it clears the line), Ctrl+D or ``/quit`` leaves.
* ``hermes chat -q "..."`` answers once and exits; so does piped input (all of stdin is one
  message, after the ``-q`` text if both are given). The exit code is 1 if the answer failed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from hermes_gateway import events as ev
    from hermes_gateway.access.events import ApprovalRequested
    from hermes_gateway.config import Config
    from hermes_gateway.gateway import Gateway

__all__ = ["LineChat", "run"]

PROMPT = "you> "


def run(args: argparse.Namespace) -> int:
    from hermes_gateway.cli_support import run_with_config

    piped = None if sys.stdin.isatty() else sys.stdin.read().strip()
    query = "\n\n".join(p.strip() for p in (args.query, piped) if p and p.strip()) or None
    if piped is not None and query is None:
        print("hermes: nothing to ask (stdin was empty)", file=sys.stderr)
        return 2
    return run_with_config(lambda _args, config: _main(config, query), args)


async def _main(config: Config, query: str | None) -> int:
    from hermes_gateway.access.approvals import ApprovalsFeature
    from hermes_gateway.gateway import Gateway
    from hermes_gateway.logging_setup import setup_logging

    # Log lines go to the file: the terminal is the conversation's.
    setup_logging(config.paths.logs_dir, stderr=False, file_name="chat.log")
    # Approvals: a dangerous command asks here exactly as it asks in the app's dialog.
    gateway = Gateway(config, features=(ApprovalsFeature(),))
    await gateway.start(local=True, adapters=[], status_file=False, offer_import=False)
    try:
        chat = LineChat(gateway, sys.stdout)
        if query is not None:
            return await chat.ask_once(query)
        return await chat.interactive()
    finally:
        await gateway.stop()


class LineChat:
    """Prints the local chat's events as lines; see the module docstring."""

    def __init__(self, gateway: Gateway, out: TextIO) -> None:
        assert gateway.operator is not None
        self.gateway = gateway
        self.operator = gateway.operator
        self.out = out
        self.key = self.operator.local_key
        self.sub = gateway.bus.subscribe(name="line-chat")
        self._mid_line = False
        self._streamed = False
        self.session: Any = None
        """The prompt-toolkit session at a terminal (None: nobody to ask, approvals denied)."""

    # --- one question ------------------------------------------------------------------

    async def ask_once(self, text: str) -> int:
        try:
            ok = await self._exchange(text)
        except EOFError:  # "-q /quit": nothing more to do anyway
            return 0
        return 0 if ok else 1

    async def _exchange(self, text: str) -> bool:
        """Send one line and print what comes back until it is answered; False on failure."""
        self._streamed = False
        await self.operator.submit(self.key, text)
        from hermes_gateway.access.events import ApprovalRequested

        loop = asyncio.get_running_loop()
        stopping = False

        def interrupt() -> None:
            nonlocal stopping
            stopping = True
            self.operator.stop(self.key)

        # Ctrl+C stops the answer, not the program (only while one is being written).
        installed = _try_signal(loop, signal.SIGINT, interrupt)
        try:
            while True:
                event = await self.sub.get()
                if isinstance(event, ApprovalRequested) and event.session_key == self.key:
                    await self._approve(event)
                    continue
                done = self._show(event)
                if done is not None:
                    return done and not stopping
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)

    async def _approve(self, event: ApprovalRequested) -> None:
        """Ask the person at the terminal; with nobody there (a pipe, -q) the answer is no."""
        manager = self.gateway.approvals
        self._line(f"⚠ {event.tool} wants to run: {event.command}")
        self._line(f"  ({event.reason})")
        decision = "deny"
        if self.session is None:
            self._line("  denied: nobody at a terminal to ask (use `hermes chat` or the app)")
        else:
            from prompt_toolkit.patch_stdout import patch_stdout

            try:
                with patch_stdout(raw=True):
                    answer = await self.session.prompt_async(
                        "  allow? [o]nce, for this [s]ession, [N]o: "
                    )
            except (KeyboardInterrupt, EOFError):
                answer = ""
            decision = {"o": "once", "s": "session"}.get(answer.strip().lower()[:1], "deny")
        if manager is not None:
            manager.resolve(event.request_id, decision, by="chat")

    def _show(self, event: ev.GatewayEvent) -> bool | None:
        """Print one event; True/False when the exchange is over (ok or not), else None."""
        from hermes_gateway import events as ev

        if getattr(event, "session_key", self.key) not in (self.key, None):
            return None
        match event:
            case ev.AgentDelta(text=text):
                self._streamed = True
                if not self._mid_line:  # the break after a tool line is already there
                    text = text.lstrip("\n")
                if text:
                    self._write(text)
            case ev.ToolStarted(name=name, preview=preview):
                self._line(f"  ⚙ {name}: {preview}" if preview else f"  ⚙ {name}")
            case ev.ToolFinished(name=name, ok=ok, duration=duration, summary=summary):
                mark = "✓" if ok else "✗"
                tail = f" {summary}" if summary and not ok else ""
                self._line(f"  {mark} {name} ({duration:.1f}s){tail}")
            case ev.TurnFinished(interrupted=interrupted, error=error, text=text):
                if not self._streamed and text and not interrupted:
                    self._write(text)  # nothing streamed (a non-streaming reply)
                self._end_line()
                if interrupted:
                    self._line("⏹ stopped")
                if error:
                    self._line(f"error: {error}")
                return error is None and not interrupted
            case ev.CommandReplied(text=text, ok=ok, action=action):
                self._line(text)
                if action == "quit":
                    raise EOFError
                return ok
            case ev.Notice(text=text, level=level):
                self._line(f"[{level}] {text}" if level != "info" else text)
        return None

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
        self._mid_line = not text.endswith("\n")

    def _end_line(self) -> None:
        if self._mid_line:
            self.out.write("\n")
            self._mid_line = False
        self.out.flush()

    def _line(self, text: str) -> None:
        self._end_line()
        self.out.write(text + "\n")
        self.out.flush()

    def _drain(self) -> None:
        """Print what arrived while nobody asked (the import offer at start, ...)."""
        while (event := self.sub.get_nowait()) is not None:
            self._show(event)

    # --- at a terminal -----------------------------------------------------------------

    async def interactive(self) -> int:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        from hermes_tui.chat_complete import SlashCompleter

        history = InMemoryHistory()
        for line in await self.operator.input_history():
            history.append_string(line)
        session: PromptSession[str] = PromptSession(
            history=history,
            completer=SlashCompleter(self.operator.commands),
            complete_while_typing=True,
        )
        self.session = session
        if self.gateway.approvals is not None:
            self.gateway.approvals.operator_present = True  # someone here can answer
        model = self.gateway.config.model.name or "no model configured"
        self._line(f"Hermes chat ({model}). /help lists commands; Ctrl+D leaves.")
        offer = await self.gateway.import_offer()
        if offer:
            self._line(offer)
        self._drain()
        while True:
            try:
                with patch_stdout(raw=True):
                    text = await session.prompt_async(PROMPT)
            except KeyboardInterrupt:
                continue  # Ctrl+C at the prompt clears the line
            except EOFError:
                return 0
            if not text.strip():
                continue
            try:
                await self._exchange(text.strip())
            except EOFError:
                return 0
            self._drain()


def _try_signal(loop: asyncio.AbstractEventLoop, sig: int, handler: Any) -> bool:
    try:
        loop.add_signal_handler(sig, handler)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True
