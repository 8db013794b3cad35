"""F1: every key binding (with its id) and every slash command, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close", id="help.close")]

    def __init__(
        self, bindings: list[Binding], commands_markdown: str, diagnostics: str = ""
    ) -> None:
        super().__init__()
        self.bindings_list = bindings
        self.commands_markdown = commands_markdown
        self.diagnostics = diagnostics
        """Health figures too small for the status line (the last loop stall)."""

    def compose(self) -> ComposeResult:
        rows = ["| key | action | id |", "| --- | --- | --- |"]
        for binding in self.bindings_list:
            rows.append(f"| `{binding.key}` | {binding.description} | `{binding.id or ''}` |")
        text = (
            "# Keys\n\n"
            + "\n".join(rows)
            + "\n\nIn the input: Enter sends, Ctrl+J or Alt+Enter adds a line, Up/Down recall "
            "earlier inputs, `/` completes commands (Tab/Enter accepts, Esc closes).\n\n"
            "With a remote chat selected, what you type goes into that chat **as the bot**, "
            "and commands act on that chat.\n\n# Commands\n\n" + self.commands_markdown
        )
        if self.diagnostics:
            text += "\n\n# Health\n\n" + self.diagnostics
        with VerticalScroll(id="help-box"):
            yield Markdown(text)
