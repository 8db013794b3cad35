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
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, completer: SlashComplete, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.completer = completer
        self.input_history = InputHistory()
        self.placeholder = "Message Hermes — / for commands, Ctrl+J for a newline"

    def action_newline(self) -> None:
        self.insert("\n")

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
        self.completer.update_for(self.text)
