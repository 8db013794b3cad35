"""The main screen: platforms, sessions, cron and background runs on the left; the
conversation, its tools and the input on the right.

Gateway messages do not bubble, so the bridge posts each one to this screen and
:data:`ROUTES` hands a copy to every pane that handles its type; the panes' own ``@on``
handlers do the rest. The screen itself keeps only what spans panes: which session is shown,
its pause state, notifications, and the actions a command asks for (quit, search).
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widgets import Footer, Input, TextArea

from hermes_gateway.text import ago, one_line
from hermes_tui import gateway_messages as gm
from hermes_tui.messages import QuitRequested, SearchRequested, SessionSelected
from hermes_tui.notifications import Notification, NotificationCenter
from hermes_tui.screens.search import SearchJump
from hermes_tui.widgets.background_pane import BackgroundPane
from hermes_tui.widgets.conversation import ConversationView
from hermes_tui.widgets.cron_pane import CronPane
from hermes_tui.widgets.first_run import FirstRunPanel
from hermes_tui.widgets.follow import unfollow
from hermes_tui.widgets.hooks_pane import HooksPane
from hermes_tui.widgets.platforms_pane import PlatformsPane
from hermes_tui.widgets.prompt_input import PromptInput
from hermes_tui.widgets.sessions_pane import SessionsPane
from hermes_tui.widgets.slash_complete import SlashComplete
from hermes_tui.widgets.status_line import StatusLine
from hermes_tui.widgets.tool_progress import ToolProgressPane

if TYPE_CHECKING:
    from hermes_gateway.events import GatewayEvent
    from hermes_gateway.gateway import Gateway
    from hermes_gateway.operator import OperatorControl, SessionView

RECENT_CHATS = 300
"""Chats listed at start (most recently active first); older ones are found by search."""

APP = "app"
"""In :data:`ROUTES`: the message goes to the app (pairing and approval dialogs)."""

ROUTES: dict[type[gm.GatewayMessage], tuple[str, ...]] = {
    gm.MessageReceived: ("#sessions", "#conversation"),
    gm.TurnStarted: ("#sessions", "#conversation", "#status"),
    gm.AgentDelta: ("#conversation",),
    gm.ToolStarted: ("#tools", "#conversation"),
    gm.ToolFinished: ("#tools", "#conversation"),
    gm.TranscriptRewound: ("#conversation",),
    gm.TurnFinished: ("#sessions", "#conversation", "#status"),
    gm.CommandReplied: ("#conversation",),
    gm.Notice: ("#conversation",),
    gm.SessionChanged: ("#sessions", "#status"),
    gm.PlatformStatus: ("#platforms",),
    gm.PlatformCounters: ("#platforms",),
    gm.LoopLag: ("#status",),
    gm.ContextCompressed: ("#status",),
    gm.CronJobChanged: ("#cron",),
    gm.CronRunStarted: ("#cron",),
    gm.CronRunFinished: ("#cron",),
    gm.BackgroundRunChanged: ("#background",),
    gm.AgentStep: (),  # for hooks; nothing on screen shows steps
    gm.HooksLoaded: ("#hooks",),
    gm.HookFailed: ("#hooks",),
    gm.PairingRequested: (APP,),
    gm.PairingResolved: (APP,),
    gm.ApprovalRequested: (APP,),
    gm.ApprovalResolved: (APP,),
}
"""Which panes handle each gateway message (CSS selectors within this screen, or APP)."""

SCREEN_HANDLES: tuple[type[gm.GatewayMessage], ...] = (
    gm.SessionChanged,
    gm.CommandReplied,
    gm.EventsDropped,
    gm.PlatformStatus,
    gm.CronRunFinished,
)
"""Messages the screen handles itself (besides the panes): what spans panes."""


class MainScreen(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self.gateway: Gateway | None = None
        self.operator: OperatorControl | None = None
        self.current_key: str | None = None
        self.view: SessionView | None = None
        """The shown session as last loaded (its chat, for the prompt and pausing)."""
        self.paused = False
        """The agent is paused in the shown chat (kept from SessionChanged)."""
        self.notifications = NotificationCenter(on_change=self._alerts_changed)
        self._select_lock = asyncio.Lock()
        """One selection at a time: a second one (a click during a restart's load) waits."""
        self._routes: dict[type[gm.GatewayMessage], tuple[MessagePump, ...]] = {}
        self._loading: dict[str, int] = {}
        """Gateway events delivered for each chat whose transcript is being fetched: one
        fetched while such an event came may miss what it reported, and is fetched again
        (see :meth:`select_session`). Only chats being loaded are counted, so it stays empty
        between selections however many chats a gateway serves."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield PlatformsPane(id="platforms")
                with Vertical(id="sessions-box") as box:
                    box.border_title = "Sessions"  # the header bar over the filter and list
                    yield Input(
                        placeholder="filter sessions…", id="session-filter", select_on_focus=False
                    )
                    yield SessionsPane(id="sessions")
                yield CronPane(id="cron")
                yield BackgroundPane(id="background")
                yield HooksPane(id="hooks")
            with Vertical(id="main"):
                yield ConversationView(id="conversation")
                yield ToolProgressPane(id="tools")
        completer = SlashComplete(id="slash-complete")
        completer.display = False
        yield completer
        yield PromptInput(completer, id="prompt")
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PromptInput).focus()

    # --- wiring ------------------------------------------------------------------------

    @property
    def sessions_pane(self) -> SessionsPane:
        return self.query_one(SessionsPane)

    @property
    def conversation(self) -> ConversationView:
        return self.query_one(ConversationView)

    async def gateway_ready(self, gateway: Gateway) -> None:
        """Called by the app once the gateway runs: load history, sessions, completions."""
        assert gateway.operator is not None
        self.gateway = gateway
        self.operator = operator = gateway.operator
        self.query_one(SlashComplete).registry = operator.commands
        if gateway.cron is not None:
            self.query_one(CronPane).attach(gateway.cron)
        hooks = gateway.feature("hooks")
        if hooks is not None and hooks.dispatcher is not None:
            self.query_one(HooksPane).attach(hooks.loaded, dict(hooks.dispatcher.last_error))
        prompt = self.query_one(PromptInput)
        prompt.input_history.entries = await operator.input_history()
        sessions = self.query_one(SessionsPane)
        sessions.loader = operator.sessions_of
        sessions.load(
            await operator.recent_sessions(limit=RECENT_CHATS),
            await operator.past_session_counts(),
        )
        await self.select_session(await operator.open_local())

    async def show_config_error(self, message: str) -> None:
        """The gateway cannot start: say why where the eye goes (conversation, Platforms
        pane, input), never an endless "starting…"."""
        await self.conversation.add_notice(
            f"⚠ Configuration error — {message}\nFix the file and restart hermes.", "error"
        )
        first = message.strip().splitlines()[0] if message.strip() else "see above"
        self.query_one(PlatformsPane).show_error(f"not started: {first}")
        self.query_one(PromptInput).placeholder = f"fix config.yaml: {first}"

    async def show_first_run(
        self, config_path: str, base_url: str = "", api_key: str = ""
    ) -> FirstRunPanel:
        panel = FirstRunPanel(config_path, base_url, api_key, id="first-run")
        self.conversation.follow_paused = True
        unfollow(self.conversation)
        await self.conversation.mount(panel)
        return panel

    async def select_session(self, key: str, session_id: str | None = None) -> None:
        """Show a chat's session, loaded from the store: its current one with the answer in
        progress, or an earlier one (``session_id``). Safe to call twice at once: selections
        run one after another, and the last one wins."""
        if self.operator is None:
            return
        async with self._select_lock:
            try:
                for _ in range(3):  # a busy chat: show the last snapshot fetched, not forever
                    self._loading[key] = 0
                    view = await self.operator.select(key, session_id)
                    if not self._loading[key]:
                        break
            finally:
                self._loading.pop(key, None)
            self.current_key = key
            self.view = view
            self.paused = view.paused
            record_id = view.record.id if view.record is not None else None
            await self.conversation.show_session(
                key, view.transcript, session_id=record_id, current=view.current
            )
            self.query_one(ToolProgressPane).show(key)
            sessions = self.query_one(SessionsPane)
            sessions.mark_read(key, record_id if not view.current else None)
            self.conversation.border_title = self._title_of(view)
            self._update_prompt_hint()
            self._show_status(view)

    def _title_of(self, view: SessionView) -> str:
        """The Conversation border: a remote chat's name and its session's title."""
        record = view.record
        title = record.title if record else None
        chat = view.source.display_name if view.remote and view.source else None
        if chat and title and title != chat:
            name = f"{chat} · {title}"
        else:
            name = title or chat or (record.display_name if record else None) or view.key
        if not view.current and record is not None:
            return f"{name} · earlier session ({ago(time.time() - record.created_at)})"
        return name

    def _show_status(self, view: SessionView) -> None:
        record = view.record
        self.query_one(StatusLine).show(
            view.key,
            title=record.title if record else None,
            model=view.model,
            tokens=record.prompt_tokens + record.completion_tokens if record else 0,
            busy=view.busy,
        )

    @work(group="status", exclusive=True, exit_on_error=False)
    async def refresh_status(self) -> None:
        """Re-read the shown session's model and tokens (after a command or a new model)."""
        if self.operator is not None and self.current_key is not None:
            view = await self.operator.select(self.current_key)
            if view.key == self.current_key:
                self._show_status(view)

    @on(SessionSelected)
    async def _on_session_selected(self, message: SessionSelected) -> None:
        await self.select_session(message.session_key, message.session_id)
        self.query_one(PromptInput).focus()

    @on(Input.Changed, "#session-filter")
    def _filter_sessions(self, event: Input.Changed) -> None:
        self.query_one(SessionsPane).set_filter(event.value)

    @on(Input.Submitted, "#session-filter")
    async def _filter_done(self, event: Input.Submitted) -> None:
        """Enter in the filter opens the first chat that matches."""
        first = self.query_one(SessionsPane).first_match()
        if first is None:
            self.notify(f"No chat matches “{event.value}”.", severity="warning")
            return
        await self.select_session(*first)
        self.query_one(PromptInput).focus()

    @on(PromptInput.Submitted)
    def _on_submit(self, message: PromptInput.Submitted) -> None:
        self.conversation.jump_to_end()
        self.send_text(message.text)

    @on(SlashComplete.ModelsWanted)
    def _on_models_wanted(self) -> None:
        self._load_models()

    @work(group="models", exclusive=True, exit_on_error=False)
    async def _load_models(self) -> None:
        """The models ``/model`` completes: loaded once per screen (the server caches them)."""
        if self.operator is None:
            return
        completer = self.query_one(SlashComplete)
        completer.models = await self.operator.model_choices()
        prompt = self.query_one(PromptInput)
        if prompt.has_focus:
            completer.update_for(prompt.text)

    @on(PromptInput.ScrollRequested)
    def _on_scroll_requested(self, message: PromptInput.ScrollRequested) -> None:
        conversation = self.conversation
        if message.where in ("page_up", "top"):
            conversation.read_back()  # new output must not pull the view down meanwhile
        if message.where == "page_up":
            conversation.scroll_page_up(animate=False)
        elif message.where == "page_down":
            conversation.scroll_page_down(animate=False)
        elif message.where == "top":
            conversation.scroll_home(animate=False)
        else:
            conversation.jump_to_end()

    def on_key(self, event: events.Key) -> None:
        """Typing always reaches an input: a printable key pressed while a pane has focus
        goes to the prompt (to the filter in the Sessions list); Esc returns to the prompt.

        Inputs take their own printable keys, so one that gets here came from a pane; keys
        typed fast are all queued to that pane before the first one moves the focus, so the
        rest still arrive here with an input focused and go to it, not nowhere.
        """
        focused = self.focused
        prompt = self.query_one(PromptInput)
        if event.key == "escape":
            if not isinstance(focused, Input | TextArea):
                event.stop()
            if focused is not prompt:
                self.set_focus(prompt)  # from a pane, the sessions filter, the first-run form
            return
        typing = isinstance(focused, Input | TextArea)
        if not typing and event.key in self.active_bindings:
            return  # a pane's own key (the Cron pane's "r" runs a job)
        if not event.is_printable or not event.character or event.character in "\r\n":
            return
        event.stop()
        event.prevent_default()
        # set_focus, not focus(): focus() takes effect only after the keys already queued.
        search = self.query_one("#session-filter", Input)
        if isinstance(focused, SessionsPane) or focused is search:
            self.set_focus(search)
            search.insert_text_at_cursor(event.character)
        elif isinstance(focused, Input):  # another form's field (the first-run panel)
            focused.insert_text_at_cursor(event.character)
        else:
            self.set_focus(prompt)
            prompt.insert(event.character)

    def send_text(self, text: str) -> None:
        if self.operator is None:
            self.notify("The gateway is still starting…", severity="warning")
            return
        self._submit(text)

    @work(group="input", exit_on_error=False)
    async def _submit(self, text: str) -> None:
        """Local session: a message to the agent. Remote session: the operator steps in,
        speaking as the bot (commands act on that chat). From an earlier session, what is
        typed goes to the chat's current one, which is shown."""
        assert self.operator is not None
        key = self.current_key
        if key is not None and self.view is not None and not self.view.current:
            await self.select_session(key)
        await self.operator.submit(key, text)

    # --- gateway messages: routing, and what spans panes --------------------------------

    def deliver(self, event: GatewayEvent) -> None:
        """Post a gateway event, as its message, straight to the panes that handle it.

        Called by the bridge for every event (a thousand a second while many chats stream),
        so the targets are resolved once and nothing is routed through the screen's own
        queue; the screen gets the types it handles itself (``SCREEN_HANDLES``) and any type
        no pane claims.
        """
        message = gm.message_for(event)
        key = getattr(event, "session_key", None)
        if key is not None and key in self._loading:
            self._loading[key] += 1
        targets = self._targets(type(message))
        for n, target in enumerate(targets):
            target.post_message(message if n == 0 else message.copy())

    def _targets(self, kind: type[gm.GatewayMessage]) -> tuple[MessagePump, ...]:
        targets = self._routes.get(kind)
        if targets is None:
            found: list[MessagePump] = []
            for selector in ROUTES.get(kind, ()):
                found.extend([self.app] if selector == APP else self.query(selector))
            if kind not in ROUTES or issubclass(kind, SCREEN_HANDLES):
                found.append(self)
            targets = self._routes[kind] = tuple(found)
        return targets

    @on(gm.SessionChanged)
    async def _on_session_changed(self, message: gm.SessionChanged) -> None:
        event = message.event
        if event.session_key != self.current_key:
            return
        if event.paused != self.paused:
            self.paused = event.paused
            self._update_prompt_hint()
        if event.reason in ("reset", "resumed"):
            await self.select_session(event.session_key)
        elif event.reason == "titled" and self.view is not None and self.view.current:
            if self.view.record is not None:
                self.view.record.title = event.title
            self.conversation.border_title = self._title_of(self.view)

    @on(gm.CommandReplied)
    def _on_command_replied(self, message: gm.CommandReplied) -> None:
        event = message.event
        if event.session_key == self.current_key and event.action is not None:
            action, _, argument = event.action.partition(":")
            if action == "quit":
                self.post_message(QuitRequested())
            elif action == "search":
                self.post_message(SearchRequested(argument))
            return
        if event.session_key == self.current_key:
            self.refresh_status()  # a command may have changed the model or the session

    @on(gm.EventsDropped)
    async def _on_events_dropped(self, message: gm.EventsDropped) -> None:
        if self.current_key is not None:
            await self.select_session(self.current_key)

    @on(gm.PlatformStatus)
    def _on_platform_status(self, message: gm.PlatformStatus) -> None:
        event = message.event
        if event.state != "failed":
            return
        self.notify(f"{event.platform} failed: {event.detail}", severity="error")
        self.notifications.add(
            Notification(
                f"{event.platform} failed",
                event.detail,
                "error",
                open=functools.partial(self.open_platform, event.platform),
            )
        )

    @on(gm.CronRunFinished)
    def _on_cron_run_finished(self, message: gm.CronRunFinished) -> None:
        event = message.event
        job_id = event.job_id

        def open_output() -> object:
            return self.query_one(CronPane).open_output(job_id)

        if event.status == "ok" and event.local_text is not None:
            # Delivered to this machine: no chat has it, so it stays listed here (F9).
            self.notifications.add(
                Notification(
                    f"⏰ {event.name or job_id}",
                    one_line(event.local_text, 300),
                    "information",
                    open=open_output,
                )
            )
        if event.status == "ok" and event.delivery_status not in ("failed", "partial"):
            return
        problem = event.error if event.status != "ok" else event.delivery_error
        self.notifications.add(
            Notification(
                f"cron job {event.name or event.job_id}: "
                f"{event.status if event.status != 'ok' else 'not delivered'}",
                problem or "",
                "error" if event.status != "ok" else "warning",
                open=open_output,
            )
        )

    async def jump_to(self, jump: SearchJump | None) -> None:
        """Open the session of a search hit and bring the message into view."""
        if jump is None:
            return
        await self.select_session(jump.session_key, jump.session_id)
        self.conversation.highlight_message(jump.message_id)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < 100, "narrow")
        self.set_class(event.size.height < 30, "short")
        # Under 100 columns the keys lose their padding so the palette key is not cut off.
        self.query_one(Footer).compact = event.size.width < 100

    def toggle_sessions(self) -> None:
        """Focus the Sessions list, or return to the input if it already has focus."""
        sessions = self.sessions_pane
        if sessions.has_focus:
            self.remove_class("sidebar-open")
            self.set_focus(self.query_one(PromptInput))
            return
        self.add_class("sidebar-open")
        self.set_focus(sessions)  # at once: keys typed right after F2 are the filter's

    @on(SessionSelected)
    def _close_overlay(self, message: SessionSelected) -> None:
        self.remove_class("sidebar-open")

    def _remote_view(self) -> SessionView | None:
        view = self.view
        return view if view is not None and view.remote else None

    def _update_prompt_hint(self) -> None:
        view = self._remote_view()
        prompt = self.query_one(PromptInput)
        if self.view is not None and not self.view.current:
            prompt.placeholder = "An earlier session: what you type goes to the chat's current one"
            self.conversation.set_status_note("earlier session (read only)")
            return
        if view is None or view.source is None:
            prompt.placeholder = "Message Hermes — / for commands, Ctrl+J for a newline"
            self.conversation.set_status_note("")
            return
        prompt.placeholder = (
            f"Write to {view.source.display_name} as the bot — /stop, /new act on this chat"
        )
        self.conversation.set_status_note(
            "agent paused: you answer (F4 resumes)"
            if self.paused
            else f"{view.source.platform} · live"
        )

    async def toggle_session_pause(self) -> None:
        view = self._remote_view()
        if view is None or view.source is None or self.operator is None:
            self.notify("Select a remote chat to pause its agent.", severity="warning")
            return
        paused = not self.operator.session_paused(view.key)
        await self.operator.pause_session(view.key, paused)
        self.paused = paused
        self.notify(
            f"Agent paused in {view.source.display_name}: you answer by hand."
            if paused
            else f"Agent answers {view.source.display_name} again."
        )
        self._update_prompt_hint()

    def toggle_platform_pause(self) -> None:
        view = self._remote_view()
        if view is None or view.source is None or self.operator is None:
            self.notify("Select a chat of the platform to pause.", severity="warning")
            return
        platform = view.source.platform
        paused = not self.operator.platform_paused(platform)
        self.operator.pause_platform(platform, paused)
        self.notify(f"{platform} {'paused' if paused else 'resumed'}.")

    def _alerts_changed(self, unseen: int) -> None:
        if self.is_mounted:
            self.query_one(StatusLine).alerts = unseen

    async def open_platform(self, platform: str) -> None:
        """Show a platform's latest chat, or its row in the Platforms pane."""
        rows = [r for r in self.sessions_pane.rows.values() if r.platform == platform]
        if rows:
            latest = max(rows, key=lambda r: r.updated_at)
            await self.select_session(latest.key)
        else:
            self.query_one(PlatformsPane).scroll_visible()
            self.notify(f"{platform}: {self.query_one(PlatformsPane).plain}", timeout=6)

    # --- actions (bound by the app) -----------------------------------------------------

    def interrupt(self) -> bool:
        if self.operator is None or self.current_key is None:
            return False
        return self.operator.stop(self.current_key)
