"""Run the app so that SIGTERM, SIGHUP and SIGINT end it through its own clean shutdown.

Without this, SIGHUP (the terminal window closed, ``kill -HUP``) killed the process on the
spot: the gateway never stopped and the terminal was left in raw mode, on the alternate screen,
with mouse reporting on. Textual restores the terminal whenever the app exits through its own
shutdown, so each signal is turned into the app's quit action (which stops the gateway, then
exits); a second signal while that is under way exits at once.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from textual.app import App

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class _Stopper:
    def __init__(self, app: App[Any]) -> None:
        self.app = app
        self.signals = 0

    def __call__(self) -> None:
        self.signals += 1
        if self.signals == 1:
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
