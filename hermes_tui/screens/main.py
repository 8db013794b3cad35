"""The main screen: platforms, sessions and cron on the left; the conversation, its tools
and the input on the right. It routes gateway events to the panes and input to the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from hermes_cron.events import CronJobChanged, CronRunFinished, CronRunStarted
from hermes_gateway import events as ev
from hermes_gateway.models import MessageEvent
from hermes_tui.messages import GatewayEventMessage, SessionSelected
from hermes_tui.notifications import Notification, NotificationCenter
from hermes_tui.screens.search import SearchJump
from hermes_tui.widgets.conversation import ConversationView
from hermes_tui.widgets.cron_pane import CronPane
from hermes_tui.widgets.first_run import FirstRunPanel
from hermes_tui.widgets.follow import unfollow
from hermes_tui.widgets.platforms_pane import PlatformsPane
from hermes_tui.widgets.prompt_input import PromptInput
from hermes_tui.widgets.sessions_pane import SessionsPane
from hermes_tui.widgets.slash_complete import SlashComplete
from hermes_tui.widgets.status_line import StatusLine
from hermes_tui.widgets.tool_progress import ToolProgressPane

if TYPE_CHECKING:
    from hermes_gateway.gateway import Gateway
    from hermes_gateway.runner import SessionRuntime


class MainScreen(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self.gateway: Gateway | None = None
        self.current_key: str | None = None
        self.partial: dict[str, list[str]] = {}
        """The answer being written in each session, so switching sessions loses nothing."""
        self.turn_started_at: dict[str, float] = {}
        self.notifications = NotificationCenter(on_change=self._alerts_changed)

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield PlatformsPane(id="platforms")
                yield Input(placeholder="filter sessions…", id="session-filter")
                yield SessionsPane(id="sessions")
                yield CronPane(id="cron")
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
        self.set_interval(1.0, self._refresh_platforms)

    # --- wiring ------------------------------------------------------------------------

    @property
    def sessions_pane(self) -> SessionsPane:
        return self.query_one(SessionsPane)

    @property
    def conversation(self) -> ConversationView:
        return self.query_one(ConversationView)

    async def gateway_ready(self, gateway: Gateway) -> None:
        """Called by the app once the gateway runs: load history, sessions, completions."""
        assert gateway.runner is not None and gateway.store is not None
        self.gateway = gateway
        self.query_one(SlashComplete).registry = gateway.runner.commands
        if gateway.cron is not None:
            self.query_one(CronPane).attach(gateway.cron)
        prompt = self.query_one(PromptInput)
        prompt.input_history.entries = await gateway.store.get_input_history()
        sessions = self.query_one(SessionsPane)
        for record in reversed(await gateway.store.list_sessions(limit=50, include_ended=False)):
            sessions.upsert(
                record.session_key,
                session_id=record.id,
                platform=record.platform,
                name=record.title or record.display_name or record.session_key,
                preview=record.last_preview,
            )
            sessions.rows[record.session_key].updated_at = record.updated_at
        local = await gateway.runner.runtime(gateway.local.source)
        await self.select_session(local.key)
        self.update_status()

    async def show_config_error(self, message: str) -> None:
        await self.conversation.add_notice(
            f"⚠ Configuration error — {message}\nFix the file and restart hermes.", "error"
        )

    async def show_first_run(self, config_path: str) -> FirstRunPanel:
        panel = FirstRunPanel(config_path, id="first-run")
        self.conversation.follow_paused = True
        unfollow(self.conversation)
        await self.conversation.mount(panel)
        return panel

    async def select_session(self, key: str) -> None:
        """Show a session's stored transcript, plus its answer in progress."""
        if self.gateway is None or self.gateway.store is None:
            return
        self.current_key = key
        rt = self.gateway.runner.sessions.get(key) if self.gateway.runner else None
        record = rt.record if rt else await self.gateway.store.get_active_session(key)
        messages = await self.gateway.store.get_messages(record.id) if record else []
        partial = "".join(self.partial.get(key, []))
        started = self.turn_started_at.get(key)
        if partial and messages and started is not None:
            last = messages[-1]
            if last.role == "assistant" and (last.created_at or 0) >= started:
                partial = ""  # the answer was stored before its TurnFinished reached us
        await self.conversation.show_transcript(messages, partial)
        await self.query_one(ToolProgressPane).clear()
        self.query_one(SessionsPane).mark_read(key)
        row = self.query_one(SessionsPane).rows.get(key)
        self.conversation.border_title = row.name if row else key
        self._update_prompt_hint()
        self.update_status()

    @on(SessionSelected)
    async def _on_session_selected(self, message: SessionSelected) -> None:
        await self.select_session(message.session_key)
        self.query_one(PromptInput).focus()

    @on(Input.Changed, "#session-filter")
    def _filter_sessions(self, event: Input.Changed) -> None:
        self.query_one(SessionsPane).set_filter(event.value)

    @on(Input.Submitted, "#session-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one(SessionsPane).focus()

    @on(PromptInput.Submitted)
    def _on_submit(self, message: PromptInput.Submitted) -> None:
        self.send_text(message.text)

    def send_text(self, text: str) -> None:
        if self.gateway is None:
            self.notify("The gateway is still starting…", severity="warning")
            return
        self._submit(text)

    @work(group="input", exit_on_error=False)
    async def _submit(self, text: str) -> None:
        """Local session: a message to the agent. Remote session: the operator steps in,
        speaking as the bot (commands act on that chat)."""
        assert self.gateway is not None and self.gateway.store is not None
        await self.gateway.store.add_input_history(text)
        rt = self.selected_runtime()
        if rt is None or rt.source.platform == "local":
            await self.gateway.local.submit(text)
            return
        await self.gateway.runner.handle(
            MessageEvent(text=text, source=rt.source, from_operator=True)
        )

    def selected_runtime(self) -> SessionRuntime | None:
        if self.gateway is None or self.gateway.runner is None or self.current_key is None:
            return None
        return self.gateway.runner.sessions.get(self.current_key)

    # --- events from the gateway -------------------------------------------------------

    @on(GatewayEventMessage)
    async def _on_gateway_event(self, message: GatewayEventMessage) -> None:
        event = message.event
        sessions = self.query_one(SessionsPane)
        key = getattr(event, "session_key", None)
        here = key is not None and key == self.current_key
        match event:
            case ev.AgentDelta(text=text):
                self.partial.setdefault(event.session_key, []).append(text)
                if here:
                    await self.conversation.append_delta(text)
            case ev.MessageReceived():
                if not event.is_command:
                    sessions.upsert(event.session_key, preview=event.text, touched=True)
                if here:
                    await self.conversation.add_user(event.text, from_operator=event.from_operator)
            case ev.TurnStarted():
                self.partial[event.session_key] = []
                self.turn_started_at[event.session_key] = event.ts
                sessions.upsert(event.session_key, streaming=True)
                if here:
                    await self.conversation.begin_answer()
                    self.update_status(busy=True)
            case ev.TurnFinished():
                self.partial.pop(event.session_key, None)
                sessions.upsert(
                    event.session_key,
                    streaming=False,
                    preview=event.text or event.error or "",
                    touched=True,
                )
                if here:
                    await self.conversation.end_answer(
                        event.text, interrupted=event.interrupted, error=event.error
                    )
                    self.update_status(busy=False)
            case ev.ToolStarted():
                if here:
                    await self.query_one(ToolProgressPane).tool_started(
                        event.call_id, event.name, event.preview
                    )
            case ev.ToolFinished():
                if here:
                    self.query_one(ToolProgressPane).tool_finished(
                        event.call_id, event.ok, event.duration, event.summary
                    )
            case ev.CommandReplied():
                if here:
                    if event.action == "quit":
                        await self.app.action_quit()
                        return
                    if event.action and event.action.startswith("search"):
                        self.app.action_search(event.action.partition(":")[2])
                        return
                    await self.conversation.add_command_reply(event.text, ok=event.ok)
                self.update_status()
            case ev.Notice():
                if here or key is None:
                    await self.conversation.add_notice(event.text, event.level)
            case ev.SessionChanged():
                sessions.upsert(
                    event.session_key,
                    session_id=event.session_id,
                    platform=event.platform or None,
                    name=event.title or event.display_name,
                    touched=event.reason in ("started", "reset"),
                )
                if here and event.reason in ("reset", "resumed"):
                    await self.select_session(event.session_key)
                self.update_status()
            case ev.PlatformStatus():
                self.query_one(PlatformsPane).set_status(event)
                if event.state == "failed":
                    self.notify(f"{event.platform} failed: {event.detail}", severity="error")
                    self.notifications.add(
                        Notification(
                            f"{event.platform} failed",
                            event.detail,
                            "error",
                            open=lambda p=event.platform: self.open_platform(p),
                        )
                    )
            case CronRunFinished() if event.status != "ok" or event.delivery_status in (
                "failed",
                "partial",
            ):
                problem = event.error if event.status != "ok" else event.delivery_error
                self.notifications.add(
                    Notification(
                        f"cron job {event.name or event.job_id}: "
                        f"{event.status if event.status != 'ok' else 'not delivered'}",
                        problem or "",
                        "error" if event.status != "ok" else "warning",
                        open=lambda j=event.job_id: self.query_one("#cron").open_output(j),
                    )
                )
            case CronJobChanged() | CronRunStarted() | CronRunFinished():
                self.query_one(CronPane).on_cron_event(event)
            case ev.LoopLag(lag=lag):
                self.query_one(StatusLine).lag_ms = lag * 1000
                self.set_timer(5, self._clear_lag)
            case ev.EventsDropped():
                if self.current_key is not None:
                    await self.select_session(self.current_key)

    async def jump_to(self, jump: SearchJump | None) -> None:
        """Open the session of a search hit and bring the message into view."""
        if jump is None:
            return
        await self.select_session(jump.session_key)
        self.conversation.highlight_message(jump.message_id)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < 100, "narrow")
        self.set_class(event.size.height < 30, "short")

    def _refresh_platforms(self) -> None:
        if self.gateway is not None and self.gateway.runner is not None:
            self.query_one(PlatformsPane).set_stats(self.gateway.runner.stats)

    def toggle_sessions(self) -> None:
        """Focus the Sessions list, or return to the input if it already has focus."""
        sessions = self.sessions_pane
        if sessions.has_focus:
            self.remove_class("sidebar-open")
            self.query_one(PromptInput).focus()
            return
        self.add_class("sidebar-open")
        sessions.focus()

    @on(SessionSelected)
    def _close_overlay(self, message: SessionSelected) -> None:
        self.remove_class("sidebar-open")

    def _update_prompt_hint(self) -> None:
        rt = self.selected_runtime()
        prompt = self.query_one(PromptInput)
        if rt is None or rt.source.platform == "local":
            prompt.placeholder = "Message Hermes — / for commands, Ctrl+J for a newline"
            self.conversation.border_subtitle = ""
            return
        paused = rt.key in self.gateway.runner.paused_sessions
        prompt.placeholder = (
            f"Write to {rt.source.display_name} as the bot — /stop, /new act on this chat"
        )
        self.conversation.border_subtitle = (
            "agent paused: you answer (F4 resumes)" if paused else f"{rt.source.platform} · live"
        )

    def toggle_session_pause(self) -> None:
        rt = self.selected_runtime()
        if rt is None or rt.source.platform == "local":
            self.notify("Select a remote chat to pause its agent.", severity="warning")
            return
        runner = self.gateway.runner
        paused = rt.key not in runner.paused_sessions
        runner.set_session_paused(rt.key, paused)
        self.notify(
            f"Agent paused in {rt.source.display_name}: you answer by hand."
            if paused
            else f"Agent answers {rt.source.display_name} again."
        )
        self._update_prompt_hint()

    def toggle_platform_pause(self) -> None:
        rt = self.selected_runtime()
        if rt is None or rt.source.platform == "local":
            self.notify("Select a chat of the platform to pause.", severity="warning")
            return
        runner = self.gateway.runner
        platform = rt.source.platform
        paused = platform not in runner.paused_platforms
        runner.set_platform_paused(platform, paused)
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

    def _clear_lag(self) -> None:
        self.query_one(StatusLine).lag_ms = 0

    def update_status(self, busy: bool | None = None) -> None:
        status = self.query_one(StatusLine)
        if self.gateway is None or self.gateway.runner is None or self.current_key is None:
            return
        runner = self.gateway.runner
        rt = runner.sessions.get(self.current_key)
        if rt is None:
            return
        status.model = runner.model_for(rt).name
        status.session = rt.record.title or "untitled session"
        status.tokens = rt.record.prompt_tokens + rt.record.completion_tokens
        status.busy = rt.busy if busy is None else busy

    # --- actions (bound by the app) -----------------------------------------------------

    def interrupt(self) -> bool:
        if self.gateway is None or self.gateway.runner is None or self.current_key is None:
            return False
        return self.gateway.runner.interrupt(self.current_key)
