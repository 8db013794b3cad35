"""The Hermes app: a thin shell that starts the gateway and shows the main screen.

The first frame is painted before anything heavy happens; the gateway (and with it openai,
aiohttp, the platform libraries) is started by a worker right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from hermes_gateway.config import Config
from hermes_tui import gateway_messages as gm
from hermes_tui.approvals_controller import AccessController
from hermes_tui.bridge import pump_events
from hermes_tui.messages import QuitRequested, SearchRequested
from hermes_tui.notifications import Notification
from hermes_tui.screens.main import MainScreen
from hermes_tui.widgets.first_run import FirstRunPanel
from hermes_tui.widgets.prompt_input import PromptInput

if TYPE_CHECKING:
    from hermes_gateway.gateway import Gateway

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
        Binding("ctrl+c", "copy_or_interrupt", "Copy / stop", id="app.interrupt", priority=True),
        # Priority: the input would otherwise take Alt+C as a typed "c".
        Binding(
            "alt+c", "copy_answer", "Copy answer", id="app.copy_answer", show=False, priority=True
        ),
        Binding(
            "alt+k", "copy_code", "Copy code block", id="app.copy_code", show=False, priority=True
        ),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("ctrl+n", "new_session", "New session", id="app.new_session"),
        Binding("f1", "show_help", "Help", id="app.help"),
        Binding("f2", "toggle_sidebar", "Sessions", id="app.sidebar"),
        Binding("f3,ctrl+f", "search", "Search", id="app.search"),
        Binding("f4", "pause_chat", "Pause chat", id="app.pause_chat"),
        Binding("f8", "pause_platform", "Pause platform", id="app.pause_platform", show=False),
        Binding("ctrl+t", "toggle_theme", "Light/dark", id="app.theme", show=False),
        Binding("f9", "notifications", "Notifications", id="app.notifications", show=False),
        Binding("ctrl+o", "open_pairing", "Pairing", id="app.pairing", show=False),
    ]

    def __init__(
        self,
        config: Config | None,
        config_error: str | None = None,
        *,
        discover_servers: bool = True,
        adapters: list | None = None,
    ) -> None:
        """``adapters`` replaces the configured remote platforms (tests, embedding)."""
        super().__init__()
        self.adapters = adapters
        self.config = config
        self.config_error = config_error
        self.discover_servers = discover_servers
        self.gateway: Gateway | None = None
        self.main_screen = MainScreen()
        self._stopped = False
        self.gateway_stopped = threading.Event()
        """Set once the gateway's stop is done (signals.py's exit deadline watches it)."""
        self.access = AccessController(self)
        """Pairing requests and tool approvals: notifications and dialogs."""

    def get_default_screen(self) -> Screen:
        return self.main_screen

    def on_mount(self) -> None:
        if self.config is not None:
            with contextlib.suppress(Exception):
                self.theme = self.config.display.theme
        self.call_after_refresh(self._boot)

    def _boot(self) -> None:
        if self.config is None:
            self.call_later(self.main_screen.show_config_error, self.config_error or "unknown")
            return
        self.peek_sessions()

    @work(name="sessions-early", exit_on_error=False)
    async def peek_sessions(self) -> None:
        """Fill the Sessions list from the store, then start the gateway.

        Reading the list takes milliseconds; starting the gateway (network libraries imported
        in a thread, which holds the interpreter meanwhile) a second or more. So the list of a
        used home is on screen first.
        """
        try:
            from hermes_gateway.operator import peek_sessions
            from hermes_gateway.store import default_db_path
            from hermes_tui.screens.main import RECENT_CHATS

            assert self.config is not None
            found = await peek_sessions(default_db_path(self.config.paths.home), RECENT_CHATS)
            if found is not None and self.gateway is None:
                self.main_screen.sessions_pane.load(*found)
        except Exception:
            log.exception("could not read the sessions list early")  # the gateway's load will
        finally:
            # After the list is painted: the gateway's start holds the interpreter a while.
            self.call_after_refresh(self.start_gateway)

    @work(name="gateway-start", group="gateway", exit_on_error=False)
    async def start_gateway(self) -> None:
        from hermes_gateway.logging_setup import setup_logging
        from hermes_gateway.platforms.registry import preload
        from hermes_tui.assembly import build_gateway

        assert self.config is not None
        await asyncio.to_thread(setup_logging, self.config.paths.logs_dir, stderr=False)
        await asyncio.to_thread(_preload_heavy_libraries)
        await asyncio.to_thread(preload, self.config)
        gateway = build_gateway(self.config)
        sub = gateway.bus.subscribe(name="tui", maxsize=20_000)
        self.run_worker(
            pump_events(sub, self.main_screen.deliver), name="event-bridge", exit_on_error=False
        )
        try:
            await gateway.start(local=True, adapters=self.adapters, offer_import=False)
        except Exception as exc:
            log.exception("gateway failed to start")
            await self.main_screen.show_config_error(f"the gateway could not start: {exc}")
            return
        self.gateway = gateway
        if gateway.approvals is not None:
            gateway.approvals.operator_present = True  # our dialogs can answer
        await self.main_screen.gateway_ready(gateway)
        offer = await gateway.import_offer()  # after the transcript loaded: nothing wipes it
        if offer:
            await self.main_screen.conversation.add_notice(offer, "info")
        if not self.config.model.configured:
            model = self.config.model
            panel = await self.main_screen.show_first_run(
                str(self.config.paths.config_file), model.base_url, model.api_key
            )
            if self.discover_servers:
                self._discover(panel)

    @work(name="discover-servers", exit_on_error=False)
    async def _discover(self, panel: FirstRunPanel) -> None:
        from hermes_gateway.discovery import discover

        await panel.show_servers(await discover())

    @on(FirstRunPanel.SaveRequested)
    def _on_model_save_requested(self, message: FirstRunPanel.SaveRequested) -> None:
        self.save_model_setup(message.base_url, message.api_key, message.model)

    @work(name="model-setup-save", group="model-setup", exclusive=True, exit_on_error=False)
    async def save_model_setup(self, base_url: str, api_key: str, model: str) -> None:
        """Write the first-run form to config.yaml and .env, reload, and use it at once."""
        from hermes_gateway.config import ConfigError, load_config
        from hermes_gateway.model_setup import SaveError, adopt_model, save_model

        assert self.config is not None
        panel = self.main_screen.query_one(FirstRunPanel)
        paths = self.config.paths
        try:
            saved = await asyncio.to_thread(save_model, paths, base_url, api_key, model)
        except SaveError as exc:
            panel.show_status(str(exc), error=True)
            return
        try:
            fresh = await asyncio.to_thread(load_config, paths)
        except ConfigError as exc:
            panel.show_status(f"Saved, but the settings do not load: {exc}", error=True)
            return
        notes = [*saved.notes, *adopt_model(self.config, fresh, base_url, model)]
        where = f"saved to {saved.config_file}" + (" and .env" if saved.env_file else "")
        self.notify(f"Using {model} at {base_url} ({where}).")
        for note in notes:
            self.notify(note, severity="warning", timeout=8)
        await panel.remove()  # before refocusing: removing the focused button moves focus
        self.main_screen.conversation.follow_paused = False
        self.main_screen.refresh_status()
        self.main_screen.query_one(PromptInput).focus()

    # --- actions -----------------------------------------------------------------------

    def action_copy_or_interrupt(self) -> None:
        """Ctrl+C copies what is selected (text on screen, or in the input) and otherwise
        stops the answer, as in a shell."""
        selected = self.screen.get_selected_text()
        if not selected and isinstance(self.focused, PromptInput):
            selected = self.focused.selected_text
        if selected:
            self.copy_to_clipboard(selected)
            self.screen.clear_selection()
            self.notify(f"Copied {len(selected):,} characters.", timeout=2)
            return
        self.action_interrupt()

    def action_copy_answer(self) -> None:
        """Alt+C: the shown chat's last answer, as its Markdown source."""
        text = self.main_screen.conversation.last_answer()
        self._copy(text, "the last answer", "There is no answer to copy yet.")

    def action_copy_code(self) -> None:
        """Alt+K: the last code block of the shown chat's answers."""
        text = self.main_screen.conversation.last_code_block()
        self._copy(text, "the last code block", "No code block in this conversation.")

    def _copy(self, text: str | None, what: str, missing: str) -> None:
        if not text:
            self.notify(missing, severity="warning", timeout=3)
            return
        # OSC 52: the terminal (also over SSH and inside tmux) puts it on the clipboard.
        self.copy_to_clipboard(text)
        self.notify(f"Copied {what} ({len(text):,} characters).", timeout=2)

    def action_interrupt(self) -> None:
        if self.main_screen.interrupt():
            self.notify("Stopping the answer…")
        else:
            self.notify("Nothing is running. Ctrl+Q quits.", timeout=2)

    def action_new_session(self) -> None:
        self.main_screen.send_text("/new")

    def action_show_help(self) -> None:
        from hermes_tui.screens.help import HelpScreen

        commands = ""
        if self.gateway is not None and self.gateway.operator is not None:
            commands = self.gateway.operator.commands.help_text("local")
        bindings = [b for b in (*self.BINDINGS, *PromptInput.BINDINGS) if isinstance(b, Binding)]
        from hermes_tui.widgets.status_line import StatusLine

        lag = self.main_screen.query_one(StatusLine).last_lag_ms
        diagnostics = f"Last event-loop stall: {lag:.0f} ms." if lag else ""
        self.push_screen(HelpScreen(bindings, commands, diagnostics))

    def action_toggle_sidebar(self) -> None:
        """F2: go to the Sessions list (opening the sidebar on narrow screens), or back."""
        self.main_screen.toggle_sessions()

    def action_search(self, query: str = "") -> None:
        if self.gateway is None or self.gateway.operator is None:
            return
        from hermes_tui.screens.search import SearchScreen

        self.push_screen(SearchScreen(self.gateway.operator, query), self.main_screen.jump_to)

    @on(SearchRequested)
    def _on_search_requested(self, message: SearchRequested) -> None:
        self.action_search(message.query)

    @on(QuitRequested)
    async def _on_quit_requested(self, message: QuitRequested) -> None:
        await self.action_quit()

    async def action_pause_chat(self) -> None:
        await self.main_screen.toggle_session_pause()

    def action_pause_platform(self) -> None:
        self.main_screen.toggle_platform_pause()

    # The main screen routes pairing and approval messages here: their dialogs are the app's.

    @on(gm.ApprovalRequested)
    def _on_approval_requested(self, message: gm.ApprovalRequested) -> None:
        self.access.approval_requested(message.event)

    @on(gm.ApprovalResolved)
    def _on_approval_resolved(self, message: gm.ApprovalResolved) -> None:
        self.access.approval_resolved(message.event)

    @on(gm.PairingRequested)
    def _on_pairing_requested(self, message: gm.PairingRequested) -> None:
        self.access.pairing_requested(message.event)

    @on(gm.PairingResolved)
    def _on_pairing_resolved(self, message: gm.PairingResolved) -> None:
        self.access.pairing_resolved(message.event)

    def action_open_pairing(self) -> None:
        self.access.open_pairing_screen()

    def action_notifications(self) -> None:
        from hermes_tui.screens.notifications import NotificationsScreen

        async def opened(item: Notification | None) -> None:
            if item is not None and item.open is not None:
                result = item.open()
                if hasattr(result, "__await__"):
                    await result

        self.push_screen(NotificationsScreen(self.main_screen.notifications), opened)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    async def action_quit(self) -> None:
        await self.stop_gateway()
        self.exit()

    async def on_unmount(self) -> None:
        await self.stop_gateway()

    async def stop_gateway(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.gateway is not None:
                await asyncio.wait_for(self.gateway.stop(), timeout=10)
        except Exception:
            log.exception("gateway did not stop cleanly")
        finally:
            self.gateway_stopped.set()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        send = self.main_screen.send_text
        entries: list[tuple[str, str, Callable[[], object]]] = [
            ("New session", "Start a fresh conversation (Ctrl+N)", self.action_new_session),
            ("Stop answer", "Interrupt the selected chat's answer (Ctrl+C)", self.action_interrupt),
            (
                "Keys and commands",
                "Every key binding and slash command (F1)",
                self.action_show_help,
            ),
            ("Search conversations", "Full-text search over all history (F3)", self.action_search),
            (
                "Pause or resume this chat's agent",
                "You answer the selected remote chat by hand (F4)",
                self.action_pause_chat,
            ),
            (
                "Pause or resume this platform",
                "Stop answering the selected chat's platform (F8)",
                self.action_pause_platform,
            ),
            (
                "Toggle sessions sidebar",
                "Show or hide the sidebar (F2)",
                self.action_toggle_sidebar,
            ),
            ("Light or dark theme", "Switch the colour theme (Ctrl+T)", self.action_toggle_theme),
            (
                "Notifications",
                "Pairing, approvals, failed cron runs and platforms (F9)",
                self.action_notifications,
            ),
            ("Session status", "Model, session and platforms (/status)", lambda: send("/status")),
            ("Token usage", "Tokens used in this session (/usage)", lambda: send("/usage")),
            (
                "Pairing",
                "Approve, deny or revoke who may DM the bot (Ctrl+O)",
                self.action_open_pairing,
            ),
        ]
        for title, help_text, callback in entries:
            yield SystemCommand(title, help_text, callback)
