"""Pairing inside a running gateway: the access check, the code offer, the operator's answers.

:class:`~hermes_gateway.access.pairing.PairingManager` keeps the rules and the state; this module
plugs them into the message path and the event bus:

* :meth:`PairingGate.check` is one of ``AccessPolicy.extra_checks``: after the allow-all flags
  and the allowlists, an approved pairing lets a user in, in DMs only. Groups stay
  allowlist-only (a code is never offered in a group, where others would read it);
* :meth:`PairingGate.on_denied` is ``AccessPolicy.on_denied``: an unknown sender in a DM of a
  platform with ``unauthorized_dm: pair`` gets a code in a copyable form and one line on what
  happens next, or is told why no code can be issued now (at most once per rate-limit window,
  so a flood of messages never becomes a flood of answers). ``ignore`` stays silent;
* the operator's answers (TUI, or ``hermes pairing`` from another process) become
  :class:`~hermes_gateway.events.PairingResolved` events, and an approved user is told in
  their chat that they are in. Changes made by the CLI are picked up by a small watcher that
  looks at SQLite's ``data_version`` once a second (a no-op when nothing changed).

Codes never reach a log; user ids are logged only as :func:`~hermes_gateway.access.policy.hash_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING

from hermes_gateway import events as ev
from hermes_gateway.access.events import PairingDecision, PairingRequested, PairingResolved
from hermes_gateway.access.pairing import (
    ApprovedUser,
    CodeIssued,
    CodeRefused,
    PairingManager,
    PendingPairing,
)
from hermes_gateway.access.policy import AccessPolicy, hash_id
from hermes_gateway.config import Config
from hermes_gateway.models import LOCAL_PLATFORM, MessageEvent, SessionSource
from hermes_gateway.text import minutes_left

if TYPE_CHECKING:
    from hermes_gateway.features import FeatureContext
    from hermes_gateway.runner import GatewayRunner

__all__ = ["PairingFeature", "PairingGate"]

log = logging.getLogger(__name__)

APPROVED_TEXT = "✅ You're in: the operator approved your access. Write to me any time."
WELCOME_TRIES = 60
"""Watcher ticks to keep trying to tell an approved user (their platform may be starting)."""
_REFUSAL_MEMORY = 10_000
"""Senders remembered for refusal throttling; older entries are forgotten beyond this."""


_ID = re.compile(
    r"-?[1-9][0-9]{0,30}|[A-Za-z][A-Za-z0-9_-]{0,63}|(?=[0-9]*[a-z])[a-z0-9]{26}"
    r"|\+[1-9][0-9]{6,14}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
"""Numbers (Telegram, Discord), names, Mattermost's 26-character ids, which may start
with a digit (never all digits, so none can read as a number), E.164 phone numbers (SMS,
Signal) and lowercase UUIDs (Signal's account ids)."""


def canonical_id(value: str | None) -> bool:
    """Whether an id looks like one a platform really sends (ASCII; numbers without a
    leading zero, sign or spaces), so that it cannot alias another id once parsed."""
    return bool(value) and _ID.fullmatch(value or "") is not None


def issued_text(code: str, ttl: float) -> str:
    """What a stranger reads: the code (``code`` formatting: one tap copies it) and what next."""
    return (
        f"Hi! I don't know you yet. Your pairing code: `{code}`\n"
        f"Send it to the person who runs this bot; once they approve it (within "
        f"{minutes_left(ttl)} min) you can talk to me."
    )


def refused_text(refusal: CodeRefused, now: float) -> str:
    """Why no code was issued, in one or two lines."""
    if refusal.reason == "pending":
        left = minutes_left((refusal.retry_at or now) - now)
        return (
            "Your access request is waiting for the operator's approval; the code you got "
            f"is valid for {left} more min."
        )
    if refusal.reason == "rate_limited":
        left = minutes_left((refusal.retry_at or now) - now)
        return f"No new pairing code can be issued yet; try again in {left} min."
    return (
        "No pairing code can be issued right now: too many requests are waiting for the "
        "operator. Try again later."
    )


class PairingGate:
    """The pairing flow of one gateway (see the module docstring).

    Args:
        config: Platform settings (``unauthorized_dm`` per platform).
        manager: Pairing state on the gateway's store.
        bus: Where PairingRequested / PairingResolved go.
        sync_interval: Seconds between looks for changes made by other processes.
    """

    def __init__(
        self,
        config: Config,
        manager: PairingManager,
        bus: ev.EventBus,
        *,
        sync_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.manager = manager
        self.bus = bus
        self.sync_interval = sync_interval
        self.runner: GatewayRunner | None = None
        self._codes: dict[tuple[str, str], str] = {}
        """Codes issued by this process, for the operator's dialog only (never stored)."""
        self._pending: dict[tuple[str, str], PendingPairing] = {}
        self._approved: dict[tuple[str, str], ApprovedUser] = {}
        self._refused_at: dict[tuple[str, str], float] = {}
        self._unwelcomed: dict[tuple[str, str], tuple[ApprovedUser, int]] = {}
        self._version: int | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # --- wiring ------------------------------------------------------------------------

    def install(self, policy: AccessPolicy, runner: GatewayRunner) -> None:
        """Become the policy's pairing check and deny handler for ``runner``'s platforms."""
        policy.extra_checks.append(self.check)
        policy.on_denied = self.on_denied
        self.runner = runner

    async def start(self) -> None:
        """Load the current state and start watching for changes made by the CLI."""
        async with self._lock:
            await self._reload(publish=False)
        self._task = asyncio.create_task(self._watch(), name="pairing-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- the message path --------------------------------------------------------------

    async def check(self, source: SessionSource) -> bool:
        """Approved pairings open DMs only."""
        if source.chat_type != "dm" or not source.user_id:
            return False
        return await self.manager.is_approved(source.platform, source.user_id)

    def mode(self, platform: str) -> str:
        """``pair`` or ``ignore`` for unauthorised DMs; platforms without the setting ignore."""
        section = self.config.platforms.chat(platform)
        return section.unauthorized_dm if section is not None else "ignore"

    async def on_denied(self, event: MessageEvent) -> None:
        """Offer a code to an unknown sender in a DM (or say why there is none)."""
        src = event.source
        if src.chat_type != "dm" or not src.user_id or src.platform == LOCAL_PLATFORM:
            return
        if self.mode(src.platform) != "pair":
            return
        if not canonical_id(src.user_id) or not canonical_id(src.chat_id):
            # Real platforms send plain ids; "07", "7 " or a full-width "７" would be read as
            # chat 7 further down, and the code would land in somebody else's chat.
            log.warning("ignoring a DM with a malformed id on %s", src.platform)
            return
        if src.platform == "telegram" and src.chat_id != src.user_id:
            # A Telegram private chat's id is its user's id; anything else is forged.
            log.warning("ignoring a Telegram DM whose chat is not its sender's")
            return
        key = (src.platform, src.user_id)
        last = self._refused_at.get(key)
        if last is not None and self.manager.clock() - last < self.manager.limits.user_interval:
            return  # told why not a moment ago: a flood costs neither a reply nor a write
        async with self._lock:
            outcome = await self.manager.request_code(src)
            if isinstance(outcome, CodeIssued):
                self._codes[key] = outcome.code
                self._pending[key] = outcome.request
                self._refused_at.pop(key, None)
        now = self.manager.clock()
        if isinstance(outcome, CodeIssued):
            req = outcome.request
            log.info("pairing code issued on %s to user %s", src.platform, hash_id(src.user_id))
            self.bus.publish(
                PairingRequested(
                    platform=req.platform,
                    user_id=req.user_id,
                    user_name=req.user_name,
                    chat_id=req.chat_id,
                    chat_name=req.chat_name,
                    created_at=req.created_at,
                    expires_at=req.expires_at,
                    code=outcome.code,
                )
            )
            await self._tell(src, issued_text(outcome.code, self.manager.limits.code_ttl))
            return
        self._remember_refusal(key, now)
        log.info(
            "no pairing code for user %s on %s: %s",
            hash_id(src.user_id),
            src.platform,
            outcome.reason,
        )
        await self._tell(src, refused_text(outcome, now))

    def _remember_refusal(self, key: tuple[str, str], now: float) -> None:
        if len(self._refused_at) >= _REFUSAL_MEMORY:
            window = self.manager.limits.user_interval
            self._refused_at = {k: t for k, t in self._refused_at.items() if now - t < window}
            if len(self._refused_at) >= _REFUSAL_MEMORY:
                self._refused_at.clear()
        self._refused_at[key] = now

    # --- the operator's answers --------------------------------------------------------

    def code_for(self, platform: str, user_id: str) -> str | None:
        """The code this process sent to a waiting user (None after a restart)."""
        return self._codes.get((platform, user_id))

    async def pending(self) -> list[PendingPairing]:
        return await self.manager.list_pending()

    async def approved(self) -> list[ApprovedUser]:
        return await self.manager.list_approved()

    async def approve_code(self, platform: str, code: str, *, by: str = "tui") -> ApprovedUser:
        """Approve by the code the user was sent (raises PairingError subclasses)."""
        async with self._lock:
            user = await self.manager.approve_code(platform, code, by=by)
            await self._approved_now(user, by)
        return user

    async def approve_user(self, platform: str, user_id: str, *, by: str = "tui") -> ApprovedUser:
        """Approve a person by id: a waiting request, or someone who lost their code."""
        async with self._lock:
            user = await self.manager.approve_user(platform, user_id, by=by)
            await self._approved_now(user, by)
        return user

    async def deny(self, platform: str, user_id: str, *, by: str = "tui") -> bool:
        async with self._lock:
            request = await self.manager.deny(platform, user_id)
            self._forget_pending((platform, user_id))
        if request is None:
            return False
        log.info("pairing request of user %s on %s denied", hash_id(user_id), platform)
        self._publish_resolved(platform, user_id, "denied", request.user_name, by)
        return True

    async def revoke(self, platform: str, user_id: str, *, by: str = "tui") -> bool:
        async with self._lock:
            user = await self.manager.revoke(platform, user_id)
            self._approved.pop((platform, user_id), None)
            self._unwelcomed.pop((platform, user_id), None)
        if user is None:
            return False
        log.info("access of user %s on %s revoked", hash_id(user_id), platform)
        self._publish_resolved(platform, user_id, "revoked", user.user_name, by)
        return True

    async def clear_pending(self, *, by: str = "tui") -> int:
        async with self._lock:
            dropped = await self.manager.clear_pending()
            for request in dropped:
                self._forget_pending((request.platform, request.user_id))
        for request in dropped:
            self._publish_resolved(
                request.platform, request.user_id, "cleared", request.user_name, by
            )
        return len(dropped)

    async def _approved_now(self, user: ApprovedUser, by: str) -> None:
        """Bookkeeping after an approval made here (lock held): event, then tell the user."""
        key = (user.platform, user.user_id)
        self._forget_pending(key)
        already = key in self._approved
        self._approved[key] = user
        if already:
            return
        log.info("user %s on %s approved (%s)", hash_id(user.user_id), user.platform, by)
        self._publish_resolved(user.platform, user.user_id, "approved", user.user_name, by)
        await self._welcome(user)

    async def _welcome(self, user: ApprovedUser) -> None:
        """Tell the user they are in; retried by the watcher while their platform is down."""
        key = (user.platform, user.user_id)
        if user.notified:
            self._unwelcomed.pop(key, None)
            return
        sent = True
        if user.chat_id:
            source = SessionSource(
                user.platform, user.chat_id, "dm", user_id=user.user_id, user_name=user.user_name
            )
            sent = await self._tell(source, APPROVED_TEXT)
        tries = self._unwelcomed.pop(key, (user, 0))[1] + 1
        if sent or tries >= WELCOME_TRIES:
            await self.manager.mark_notified(user.platform, user.user_id)
        else:
            self._unwelcomed[key] = (user, tries)

    def _forget_pending(self, key: tuple[str, str]) -> None:
        self._pending.pop(key, None)
        self._codes.pop(key, None)

    def _publish_resolved(
        self, platform: str, user_id: str, decision: PairingDecision, name: str | None, by: str
    ) -> None:
        self.bus.publish(
            PairingResolved(
                platform=platform, user_id=user_id, decision=decision, user_name=name, by=by
            )
        )

    async def _tell(self, source: SessionSource, text: str) -> bool:
        """Message a user in their chat; False if it could not be sent (yet)."""
        adapter = self.runner.adapters.get(source.platform) if self.runner else None
        if adapter is None:
            return True  # the platform is not served here: nobody to tell, nothing to retry
        try:
            await adapter.send(source, text)
        except Exception as exc:
            log.warning(
                "could not message user %s on %s: %s", hash_id(source.user_id), source.platform, exc
            )
            return False
        return True

    # --- changes made elsewhere (the CLI), expiry ----------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pairing sync failed")

    async def sync(self) -> None:
        """Publish what changed since the last look: expiries, and the CLI's answers."""
        async with self._lock:
            now = self.manager.clock()
            if any(p.expires_at <= now for p in self._pending.values()):
                for request in await self.manager.purge_expired():
                    key = (request.platform, request.user_id)
                    if key in self._pending:
                        self._forget_pending(key)
                        self._publish_resolved(
                            request.platform,
                            request.user_id,
                            "expired",
                            request.user_name,
                            "expiry",
                        )
            version = await self.manager.data_version()
            if version != self._version:
                await self._reload(publish=True)
                self._version = version
            for user, _ in list(self._unwelcomed.values()):
                await self._welcome(user)

    async def _reload(self, *, publish: bool) -> None:
        """Re-read pending and approved users; with ``publish``, report the differences."""
        self._version = await self.manager.data_version()
        pending = {(p.platform, p.user_id): p for p in await self.manager.list_pending()}
        approved = {(a.platform, a.user_id): a for a in await self.manager.list_approved()}
        if publish:
            for key, request in self._pending.items():
                if key not in pending and key not in approved:
                    self._publish_resolved(*key, "cleared", request.user_name, "cli")
            for key, user in approved.items():
                if key not in self._approved:
                    self._publish_resolved(*key, "approved", user.user_name, user.approved_by)
            for key, user in self._approved.items():
                if key not in approved:
                    self._publish_resolved(*key, "revoked", user.user_name, "cli")
        for key in set(self._codes) - set(pending):
            self._codes.pop(key, None)
        self._pending, self._approved = pending, approved
        for key in set(self._unwelcomed) - set(approved):
            self._unwelcomed.pop(key, None)
        for key, user in approved.items():
            if not user.notified and key not in self._unwelcomed:
                self._unwelcomed[key] = (user, 0)  # approved elsewhere: told on the next tick


class PairingFeature:
    """Pairing as a gateway feature: strangers in DMs get codes the operator approves."""

    name = "pairing"
    event_types: tuple[type[ev.GatewayEvent], ...] = (PairingRequested, PairingResolved)

    def __init__(self, *, sync_interval: float = 1.0) -> None:
        self.sync_interval = sync_interval
        self.gate: PairingGate | None = None

    def install(self, ctx: FeatureContext) -> None:
        """Build the gate on the runner's store and bus and plug it into the policy."""
        runner = ctx.runner
        self.gate = PairingGate(
            ctx.config, PairingManager(runner.store), runner.bus, sync_interval=self.sync_interval
        )
        self.gate.install(ctx.policy, runner)

    async def start(self) -> None:
        if self.gate is not None:
            await self.gate.start()

    async def stop(self) -> None:
        if self.gate is not None:
            await self.gate.stop()

    def describe(self, event: ev.GatewayEvent) -> tuple[int, str] | None:
        match event:
            case PairingRequested(platform=p, user_id=u):  # the code is never logged
                return logging.WARNING, (
                    f"pairing: {p} user {hash_id(u)} asks for access; approve with "
                    f"`hermes pairing approve {p} <code>` (see `hermes pairing list`)"
                )
            case PairingResolved(platform=p, user_id=u, decision=d, by=b):
                by = f" by {b}" if b else ""
                return logging.INFO, f"pairing: {p} user {hash_id(u)} {d}{by}"
        return None
