"""Run the app so that SIGTERM, SIGHUP and SIGINT end it through its own clean shutdown.

Without this, SIGHUP (the terminal window closed, ``kill -HUP``) killed the process on the
spot: the gateway never stopped and the terminal was left in raw mode, on the alternate screen,
with mouse reporting on. Textual restores the terminal whenever the app exits through its own
shutdown, so each signal is turned into the app's quit action (which stops the gateway, then
exits); a second signal while that is under way exits at once.

When the terminal itself is gone (the window closed, tmux killed, SSH dropped) the kernel sends
SIGHUP and SIGCONT, and every write to the terminal fails: Textual's writer thread dies and its
shutdown then waits forever for it, with the process holding the home's lock. So SIGCONT no
longer resumes the screen once we are stopping, and a deadline ends the process if the screen's
shutdown hangs after the gateway had its time to stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from typing import Any

from textual.app import App

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
STUCK_AFTER_S = 20.0
"""From the first stop signal: the gateway's stop (at most 10 s) and the screen's must be done."""
SCREEN_GRACE_S = 3.0
"""Once the gateway has stopped, the screen's own shutdown gets this long."""

log = logging.getLogger(__name__)


def _exit_if_stuck(app: App[Any]) -> threading.Thread:
    """End the process if the app is still shutting down well after the gateway stopped.

    ``app.gateway_stopped`` (a threading.Event, when the app has one) marks the gateway's stop
    done: from then on only the screen is left, which needs no more than a moment."""

    def watch() -> None:
        stopped = getattr(app, "gateway_stopped", None)
        if isinstance(stopped, threading.Event) and stopped.wait(STUCK_AFTER_S):
            time.sleep(SCREEN_GRACE_S)
        else:
            time.sleep(STUCK_AFTER_S)
        log.error("the screen did not shut down (terminal gone?): exiting without it")
        logging.shutdown()
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-deadline", daemon=True)
    thread.start()  # daemon: a process that ends normally does not wait for it
    return thread


class _Stopper:
    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.signals = 0

    def __call__(self) -> None:
        self.signals += 1
        if self.signals == 1:
            # The SIGCONT that comes with a hang-up would restart the screen on a dead terminal.
            signal.signal(signal.SIGCONT, signal.SIG_DFL)
            _exit_if_stuck(self.app)
            self.app.call_later(self.app.action_quit)
        else:
            self.app.exit()


def run_until_signalled(app: App[Any]) -> None:
    """``app.run()``, with the stop signals routed into the app's quit action."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopper = _Stopper(app)
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stopper)
        try:
            await app.run_async()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    asyncio.run(main())
