"""Follow new content in a scrolling pane, like ``tail -f``.

Textual 8 anchors a container by pinning its content to the bottom edge, even when there is
too little content to scroll, which leaves a short transcript floating at the bottom of an
empty pane. So a pane anchors only once its content overflows, and un-anchors when cleared.
"""

from __future__ import annotations

from textual.widget import Widget


def follow(widget: Widget) -> None:
    """Call after adding content: anchor once the content no longer fits."""

    def check() -> None:
        if (
            not widget.is_anchored
            and widget.virtual_size.height > widget.scrollable_content_region.height
        ):
            widget.anchor()

    widget.call_after_refresh(check)


def unfollow(widget: Widget) -> None:
    widget.anchor(False)
    widget.scroll_home(animate=False, immediate=True)
