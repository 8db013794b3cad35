"""The Sessions pane: every chat on every platform, grouped by platform, newest first, live.

Each chat is one row showing its current session; the sessions ``/new`` ended are folded under
it ("▸ 3 earlier sessions", loaded when unfolded). API traffic, one stored session per
stateless request, is collapsed into one row per client, so a busy API client cannot push the
chats out of sight.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from hermes_gateway.store import SessionRecord
from hermes_gateway.text import ago_short, clip
from hermes_tui import gateway_messages as gm
from hermes_tui.messages import SessionSelected

PLATFORM_MARKS = {
    "local": "⌂",
    "telegram": "✈",
    "discord": "◆",
    "slack": "#",
    "sms": "✉",
    "whatsapp": "☏",
    "signal": "◎",
    "email": "@",
    "irc": "»",
    "homeassistant": "△",
    "api": "⇄",
    "webhook": "↯",
}
PLATFORM_NAMES = {
    "local": "This terminal",
    "api": "API clients",
    "cron": "Cron jobs",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
}
#: Platforms whose sessions are collapsed into one row per client (one session per request).
COLLAPSED_PLATFORMS = frozenset({"api"})

PastLoader = Callable[[str], Awaitable[list[SessionRecord]]]

_MARKUP = re.compile(r"[#*`|>_~]+|-{3,}")


def _preview(text: str) -> str:
    """A message as one plain line: Markdown's marks (headings, tables, code fences) dropped."""
    return " ".join(_MARKUP.sub(" ", text).split())[:80]


@dataclass
class SessionRow:
    """One chat (a session key) and its current session."""

    key: str
    session_id: str
    platform: str
    name: str
    preview: str = ""
    updated_at: float = 0.0
    streaming: bool = False
    unread: bool = False
    past_count: int = 0
    """Sessions of this chat that ``/new`` ended (folded under it)."""
    client: str = ""
    """For collapsed platforms (API): the client the row is grouped under."""
    title: str = ""
    """The current session's title (shown after a remote chat's name; instead of it here)."""

    @property
    def shown_name(self) -> str:
        if self.platform == "local" or not self.title or self.title == self.name:
            return self.title or self.name
        return f"{self.name} · {self.title}"


