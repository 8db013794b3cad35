"""Search every stored conversation (FTS5) and jump to a hit."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from hermes_gateway.store import SearchHit
from hermes_gateway.text import ago


@dataclass(frozen=True)
class SearchJump:
    session_key: str
    session_id: str
    message_id: int


class Searcher(Protocol):
    """What the screen searches: :class:`~hermes_gateway.operator.OperatorControl`."""

    async def search(self, query: str, limit: int = 50) -> list[SearchHit]: ...


class SearchScreen(ModalScreen[SearchJump | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="search.close")]

    def __init__(self, store: Searcher, query: str = "") -> None:
        super().__init__()
        self.store = store
        self.initial = query
        self.hits: list = []

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Label("Search all conversations", id="search-title")
            yield Input(self.initial, placeholder="words to find (Enter)", id="search-input")
            yield OptionList(id="search-results")
            yield Label("Enter: search, then ↑↓ and Enter to open · Esc: close", id="search-help")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if self.initial:
            self.run_search(self.initial)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.run_search(event.value)

    @work(exclusive=True, group="search", exit_on_error=False)
    async def run_search(self, query: str) -> None:
        results = self.query_one(OptionList)
        self.hits = await self.store.search(query, limit=50)
        results.clear_options()
        if not self.hits:
            results.add_option(Option(Text("No matches.", style="dim"), disabled=True))
            return
        now = time.time()
        results.add_options(
            Option(self._label(hit, now), id=str(index)) for index, hit in enumerate(self.hits)
        )
        results.highlighted = 0
        results.focus()

    @staticmethod
    def _label(hit: SearchHit, now: float) -> Text:
        """A hit, named by its own session (an earlier session of a chat keeps its title)."""
        text = Text(no_wrap=True, overflow="ellipsis")
        chat = hit.display_name or hit.session_key
        name = f"{chat} · {hit.session_title}" if hit.session_title else chat
        text.append(name, style="bold")
        if hit.ended_at is not None:
            text.append("  earlier session", style="italic dim")
        text.append(f"  {hit.role}  {ago(now - hit.created_at)}\n", style="dim")
        snippet = " ".join(hit.snippet.split())
        for index, part in enumerate(snippet.split("[")):
            if index == 0:
                text.append(part)
                continue
            found, _, rest = part.partition("]")
            text.append(found, style="reverse")
            text.append(rest)
        return text

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is None:
            return
        hit = self.hits[int(event.option.id)]
        self.dismiss(SearchJump(hit.session_key, hit.session_id, hit.message_id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
