"""Platform-neutral delivery errors.

Adapters translate their library's exceptions (``telegram.error.RetryAfter``,
``discord.HTTPException`` ...) into these, so that the shared delivery code (rate gate,
stream consumer, tool progress) can react to *what happened* without knowing which
platform it talks to.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """Base of every error the delivery layer understands."""


class RetryAfter(DeliveryError):
    """The platform rate-limited us; the request did NOT take effect.

    Because the request was refused, repeating it after ``seconds`` cannot produce a
    duplicate message, which is what lets the rate gate retry it blindly.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, float(seconds))
        super().__init__(f"rate limited, retry after {self.seconds:g}s")


class MessageNotModified(DeliveryError):
    """An edit carried the text the message already shows; harmless, never an error."""


class FormattingRejected(DeliveryError):
    """The platform refused the markup (e.g. Telegram "can't parse entities")."""


class EditFailed(DeliveryError):
    """The message can no longer be edited (deleted, too old...): permanent for that message."""


class MessageGone(EditFailed):
    """The message to edit no longer exists (deleted by a user or a moderator).

    Unlike a message that is merely frozen (too old, not ours), its text is no longer in
    the chat: whatever it showed has to be sent again.
    """


class PermanentDeliveryError(DeliveryError):
    """The chat cannot receive anything (chat gone, bot blocked, forbidden...)."""


class TransientDeliveryError(DeliveryError):
    """A network or server hiccup; the same request may succeed later."""


class GateClosed(DeliveryError):
    """The rate gate was closed while the operation was waiting; it was never started."""


__all__ = [
    "DeliveryError",
    "EditFailed",
    "FormattingRejected",
    "GateClosed",
    "MessageGone",
    "MessageNotModified",
    "PermanentDeliveryError",
    "RetryAfter",
    "TransientDeliveryError",
]