class SessionsPane(OptionList):
    """Every chat, grouped by platform and newest first: kept current by session and turn
    messages. Enter opens a chat, unfolds its earlier sessions, or opens one of them."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows: dict[str, SessionRow] = {}
        self.current_key: str | None = None
        self.current_session: str | None = None
        """An earlier session being shown (highlighted under its chat), or None."""
        self.filter_text = ""
        self.expanded: set[str] = set()
        """Unfolded chats (their keys) and API clients (``group|<client>``)."""
        self.past: dict[str, list[SessionRecord]] = {}
        self.loader: PastLoader | None = None
        """Loads a chat's sessions when it is unfolded (set by the screen)."""
        self._order: list[tuple[str, str | None]] = []
        """(key, session id or None) of each chat row as shown, for :meth:`first_match`."""

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._render_rows()

    def load(self, records: list[SessionRecord], past_counts: dict[str, int]) -> None:
        """Fill the list from the store at start (the chats' current sessions)."""
        for record in records:
            self.rows[record.session_key] = SessionRow(
                key=record.session_key,
                session_id=record.id,
                platform=record.platform,
                name=record.display_name or record.session_key,
                title=record.title or "",
                preview=_preview(record.last_preview),
                updated_at=record.updated_at,
                past_count=past_counts.get(record.session_key, 0),
                client=record.display_name or "API client",
            )
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
        client: str | None = None,
        title: str | None = None,
    ) -> None:
        row = self.rows.get(key)
        if row is None:
            row = SessionRow(key, session_id or "", platform or key.split(":", 1)[0], name or key)
            row.client = client or name or "API client"
            self.rows[key] = row
        if session_id and session_id != row.session_id:
            if row.session_id:
                row.past_count += 1  # the former current session was ended by /new
                self.past.pop(key, None)
                if key in self.expanded:
                    self._load_past(key)
            row.session_id = session_id
        if name:
            row.name = name
        if title is not None:
            row.title = title
        if preview is not None:
            row.preview = _preview(preview)
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
        reset = event.reason in ("started", "reset")
        self.upsert(
            event.session_key,
            session_id=event.session_id,
            platform=event.platform or None,
            name=event.display_name,
            title=event.title or "",
            touched=reset,
            client=event.display_name,
        )

    def mark_read(self, key: str, session_id: str | None = None) -> None:
        self.current_key = key
        self.current_session = session_id
        if key in self.rows:
            self.rows[key].unread = False
        self._render_rows()

    # --- folding --------------------------------------------------------------------------

    def toggle(self, fold: str) -> None:
        """Unfold or fold a chat's earlier sessions (``fold`` is its key) or an API client."""
        if fold in self.expanded:
            self.expanded.discard(fold)
        else:
            self.expanded.add(fold)
            if not fold.startswith("group|") and fold not in self.past:
                self._load_past(fold)
        self._render_rows()

    @work(group="sessions-past", exit_on_error=False)
    async def _load_past(self, key: str) -> None:
        if self.loader is None:
            return
        row = self.rows.get(key)
        records = await self.loader(key)
        self.past[key] = [r for r in records if row is None or r.id != row.session_id]
        if row is not None:
            row.past_count = len(self.past[key])
        self._render_rows()

    def first_match(self) -> tuple[str, str | None] | None:
        """The first chat shown (after filtering): what Enter in the filter opens."""
        return self._order[0] if self._order else None

    # --- rendering --------------------------------------------------------------------------

    def _matches(self, row: SessionRow) -> bool:
        if not self.filter_text:
            return True
        haystack = f"{row.name} {row.title} {row.platform} {row.preview} {row.key} {row.client}"
        haystack = haystack.lower()
        return self.filter_text in haystack

    def _render_rows(self) -> None:
        shown = [r for r in self.rows.values() if self._matches(r)]
        by_platform: dict[str, list[SessionRow]] = {}
        for row in sorted(shown, key=lambda r: r.updated_at, reverse=True):
            by_platform.setdefault(row.platform, []).append(row)
        highlighted = self.highlighted_option.id if self.highlighted_option else None
        options: list[Option] = []
        self._order = []
        for platform, rows in by_platform.items():
            options.append(
                Option(self._header(platform, rows), id=f"hdr|{platform}", disabled=True)
            )
            if platform in COLLAPSED_PLATFORMS:
                self._add_groups(options, rows)
            else:
                for row in rows:
                    self._add_chat(options, row, indent="")
        self.clear_options()
        self.add_options(options)
        wanted = highlighted or (f"chat|{self.current_key}" if self.current_key else None)
        if wanted is not None:
            for index, option in enumerate(options):
                if option.id == wanted:
                    self.highlighted = index
                    break

    def _add_chat(self, options: list[Option], row: SessionRow, indent: str) -> None:
        options.append(Option(self._label(row, indent), id=f"chat|{row.key}"))
        self._order.append((row.key, None))
        if row.past_count <= 0 or row.platform in COLLAPSED_PLATFORMS:
            return
        unfolded = row.key in self.expanded
        fold = Text(f"{indent}  {'▾' if unfolded else '▸'} ", style="dim")
        count = row.past_count
        fold.append(f"{count} earlier session{'s' if count != 1 else ''}", style="dim italic")
        options.append(Option(fold, id=f"fold|{row.key}"))
        if not unfolded:
            return
        past = self.past.get(row.key)
        if past is None:
            options.append(Option(Text(f"{indent}    loading…", style="dim"), disabled=True))
            return
        for record in past:
            options.append(
                Option(self._past_label(record, indent), id=f"past|{row.key}|{record.id}")
            )

    def _add_groups(self, options: list[Option], rows: list[SessionRow]) -> None:
        clients: dict[str, list[SessionRow]] = {}
        for row in rows:
            clients.setdefault(row.client or "API client", []).append(row)
        for client, members in clients.items():
            fold = f"group|{client}"
            unfolded = fold in self.expanded or bool(self.filter_text)
            label = Text(no_wrap=True, overflow="ellipsis")
            label.append(f"{'▾' if unfolded else '▸'} ", style="bold cyan")
            label.append(client, style="bold" if any(m.unread for m in members) else "")
            label.append(f"  {len(members)} session{'s' if len(members) != 1 else ''}", style="dim")
            if any(m.streaming for m in members):
                label.append("  ✎", style="yellow")
            label.append(f"  {ago_short(time.time() - members[0].updated_at)}", style="dim")
            options.append(Option(label, id=fold))
            if unfolded:
                for row in members:
                    self._add_chat(options, row, indent="  ")

    def _header(self, platform: str, rows: list[SessionRow]) -> Text:
        name = PLATFORM_NAMES.get(platform, platform.capitalize())
        text = Text(no_wrap=True)
        text.append(f"{PLATFORM_MARKS.get(platform, '•')} {name}", style="bold dim")
        text.append(f"  {len(rows)}", style="dim")
        return text

    def _label(self, row: SessionRow, indent: str = "") -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(indent + "  ")
        text.append(row.shown_name, style="bold" if row.unread else "")
        if row.streaming:
            text.append("  ✎", style="yellow")
        elif row.unread:
            text.append(" ●", style="magenta")
        if row.updated_at:
            text.append(f"  {ago_short(time.time() - row.updated_at)}", style="dim")
        if row.preview:
            width = max(10, self.scrollable_content_region.width - 6 - len(indent))
            preview = clip(row.preview, width)
            text.append(f"\n{indent}    " + preview, style="dim")
        return text

    def _past_label(self, record: SessionRecord, indent: str) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        mark = "▶ " if record.id == self.current_session else "  "
        text.append(f"{indent}    {mark}", style="dim")
        name = record.title or time.strftime("%d %b %H:%M", time.localtime(record.created_at))
        text.append(name, style="italic")
        text.append(f"  {record.message_count} msgs", style="dim")
        if record.ended_at:
            text.append(f" · {ago_short(time.time() - record.ended_at)}", style="dim")
        return text

    def on_resize(self) -> None:
        self._render_rows()  # previews are cut to the width

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        kind, _, rest = (event.option.id or "").partition("|")
        if kind == "chat" and rest in self.rows:
            self.post_message(SessionSelected(rest, None))
        elif kind == "fold":
            self.toggle(rest)
        elif kind == "group":
            self.toggle(f"group|{rest}")
        elif kind == "past":
            key, _, session_id = rest.rpartition("|")
            self.post_message(SessionSelected(key, session_id))
