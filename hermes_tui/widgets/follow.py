"""Follow new content in a scrolling pane, like ``tail -f``.

Textual 8 anchors a container by pinning its content to the bottom edge, even when there is
too little content to scroll, which leaves a short transcript floating at the bottom of an
empty pane. So a pane anchors only once its content overflows, and un-anchors when cleared.
"""

from __future__ import annotations

from textual.widget import Widget


def follow(widget: Widget) -> None:
    """Call after adding content: anchor once the content no longer fits."""

    def check(again: bool) -> None:
        if getattr(widget, "follow_paused", False):
            return
        overflowing = widget.virtual_size.height > widget.scrollable_content_region.height
        if not widget.is_anchored and overflowing:
            widget.anchor()
        elif again:
            # A Markdown child learns its height only on its own next render: look once more.
            widget.call_after_refresh(check, False)

    widget.call_after_refresh(check, True)


def unfollow(widget: Widget) -> None:
    widget.anchor(False)
    widget.scroll_home(animate=False, immediate=True)
