"""The Cron pane: scheduled jobs (an empty state until jobs exist)."""

from __future__ import annotations

from textual.widgets import Static


class CronPane(Static):
    BORDER_TITLE = "Cron"

    def __init__(self, **kwargs) -> None:
        super().__init__("No scheduled jobs.", classes="empty", **kwargs)
