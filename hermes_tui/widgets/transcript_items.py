"""The widgets a transcript is made of, one per kind of thing the Conversation pane shows.

Each stored message or note maps to one widget (:func:`widgets_for`), and the live events of a
turn build the very same widgets, so a reopened chat looks exactly as it did while it ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static

from hermes_gateway.store import StoredMessage, TranscriptNote
from hermes_gateway.text import one_line

#: Characters of a tool's output shown in its block (the rest is in the store).
OUTPUT_SHOWN = 4_000
OPERATOR_LABEL = "*you, as the bot:* "


class UserMessage(Static):
    """What the person (or a remote user) wrote."""


class AgentResponse(Markdown):
    """One answer of the agent (or the part of it before or after a tool call)."""


class OperatorMessage(Markdown):
    """What the operator wrote into a remote chat, as the bot (labelled so)."""

    def __init__(self, text: str, **kwargs) -> None:
        super().__init__(OPERATOR_LABEL + text, **kwargs)
        self.text = text


class CommandReply(Static):
    """A slash command as typed, and its reply with its line breaks kept."""

    def __init__(self, invocation: str, reply: str, *, ok: bool = True, **kwargs) -> None:
        text = Text()
        if invocation:
            text.append(f"› {invocation}\n", style="bold")
        text.append(reply.rstrip())
        super().__init__(text, classes="" if ok else "error", **kwargs)
        self.invocation = invocation
        self.reply = reply


class NoticeLine(Static):
    """Errors, retries and interruptions: not part of the conversation itself."""


class ToolBlock(Collapsible):
    """One tool call: name and what it ran in the title; arguments and output folded in."""

    def __init__(self, call_id: str, name: str, preview: str, arguments: str = "", **kwargs):
        self.call_id = call_id
        self.name_ = name
        self.preview = preview
        self._arguments = Static(_pretty_arguments(arguments), classes="tool-args", markup=False)
        self._output = Static("running…", classes="tool-output empty", markup=False)
        super().__init__(
            self._arguments,
            self._output,
            title=self._heading("…"),
            collapsed=True,
            **kwargs,
        )
        self.done = False

    def _heading(self, status: str) -> str:
        preview = one_line(self.preview, 60)
        return f"⚙ {self.name_}" + (f"  {preview}" if preview else "") + f"  — {status}"

    def finish(self, ok: bool, summary: str, output: str, duration: float | None = None) -> None:
        """The call ended: its status in the title, what it returned inside."""
        self.done = True
        took = f" {duration:.1f}s" if duration is not None else ""
        status = ("✓" if ok else "✗") + took + (f", {one_line(summary, 40)}" if summary else "")
        self.title = self._heading(status)
        self.set_class(not ok, "failed")
        shown = output if len(output) <= OUTPUT_SHOWN else output[:OUTPUT_SHOWN] + "\n…"
        self._output.update(shown or "(no output)")
        self._output.remove_class("empty")


def _pretty_arguments(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return raw


def widgets_for(items: Iterable[StoredMessage | TranscriptNote]) -> list[Widget]:
    """The widgets of a stored transcript, in order (see :meth:`merge_transcript`)."""
    widgets: list[Widget] = []
    blocks: dict[str, ToolBlock] = {}
    for item in items:
        if isinstance(item, TranscriptNote):
            widgets.append(_note_widget(item))
            continue
        widget_id = f"msg-{item.id}" if item.id is not None else None
        if item.role == "user" and item.content:
            widgets.append(UserMessage(item.content, markup=False, id=widget_id))
        elif item.role == "assistant" and item.meta.get("from_operator"):
            widgets.append(OperatorMessage(item.content or "", id=widget_id))
        elif item.role == "assistant":
            if item.content:
                widgets.append(AgentResponse(item.content, id=widget_id))
            for call in item.tool_calls or []:
                function = call.get("function") or {}
                name = str(function.get("name", "tool"))
                arguments = str(function.get("arguments", ""))
                block = ToolBlock(str(call.get("id", "")), name, _preview(arguments), arguments)
                blocks[block.call_id] = block
                widgets.append(block)
            if item.interrupted:
                widgets.append(NoticeLine("⏹ interrupted", classes="warning"))
        elif item.role == "tool":
            found = blocks.get(item.tool_call_id or "")
            content = item.content or ""
            ok = bool(item.meta.get("ok", not content.startswith("error")))
            if found is not None:
                duration = item.meta.get("duration")
                summary = str(item.meta.get("summary", ""))
                found.finish(
                    ok, summary, content, duration if isinstance(duration, float) else None
                )
                if widget_id is not None:
                    found.id = widget_id  # a search hit in a tool's output opens its block
    return widgets


def _preview(arguments: str) -> str:
    try:
        data = json.loads(arguments)
    except (ValueError, TypeError):
        return one_line(arguments, 60)
    if isinstance(data, dict) and data:
        return one_line(str(next(iter(data.values()))), 60)
    return ""


def _note_widget(note: TranscriptNote) -> Widget:
    if note.kind == "command":
        return CommandReply(
            str(note.meta.get("invocation", "")), note.text, ok=bool(note.meta.get("ok", True))
        )
    level = str(note.meta.get("level", "info"))
    prefix = "⚠ " if level == "error" and not note.text.startswith("⚠") else ""
    return NoticeLine(prefix + note.text, classes=level, markup=False)
