"""The one delivery router: where results that are not replies go (cron runs, webhooks).

A reply goes back to the chat that asked; a scheduled run or a webhook has no such chat, so
its result is sent to a *target* written by the user. Every feature that delivers this way
uses :class:`DeliveryRouter`, so the target language is the same everywhere:

=====================================  ===================================================
``local``                              no chat at all; the caller keeps the result (the cron
                                       output file, the TUI via the bus)
``origin``                             the chat the job or request came from (``origin=``)
``<platform>``                         that platform's home channel from config,
                                       ``platforms.<platform>.home_channel`` written as
                                       ``<chat_id>`` or ``<chat_id>:<thread_id>``
``<platform>:<chat_id>[:<thread_id>]`` that chat (and thread / topic)
``a,b,c``                              each of those, concurrently
=====================================  ===================================================

An answer that is exactly ``[SILENT]`` (whitespace ignored) is not delivered anywhere: it is
how an agent says "nothing worth reporting this time".

Usage::

    router = DeliveryRouter(config, runner.adapters)
    router.check("origin,telegram", origin=source)        # raises TargetError when unusable
    outcomes = await router.deliver("telegram:-1001:7", text, title="⏰ Daily summary")
    status, error = summarize(outcomes)                    # ("ok", None), ("failed", "..."), ...

Delivery never raises: each target gets a :class:`DeliveryOutcome` saying whether it was sent
and, if not, why. Callers record that apart from their own success (a cron run that worked but
could not be delivered says exactly that).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

from hermes_gateway.config import Config
from hermes_gateway.models import LOCAL_PLATFORM, SessionSource
from hermes_gateway.platforms.base import PlatformAdapter

log = logging.getLogger(__name__)

__all__ = [
    "SILENT_MARKER",
    "DeliveryOutcome",
    "DeliveryRouter",
    "Target",
    "TargetError",
    "is_silent",
    "parse_targets",
    "summarize",
]

SILENT_MARKER = "[SILENT]"
"""An answer that is exactly this is not delivered."""

TARGET_HELP = (
    'Delivery targets: "local" (no chat), "origin" (the chat it came from), a platform name '
    'such as "telegram" (its home channel), "telegram:<chat_id>[:<thread_id>]", or a comma list.'
)

TargetKind = Literal["local", "origin", "home", "chat"]
OutcomeStatus = Literal["sent", "local", "silent", "failed"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_ID = re.compile(r"^-?[A-Za-z0-9_@.\-]+$")


class TargetError(ValueError):
    """A delivery target cannot be used; the message says why and what would work."""


def is_silent(text: str | None) -> bool:
    """Whether an answer is the agent's "nothing to report" marker."""
    return text is not None and text.strip() == SILENT_MARKER


