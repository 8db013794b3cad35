"""What the adapter remembers about threads, kept in the store's kv so a restart keeps it.

* For each thread (sender + root Message-ID) the :class:`ThreadContext` of its newest mail:
  an answer delivered after a restart (the inbox resumes unanswered turns) is still a
  proper reply with the right subject, In-Reply-To and References.
* For each answer we sent, the thread it belongs to: a mail client that answers with only
  ``In-Reply-To`` (no References) still lands in the same session.

Both are also cached in memory (bounded), so a busy thread costs no reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from hermes_gateway.platforms.base import IntakeError
from hermes_gateway.platforms.email.compose import ThreadContext

if TYPE_CHECKING:
    from hermes_gateway.store import SessionStore

__all__ = ["ThreadBook"]

log = logging.getLogger(__name__)

_CACHE_MAX = 4096


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


class ThreadBook:
    """Thread contexts and our sent ids, in kv under ``email:<account>:``."""

    def __init__(self, store: SessionStore | None, account: str) -> None:
        self.store = store
        self.prefix = f"email:{account.lower()}:"
        self._contexts: OrderedDict[str, ThreadContext] = OrderedDict()
        self._roots: OrderedDict[str, str] = OrderedDict()

    @staticmethod
    def _remember(cache: OrderedDict[str, object], key: str, value: object) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE_MAX:
            cache.popitem(last=False)

    def _ctx_key(self, chat: str, thread: str) -> str:
        return f"{self.prefix}thread:{_digest(chat)}:{thread}"

    async def save_context(self, chat: str, thread: str, ctx: ThreadContext) -> None:
        """Keep the newest mail's context; raises IntakeError when the store cannot (the mail
        then stays unread on the server, like any mail the gateway could not store)."""
        key = self._ctx_key(chat, thread)
        self._remember(self._contexts, key, ctx)  # type: ignore[arg-type]
        if self.store is not None:
            try:
                await self.store.kv_set(key, json.dumps(ctx.to_json(), ensure_ascii=False))
            except Exception as exc:  # a full disk, a read-only database...
                raise IntakeError(f"cannot store the thread of a mail: {exc}") from exc

    async def context(self, chat: str, thread: str | None) -> ThreadContext | None:
        if not thread:
            return None
        key = self._ctx_key(chat, thread)
        found = self._contexts.get(key)
        if found is not None or self.store is None:
            return found
        raw = await self.store.kv_get(key)
        if not raw:
            return None
        try:
            ctx = ThreadContext.from_json(json.loads(raw))
        except ValueError:
            log.warning("a stored email thread context is unreadable; answering as new mail")
            return None
        self._remember(self._contexts, key, ctx)  # type: ignore[arg-type]
        return ctx

    async def sent(self, message_id: str, thread: str) -> None:
        """Remember that our mail ``message_id`` belongs to ``thread`` (a thread key)."""
        key = f"{self.prefix}sent:{_digest(message_id)}"
        self._remember(self._roots, key, thread)  # type: ignore[arg-type]
        if self.store is not None:
            await self.store.kv_set(key, thread)

    async def delivered(self, message_id: str) -> None:
        """Record that the SMTP server took our mail ``message_id`` (never raises: the mail
        is gone; at worst it is sent again, with the same Message-ID, after a restart)."""
        if self.store is None:
            return
        try:
            await self.store.kv_set(f"{self.prefix}delivered:{_digest(message_id)}", "1")
        except Exception as exc:
            log.warning("could not record a delivered answer: %s", exc)

    async def was_delivered(self, message_id: str) -> bool:
        """Whether our mail ``message_id`` was already taken by the SMTP server (an answer
        the gateway delivers again after a restart is then not sent twice)."""
        if self.store is None:
            return False
        return bool(await self.store.kv_get(f"{self.prefix}delivered:{_digest(message_id)}"))

    async def thread_of_ours(self, message_id: str) -> str | None:
        """The thread key of one of our own mails (None when it is not ours)."""
        key = f"{self.prefix}sent:{_digest(message_id)}"
        found = self._roots.get(key)
        if found is not None or self.store is None:
            return found
        return await self.store.kv_get(key)
