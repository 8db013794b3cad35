"""The Sessions pane: every conversation on every platform, newest first, live."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from hermes_gateway.text import ago_short, clip
from hermes_tui import gateway_messages as gm
from hermes_tui.messages import SessionSelected

PLATFORM_MARKS = {"local": "⌂", "telegram": "✈", "discord": "◆", "api": "⇄", "webhook": "↯"}


@dataclass
class SessionRow:
    key: str
    session_id: str
    platform: str
    name: str
    preview: str = ""
    updated_at: float = 0.0
    streaming: bool = False
    unread: bool = False


class SessionsPane(OptionList):
    """Every session, newest first: kept current by session and turn messages."""

    BORDER_TITLE = "Sessions"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: dict[str, SessionRow] = {}
        self.current_key: str | None = None
        self.filter_text = ""

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._render_rows()

    def upsert(
        self,
        key: str,
        *,
        session_id: str | None = None,
        platform: str | None = None,
        name: str | None = None,
        preview: str | None = None,
        streaming: bool | None = None,
        touched: bool = False,
    ) -> None:
        row = self.rows.get(key)
        if row is None:
            row = SessionRow(key, session_id or "", platform or key.split(":", 1)[0], name or key)
            self.rows[key] = row
        if session_id:
            row.session_id = session_id
        if name:
            row.name = name
        if preview is not None:
            row.preview = " ".join(preview.split())[:80]
        if streaming is not None:
            row.streaming = streaming
        if touched:
            row.updated_at = time.time()
            if key != self.current_key:
                row.unread = True
        self._render_rows()

    # --- gateway messages ----------------------------------------------------------------

    @on(gm.MessageReceived)
    def _on_received(self, message: gm.MessageReceived) -> None:
        event = message.event
        if not event.is_command:
            self.upsert(event.session_key, preview=event.text, touched=True)

    @on(gm.TurnStarted)
    def _on_turn_started(self, message: gm.TurnStarted) -> None:
        self.upsert(message.event.session_key, streaming=True)

    @on(gm.TurnFinished)
    def _on_turn_finished(self, message: gm.TurnFinished) -> None:
        event = message.event
        self.upsert(
            event.session_key,
            streaming=False,
            preview=event.text or event.error or "",
            touched=True,
        )

    @on(gm.SessionChanged)
    def _on_session_changed(self, message: gm.SessionChanged) -> None:
        event = message.event
        self.upsert(
            event.session_key,
            session_id=event.session_id,
            platform=event.platform or None,
            name=event.title or event.display_name,
            touched=event.reason in ("started", "reset"),
        )

    def mark_read(self, key: str) -> None:
        self.current_key = key
        if key in self.rows:
            self.rows[key].unread = False
        self._render_rows()

    def _render_rows(self) -> None:
        ordered = sorted(self.rows.values(), key=lambda r: r.updated_at, reverse=True)
        if self.filter_text:
            needle = self.filter_text
            ordered = [
                r for r in ordered if needle in f"{r.name} {r.platform} {r.preview} {r.key}".lower()
            ]
        highlighted = self.highlighted_option.id if self.highlighted_option else self.current_key
        options = [Option(self._label(r), id=r.key) for r in ordered]
        self.clear_options()
        self.add_options(options)
        if highlighted is not None:
            for index, row in enumerate(ordered):
                if row.key == highlighted:
                    self.highlighted = index
                    break

    def _label(self, row: SessionRow) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(PLATFORM_MARKS.get(row.platform, "•") + " ", style="bold cyan")
        text.append(row.name, style="bold" if row.unread else "")
        if row.streaming:
            text.append("  ✎", style="yellow")
        elif row.unread:
            text.append(" ●", style="magenta")
        if row.updated_at:
            text.append(f"  {ago_short(time.time() - row.updated_at)}", style="dim")
        if row.preview:
            width = max(10, self.scrollable_content_region.width - 4)
            preview = clip(row.preview, width)
            text.append("\n  " + preview, style="dim")
        return text

    def on_resize(self) -> None:
        self._render_rows()  # previews are cut to the width

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        key = event.option.id
        if key is not None and key in self.rows:
            self.post_message(SessionSelected(key, self.rows[key].session_id))