@dataclass(frozen=True, slots=True)
class Target:
    """One item of a target list, parsed but not yet resolved to a chat.

    Attributes:
        spec: The item as written (normalised to lower-case platform names).
        kind: ``local``, ``origin``, ``home`` (a platform's home channel) or ``chat``.
        platform: The platform for ``home`` and ``chat``.
        chat_id: The chat for ``chat``.
        thread_id: The thread / topic for ``chat``, if any.
    """

    spec: str
    kind: TargetKind
    platform: str | None = None
    chat_id: str | None = None
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened for one target.

    Attributes:
        target: The target item as written (``"origin"``, ``"telegram"``, ...).
        status: ``sent``; ``local`` (nothing to send: ``local``, or an origin in the local
            terminal); ``silent`` (the answer was ``[SILENT]``); ``failed``.
        destination: ``platform:chat_id[:thread_id]`` it went to (or would have gone to).
        error: Why it failed, in words for a person.
    """

    target: str
    status: OutcomeStatus
    destination: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def parse_targets(spec: str | None) -> list[Target]:
    """Split and check the syntax of a target list; an empty spec means ``local``.

    Raises:
        TargetError: An item is malformed.
    """
    items = [item.strip() for item in (spec or "").split(",")]
    items = [item for item in items if item]
    if not items:
        return [Target("local", "local")]
    targets: list[Target] = []
    for item in items:
        target = _parse_one(item)
        if target not in targets:
            targets.append(target)
    return targets


def _parse_one(item: str) -> Target:
    head, sep, rest = item.partition(":")
    name = head.strip().lower()
    if not _NAME.match(name) or (sep and not rest.strip()):
        raise TargetError(f'"{item}" is not a delivery target. {TARGET_HELP}')
    if not sep:
        if name in ("local", "origin"):
            kind: TargetKind = "local" if name == "local" else "origin"
            return Target(name, kind)
        return Target(name, "home", platform=name)
    if name in ("local", "origin"):
        raise TargetError(f'"{item}": "{name}" takes no chat id. {TARGET_HELP}')
    chat_id, _, thread_id = rest.partition(":")
    chat_id, thread_id = chat_id.strip(), thread_id.strip()
    if not _ID.match(chat_id) or (thread_id and not _ID.match(thread_id)) or ":" in thread_id:
        raise TargetError(
            f'"{item}": write a chat as "{name}:<chat_id>" or "{name}:<chat_id>:<thread_id>".'
        )
    spec = f"{name}:{chat_id}" + (f":{thread_id}" if thread_id else "")
    return Target(spec, "chat", platform=name, chat_id=chat_id, thread_id=thread_id or None)


def summarize(outcomes: list[DeliveryOutcome]) -> tuple[str, str | None]:
    """Fold per-target outcomes into one status for a job or run record.

    Returns:
        ``(status, error)`` with status ``ok`` (everything that had to be sent was),
        ``failed`` (nothing could be sent), ``partial`` (some failed), ``silent`` (the answer
        was ``[SILENT]``) or ``local`` (no chat targets); ``error`` joins the failures.
    """
    failed = [o for o in outcomes if o.status == "failed"]
    error = "; ".join(f"{o.target}: {o.error}" for o in failed) or None
    if failed:
        return ("failed" if len(failed) == len(outcomes) else "partial"), error
    if any(o.status == "sent" for o in outcomes):
        return "ok", None
    if any(o.status == "silent" for o in outcomes):
        return "silent", None
    return "local", None


class DeliveryRouter:
    """Resolves targets to chats and sends through the running platform adapters.

    Args:
        config: For each platform's ``home_channel``.
        adapters: The live ``runner.adapters`` mapping (platform name -> adapter); read at
            delivery time, so adapters added later are found.
        timeout: Seconds one send may take before it counts as failed.
    """

    def __init__(
        self,
        config: Config,
        adapters: Mapping[str, PlatformAdapter],
        *,
        timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.adapters = adapters
        self.timeout = timeout

    def known_platforms(self) -> set[str]:
        """Platform names a target may use: configured ones and running adapters."""
        names = {f.name for f in fields(self.config.platforms)}
        names.update(self.adapters)
        names.discard(LOCAL_PLATFORM)
        return names

    def check(self, spec: str | None, *, origin: SessionSource | None = None) -> list[Target]:
        """Parse ``spec`` and reject what could never be delivered (for creation time).

        A home channel that is not configured yet is accepted: it may be set before the first
        run, and the run records the failure if not.

        Raises:
            TargetError: Malformed, ``origin`` without an origin chat, or an unknown platform.
        """
        targets = parse_targets(spec)
        known = self.known_platforms()
        for target in targets:
            if target.kind == "origin" and origin is None:
                raise TargetError(
                    '"origin" needs a chat to go back to, and there is none here; use "local" '
                    "or a platform target."
                )
            if target.platform is not None and target.platform not in known:
                names = ", ".join(sorted(known)) or "none"
                raise TargetError(f'Unknown platform "{target.platform}" (known: {names}).')
        return targets

    def resolve(self, target: Target, origin: SessionSource | None) -> SessionSource | None:
        """The chat a target stands for; None for local delivery.

        Raises:
            TargetError: There is no chat for it (no origin, no home channel configured).
        """
        if target.kind == "local":
            return None
        if target.kind == "origin":
            if origin is None:
                raise TargetError("there is no origin chat to deliver to")
            return None if origin.platform == LOCAL_PLATFORM else origin
        assert target.platform is not None
        chat_id, thread_id = target.chat_id, target.thread_id
        if target.kind == "home":
            home = self.home_channel(target.platform)
            if not home:
                raise TargetError(
                    f"{target.platform} has no home channel; set "
                    f"platforms.{target.platform}.home_channel in config.yaml"
                )
            chat_id, _, thread = home.partition(":")
            thread_id = thread or None
        assert chat_id is not None
        return SessionSource(
            platform=target.platform,
            chat_id=chat_id,
            chat_type="thread" if thread_id else "channel",
            thread_id=thread_id,
        )

    def home_channel(self, platform: str) -> str:
        """``platforms.<platform>.home_channel`` ("" when the platform has none)."""
        section = self.config.platforms.chat(platform)
        return section.home if section is not None else ""

    async def deliver(
        self,
        spec: str | None,
        text: str,
        *,
        origin: SessionSource | None = None,
        title: str | None = None,
    ) -> list[DeliveryOutcome]:
        """Send ``text`` to every target in ``spec``; never raises.

        Args:
            spec: The target list (see the module docstring); empty means ``local``.
            text: The answer. Exactly ``[SILENT]`` means nothing is sent.
            origin: The chat ``origin`` stands for.
            title: A first line put above ``text`` (e.g. the job's name), not checked for
                ``[SILENT]``.

        Returns:
            One outcome per target item, in order.
        """
        try:
            targets = parse_targets(spec)
        except TargetError as exc:
            return [DeliveryOutcome(spec or "", "failed", error=str(exc))]
        silent = is_silent(text)
        body = f"{title}\n\n{text}" if title else text
        sends: dict[str, asyncio.Task[str | None]] = {}
        plans: list[tuple[Target, str | None, asyncio.Task[str | None] | None, str | None]] = []
        for target in targets:
            try:
                chat = self.resolve(target, origin)
            except TargetError as exc:
                plans.append((target, None, None, str(exc)))
                continue
            if chat is None:
                plans.append((target, None, None, None))
                continue
            dest = _destination(chat)
            if not silent and dest not in sends:  # "origin,telegram" may name one chat twice
                sends[dest] = asyncio.ensure_future(self._send(chat, body))
            plans.append((target, dest, sends.get(dest), None))
        if sends:
            await asyncio.gather(*sends.values())
        outcomes: list[DeliveryOutcome] = []
        for target, sent_to, task, error in plans:
            if error is not None:
                outcomes.append(DeliveryOutcome(target.spec, "failed", error=error))
            elif sent_to is None:
                outcomes.append(DeliveryOutcome(target.spec, "local"))
            elif silent:
                outcomes.append(DeliveryOutcome(target.spec, "silent", sent_to))
            else:
                assert task is not None
                failure = task.result()
                status: OutcomeStatus = "failed" if failure else "sent"
                outcomes.append(DeliveryOutcome(target.spec, status, sent_to, failure))
        return outcomes

    async def _send(self, chat: SessionSource, body: str) -> str | None:
        """Send to one chat; the reason it failed, or None."""
        adapter = self.adapters.get(chat.platform)
        if adapter is None:
            return f"{chat.platform} is not running"
        try:
            await asyncio.wait_for(adapter.send(chat, body), timeout=self.timeout)
        except TimeoutError:
            return f"{chat.platform} did not answer within {self.timeout:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("delivery to %s failed: %s", chat.platform, exc)
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None


def _destination(chat: SessionSource) -> str:
    dest = f"{chat.platform}:{chat.chat_id}"
    return f"{dest}:{chat.thread_id}" if chat.thread_id else dest
