"""The input: Enter sends, Ctrl+J (or Alt+Enter) inserts a newline, Up/Down recall history,
and a leading ``/`` opens command completion (Tab or Enter accepts, Escape closes)."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from hermes_tui.history import InputHistory
from hermes_tui.widgets.slash_complete import SlashComplete


class PromptInput(TextArea):
    BINDINGS = [
        Binding("ctrl+j,alt+enter", "newline", "Newline", id="input.newline", show=False),
        Binding(
            "pageup", "scroll_conversation('page_up')", "Scroll up", id="input.page_up", show=False
        ),
        Binding(
            "pagedown",
            "scroll_conversation('page_down')",
            "Scroll down",
            id="input.page_down",
            show=False,
        ),
        Binding(
            "ctrl+home", "scroll_conversation('top')", "To the top", id="input.top", show=False
        ),
        Binding(
            "ctrl+end",
            "scroll_conversation('bottom')",
            "To the bottom",
            id="input.bottom",
            show=False,
        ),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ScrollRequested(Message):
        """Scroll the conversation from the input (``page_up``, ``page_down``, ``top``,
        ``bottom``): reading back never needs the mouse or a focus change."""

        def __init__(self, where: str) -> None:
            super().__init__()
            self.where = where

    def __init__(self, completer: SlashComplete, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.completer = completer
        self.input_history = InputHistory()
        self.placeholder = "Message Hermes — / for commands, Ctrl+J for a newline"
        self._recalled: str | None = None
        """Text just loaded from history: its change must not open the completion list."""

    def action_newline(self) -> None:
        self.insert("\n")

    def action_scroll_conversation(self, where: str) -> None:
        self.post_message(self.ScrollRequested(where))

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if key in ("enter", "tab") and self.completer.is_open:
            self._stop(event)
            self._accept_completion(submit=key == "enter")
            return
        if key == "enter":
            self._stop(event)
            self._submit()
            return
        if key in ("up", "down") and self.completer.is_open:
            self._stop(event)
            self.completer.move(-1 if key == "up" else 1)
            return
        if key == "escape" and self.completer.is_open:
            self._stop(event)
            self.completer.close()
            return
        if key == "up" and self.cursor_location[0] == 0:
            self._stop(event)
            self._recall(self.input_history.previous(self.text))
            return
        if key == "down" and self.cursor_location[0] == self.document.line_count - 1:
            self._stop(event)
            self._recall(self.input_history.next())
            return
        await super()._on_key(event)

    @staticmethod
    def _stop(event: events.Key) -> None:
        event.stop()
        event.prevent_default()

    def _recall(self, text: str | None) -> None:
        if text is None:
            return
        self._recalled = text
        self.load_text(text)
        self.move_cursor(self.document.end)
        self.completer.close()

    def _accept_completion(self, *, submit: bool) -> None:
        spec = self.completer.selected()
        self.completer.close()
        if spec is None:
            return
        if submit and not spec.args_hint:
            self.load_text(f"/{spec.name}")
            self._submit()
            return
        self.load_text(f"/{spec.name} ")
        self.move_cursor(self.document.end)

    def _submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        self.input_history.add(text)
        self.clear()
        self.completer.close()
        self.post_message(self.Submitted(text))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._recalled is not None and self.text == self._recalled:
            return  # a recalled line, even "/model x", is walked past, not completed
        self._recalled = None
        self.completer.update_for(self.text)
