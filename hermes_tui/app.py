"""The Hermes app: a thin shell that starts the gateway and shows the main screen.

The first frame is painted before anything heavy happens; the gateway (and with it openai,
aiohttp, the platform libraries) is started by a worker right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from hermes_gateway.config import Config
from hermes_tui.bridge import pump_events
from hermes_tui.screens.main import MainScreen
from hermes_tui.widgets.first_run import FirstRunPanel
from hermes_tui.widgets.prompt_input import PromptInput

log = logging.getLogger(__name__)


def _preload_heavy_libraries() -> None:
    """Import the network stack in a thread so the loop (and the screen) keep running."""
    import httpx  # noqa: F401
    import openai  # noqa: F401
    from textual.highlight import highlight

    # The first highlighted code block loads pygments' lexers: do it here, not mid-answer.
    for language in ("python", "bash", "json"):
        highlight("x = 1", language=language)


class HermesApp(App[None]):
    CSS_PATH = "hermes.tcss"
    TITLE = "Hermes"
    BINDINGS = [
        Binding("ctrl+c", "interrupt", "Stop answer", id="app.interrupt", priority=True),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("ctrl+n", "new_session", "New session", id="app.new_session"),
        Binding("f1", "show_help", "Help", id="app.help"),
    ]

    def __init__(
        self,
        config: Config | None,
        config_error: str | None = None,
        *,
        discover_servers: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.config_error = config_error
        self.discover_servers = discover_servers
        self.gateway = None
        self.main_screen = MainScreen()
        self._stopped = False

    def get_default_screen(self) -> Screen:
        return self.main_screen

    def on_mount(self) -> None:
        if self.config is not None:
            with contextlib.suppress(Exception):
                self.theme = self.config.display.theme
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGTERM, lambda: self.call_later(self.action_quit)
            )
        self.call_after_refresh(self._boot)

    def _boot(self) -> None:
        if self.config is None:
            self.call_later(self.main_screen.show_config_error, self.config_error or "unknown")
            return
        self.start_gateway()

    @work(name="gateway-start", group="gateway", exit_on_error=False)
    async def start_gateway(self) -> None:
        from hermes_gateway.gateway import Gateway
        from hermes_gateway.logging_setup import setup_logging

        assert self.config is not None
        await asyncio.to_thread(setup_logging, self.config.paths.logs_dir, stderr=False)
        await asyncio.to_thread(_preload_heavy_libraries)
        gateway = Gateway(self.config)
        sub = gateway.bus.subscribe(name="tui", maxsize=20_000)
        self.run_worker(
            pump_events(sub, self.main_screen), name="event-bridge", exit_on_error=False
        )
        try:
            await gateway.start(local=True)
        except Exception as exc:
            log.exception("gateway failed to start")
            await self.main_screen.show_config_error(f"the gateway could not start: {exc}")
            return
        self.gateway = gateway
        await self.main_screen.gateway_ready(gateway)
        if not self.config.model.configured:
            panel = await self.main_screen.show_first_run(str(self.config.paths.config_file))
            if self.discover_servers:
                self._discover(panel)

    @work(name="discover-servers", exit_on_error=False)
    async def _discover(self, panel: FirstRunPanel) -> None:
        from hermes_gateway.discovery import discover

        await panel.show_servers(await discover())

    def on_first_run_panel_use_server(self, message: FirstRunPanel.UseServer) -> None:
        assert self.config is not None
        self.config.model.base_url = message.server.base_url
        self.config.model.name = message.model
        written = _write_model_config(
            self.config.paths.config_file, message.server.base_url, message.model
        )
        where = (
            f"saved to {self.config.paths.config_file}"
            if written
            else (f"for this run; add it to {self.config.paths.config_file} to keep it")
        )
        self.notify(f"Using {message.server.label} · {message.model} ({where})")
        for panel in self.query(FirstRunPanel):
            panel.remove()
        self.main_screen.update_status()
        self.main_screen.query_one(PromptInput).focus()

    # --- actions -----------------------------------------------------------------------

    def action_interrupt(self) -> None:
        if self.main_screen.interrupt():
            self.notify("Stopping the answer…")
        else:
            self.notify("Nothing is running. Ctrl+Q quits.", timeout=2)

    def action_new_session(self) -> None:
        self.main_screen.send_text("/new")

    def action_show_help(self) -> None:
        self.main_screen.send_text("/help")

    async def action_quit(self) -> None:
        await self.stop_gateway()
        self.exit()

    async def on_unmount(self) -> None:
        await self.stop_gateway()

    async def stop_gateway(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.gateway is not None:
            try:
                await asyncio.wait_for(self.gateway.stop(), timeout=10)
            except Exception:
                log.exception("gateway did not stop cleanly")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "New session", "Start a fresh conversation (/new)", self.action_new_session
        )
        yield SystemCommand(
            "Stop answer", "Interrupt the running answer (Ctrl+C)", self.action_interrupt
        )
        yield SystemCommand(
            "Show commands", "List the slash commands (/help)", self.action_show_help
        )
        yield SystemCommand(
            "Session status",
            "Model, session and platforms (/status)",
            lambda: self.main_screen.send_text("/status"),
        )
        yield SystemCommand(
            "Token usage",
            "Tokens used in this session (/usage)",
            lambda: self.main_screen.send_text("/usage"),
        )


def _write_model_config(path: Path, base_url: str, model: str) -> bool:
    """Create config.yaml with the chosen server, but never overwrite a user's file."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"model:\n  base_url: {base_url}\n  name: {model}\n", encoding="utf-8")
    return True
