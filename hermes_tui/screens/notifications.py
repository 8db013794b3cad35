"""F9: recent notifications; Enter opens what one is about."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from hermes_tui.notifications import Notification, NotificationCenter

MARK = {"information": ("•", "cyan"), "warning": ("!", "yellow"), "error": ("✗", "red")}


class NotificationsScreen(ModalScreen[Notification | None]):
    BINDINGS = [Binding("escape,f9,q", "close", "Close", id="notifications.close")]

    def __init__(self, center: NotificationCenter) -> None:
        super().__init__()
        self.center = center
        self.shown = list(center.items)

    def compose(self) -> ComposeResult:
        with Vertical(id="notifications-box"):
            yield Label("Notifications", id="notifications-title")
            options = OptionList(id="notifications-list")
            if not self.shown:
                options.add_option(Option(Text("Nothing to look at.", style="dim"), disabled=True))
            now = time.time()
            for index, item in enumerate(self.shown):
                options.add_option(Option(self._label(item, now), id=str(index)))
            yield options
            yield Label("Enter: open · Esc: close", id="notifications-help")
        yield Footer()  # the dialog's own keys, not the main screen's

    def on_mount(self) -> None:
        self.center.mark_all_seen()
        listing = self.query_one(OptionList)
        if self.shown:
            listing.highlighted = 0
        listing.focus()

    @staticmethod
    def _label(item: Notification, now: float) -> Text:
        mark, style = MARK.get(item.severity, ("•", ""))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{mark} ", style=style)
        text.append(item.title, style="bold")
        minutes = int((now - item.ts) // 60)
        text.append(f"  {'just now' if minutes < 1 else f'{minutes} min ago'}", style="dim")
        if item.detail:
            text.append(f"\n  {item.detail}", style="dim")
        if item.open is None:
            text.append("  (nothing to open)", style="dim italic")
        return text

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(self.shown[int(event.option.id)])

    def action_close(self) -> None:
        self.dismiss(None)
