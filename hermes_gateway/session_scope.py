"""Whose session a group message belongs to: the group's, or the sender's own.

Hermes Agent's ``group_sessions_per_user`` (default on) gives every participant of a group or
channel a session of their own, so one person's conversation, history and commands (/new,
/resume, /title, ...) never mix with another's; ``thread_sessions_per_user`` (default off)
does the same inside threads, which are otherwise shared by everyone in them. The choice is
made once, when a message enters the runner, by marking its source ``per_user``; everything
after (the session key, the inbox, commands) follows the source.
"""

from __future__ import annotations

from dataclasses import replace

from hermes_gateway.config import Config
from hermes_gateway.models import SessionSource

__all__ = ["scoped"]

SHARED_PLATFORMS = frozenset({"local", "api", "webhook", "cron"})
"""Platforms whose "chats" are not groups of people (the operator, API clients, jobs)."""


def per_user(config: Config, source: SessionSource) -> bool:
    """Whether ``source``'s chat keeps one session per participant."""
    if source.chat_type == "dm" or not source.user_id or source.platform in SHARED_PLATFORMS:
        return False
    if source.thread_id or source.chat_type == "thread":
        return config.thread_sessions_per_user
    return config.group_sessions_per_user


def scoped(config: Config, source: SessionSource) -> SessionSource:
    """``source`` marked per-user when its chat's sessions are per participant.

    A source already marked (a message stored before a restart, the operator's view of a
    per-user session) keeps its mark: its session is the one it was stored in.
    """
    if source.per_user or not per_user(config, source):
        return source
    return replace(source, per_user=True)
