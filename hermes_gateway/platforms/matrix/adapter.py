"""Matrix as a gateway platform: matrix-nio, our own /sync loop, inside our event loop.

Parts:

* :mod:`.client`: nio's client with its error responses raised and mapped to delivery errors;
* :mod:`.inbound`: which events are for the bot, session sources, text cleanup;
* :mod:`.transport`: send / ``m.replace`` edit / upload / typing for the shared streaming code;
* :mod:`.html`: Markdown to ``formatted_body``.

Connection. The session (run by the shared :class:`ConnectionLoop`) checks the credentials
(``/account/whoami`` for MATRIX_ACCESS_TOKEN, else a password login; a refusal is fatal and
names the variable), lists the joined rooms, and long-polls ``/sync`` from the token kept in
the store. A batch's messages are all handed to the runner (which stores them in its inbox)
*before* the batch's ``next_batch`` token is saved: a kill -9 at any point loses nothing (the
next start syncs from the last saved token again) and answers nothing twice (the inbox drops
event ids it has). An inbox that cannot store (:class:`IntakeError`) ends the session without
saving, so the batch is fetched again after the backoff.

The very first start (no token stored) skips the rooms' history; a room joined later is taken
from the bot's own join on. A limited timeline (more events than a sync returns) is filled
from ``/messages`` back to the previous token, so a long absence is caught up too.

Invites are accepted from allowed users only (as Hermes Agent does), in a task of their own
so a slow join never holds the sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import aiohttp

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config, matrix_chat_id
from hermes_gateway.delivery import DeliveryError, RateGate
from hermes_gateway.delivery.answer_turn import AnswerTurns
from hermes_gateway.delivery.gated_send import send_file_gated, send_gated
from hermes_gateway.media import save_media
from hermes_gateway.models import MediaRef, SessionSource
from hermes_gateway.platforms.base import (
    FatalPlatformError,
    IntakeError,
    PlatformAdapter,
    TurnDelivery,
)
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.matrix.client import MatrixClient, MatrixError
from hermes_gateway.platforms.matrix.inbound import MatrixInbound, RoomInfo
from hermes_gateway.platforms.matrix.transport import MatrixTransport, target_for
from hermes_gateway.tasks import TaskSet

__all__ = ["MatrixAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 30.0
"""How long start() waits for the first connection before returning anyway."""
PER_ROOM_INTERVAL = 0.05
"""Minimum spacing of writes in one room; the homeserver's own limit answers
``M_LIMIT_EXCEEDED`` with ``retry_after_ms``, which the gate waits out."""
MAX_INBOUND_BYTES = 25 * 1024 * 1024
"""Attachments larger than this are not downloaded."""
TYPING_REFRESH = 4.0
TYPING_DELAY = 0.5
"""Seconds a turn runs before "typing" is shown."""
TIMELINE_LIMIT = 100
"""Events per room per /sync; a longer gap is filled from ``/messages``."""
GAP_PAGES = 20
"""Pages of ``/messages`` fetched at most to fill one gap (2000 events)."""
_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "room": {"timeline": {"limit": TIMELINE_LIMIT}, "ephemeral": {"types": []}},
}
_FIRST_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "room": {"timeline": {"limit": 1}, "ephemeral": {"types": []}},
}


class MatrixAdapter(PlatformAdapter):
    """Matrix DMs, rooms and threads (unencrypted rooms only).

    Args:
        config: The gateway configuration (``config.platforms.matrix`` is used).
        policy: Who may talk; consulted here for invites and attachments (the runner makes
            the real decision).
    """

    name = "matrix"

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg = cfg = config.platforms.matrix
        self.policy = policy
        self.client = MatrixClient(cfg.homeserver, cfg.user_id, cfg.device_id)
        self.transport = MatrixTransport(self.client, max(500, min(cfg.max_message_length, 30000)))
        self.gate = RateGate(PER_ROOM_INTERVAL)
        self.inbound = MatrixInbound(cfg, policy, self._save_media, self._is_command)
        self.link = ConnectionLoop(
            self,
            "Matrix",
            Backoff(cfg.reconnect_initial, cfg.reconnect_cap, jitter=0.2, upward=True),
            describe=_describe,
        )
        self.since: str | None = None
        """The sync token of the last batch fully handed to the runner."""
        self.joined: set[str] = set()
        self.direct: set[str] = set()
        self._rooms: dict[str, RoomInfo] = {}
        self._encrypted_warned: set[str] = set()
        self._typing: set[str] = set()
        """Targets showing "typing" (withdrawn when their answer is delivered)."""
        self._typing_soon: dict[str, asyncio.Task[None]] = {}
        self.batches = 0
        """Sync batches taken (for tests and the bench)."""
        self.answers = AnswerTurns(
            self.name,
            config.paths.home,
            upload=self._upload,
            typing=self._typing_now,
            typing_every=TYPING_REFRESH,
            typing_off=self._typing_off,
            pacing=cfg,
            display=config.display,
        )
        self._tasks = TaskSet("matrix")
        self._logged_in = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        if not cfg.homeserver:
            raise FatalPlatformError("MATRIX_HOMESERVER is not set")
        if not cfg.token and not cfg.password:
            raise FatalPlatformError("set MATRIX_ACCESS_TOKEN (or MATRIX_PASSWORD)")
        if not cfg.token and not cfg.user_id:
            raise FatalPlatformError("MATRIX_PASSWORD needs MATRIX_USER_ID (@bot:server)")
        e2ee = _e2ee_request(self.config.env)
        if e2ee == "required":
            raise FatalPlatformError(
                "end-to-end encryption is not supported here (MATRIX_ENCRYPTION / "
                "MATRIX_E2EE_MODE ask for it); set MATRIX_E2EE_MODE=off and use unencrypted rooms"
            )
        if e2ee == "optional":
            log.warning("MATRIX_E2EE_MODE=optional: only unencrypted rooms are answered")
        if self.gate.closed:
            self.gate = RateGate(PER_ROOM_INTERVAL)
        await self.link.start(self._session, wait=START_WAIT, waiting="waiting for the homeserver")

    async def stop(self) -> None:
        self.answers.cancel()
        await self.link.stop()
        await self._tasks.cancel_all(timeout=5)
        await self.gate.aclose()
        await self.client.close()
        self.link.set_state("stopped")

    async def _login(self) -> None:
        """Check the token (or log in by password); a refusal is fatal and names the variable."""
        cfg = self.cfg
        try:
            if cfg.token:
                user_id = await self.client.use_token(cfg.token)
            elif not self._logged_in:
                user_id = await self.client.login(cfg.password)
            else:
                user_id = self.client.user_id
        except MatrixError as exc:
            if exc.auth:
                var = "MATRIX_ACCESS_TOKEN" if cfg.token else "MATRIX_PASSWORD"
                raise FatalPlatformError(
                    f"the homeserver rejected {var} ({exc.errcode or exc.http_status}: "
                    f"{exc.message}); check {var}"
                ) from exc
            raise
        self._logged_in = True
        if cfg.user_id and cfg.user_id != user_id:
            log.warning("MATRIX_USER_ID is %s but the token is %s's", cfg.user_id, user_id)
        self.inbound.user_id = user_id

    async def _session(self) -> str:
        """Log in, then sync until the connection fails; the link backs off and retries."""
        await self._login()
        try:
            await self._sync_loop()
        except MatrixError as exc:
            if exc.auth:  # the token was revoked while running
                var = "MATRIX_ACCESS_TOKEN" if self.cfg.token else "MATRIX_PASSWORD"
                raise FatalPlatformError(f"the homeserver no longer accepts {var} ({exc})") from exc
            raise
        return "the sync ended"  # pragma: no cover - the loop only ends by raising

    async def _sync_loop(self) -> None:
        self.joined = await self.client.joined_rooms()
        if self.since is None:
            self.since = await self._load_token()
        if self.since is None:
            first = await self.client.sync(None, 0, _FIRST_FILTER)
            self._note_direct(first)
            await self._invites(first)  # history is skipped; standing invites are not
            await self._save_token(first.next_batch)
        self.link.connected(f"as {self.inbound.user_id}")
        while True:
            resp = await self.client.sync(self.since, self.cfg.sync_timeout, _FILTER)
            await self._take(resp)
            await self._save_token(resp.next_batch)
            self.batches += 1

    # --- the sync token: where the next start resumes ------------------------------------

    def _token_key(self) -> str:
        return f"matrix:{self.inbound.user_id}:next_batch"

    async def _load_token(self) -> str | None:
        if not self.bound:
            return None
        try:
            raw = await self.host.store.kv_get(self._token_key())
        except Exception as exc:
            log.warning("could not read the Matrix sync token: %s", exc)
            return None
        return str(raw) if raw else None

    async def _save_token(self, token: str) -> None:
        """Keep ``token`` as the resume point; a failed write keeps the old one (repeats are
        dropped by event id, so an older token costs a little work, never a message)."""
        self.since = token
        if not self.bound:
            return
        try:
            await self.host.store.kv_set(self._token_key(), token)
        except Exception as exc:
            log.warning("could not save the Matrix sync token: %s", exc)

    # --- a batch --------------------------------------------------------------------

    def _note_direct(self, resp: Any) -> None:
        for event in resp.account_data_events or []:
            source = getattr(event, "source", None)
            if isinstance(source, dict) and source.get("type") == "m.direct":
                content = source.get("content") or {}
                for rooms in content.values() if isinstance(content, dict) else []:
                    if isinstance(rooms, list):
                        self.direct.update(str(r) for r in rooms)

    async def room_info(self, room_id: str, events: list[dict[str, Any]]) -> RoomInfo:
        """Whether a room is a direct chat, and its name.

        From the sync's room state when nio has it; after a restart (an incremental sync
        carries no state) the members are asked once and remembered, and asked again when
        the batch shows someone joining or leaving.
        """
        changed = any(e.get("type") in ("m.room.member", "m.room.name") for e in events)
        known = self._rooms.get(room_id)
        if known is not None and not changed:
            return known
        room = self.client.nio.rooms.get(room_id)
        members = room.joined_count if room is not None else 0
        name = room.display_name if room is not None and room.is_named else ""
        if members <= 0:
            try:
                members = len(await self.client.joined_members(room_id))
                name = name or await self.client.room_name(room_id)
            except (MatrixError, OSError, TimeoutError) as exc:
                log.warning("could not read the members of %s: %s", room_id, exc)
        info = RoomInfo(direct=room_id in self.direct or 0 < members <= 2, name=name)
        if len(self._rooms) > 4096:
            self._rooms.clear()
        self._rooms[room_id] = info
        return info

    async def _take(self, resp: Any) -> None:
        """Hand every message of a batch to the runner (rooms side by side, each in order)."""
        self._note_direct(resp)
        await self._invites(resp)
        jobs = []
        for room_id, info in resp.rooms.join.items():
            events = [e.source for e in info.timeline.events if isinstance(e.source, dict)]
            if info.timeline.limited and info.timeline.prev_batch and self.since:
                events = await self._fill_gap(room_id, info.timeline.prev_batch) + events
            if room_id not in self.joined:
                events = self._since_joined(events)
                self.joined.add(room_id)
            if events:
                jobs.append(self._take_room(room_id, events))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _since_joined(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A newly joined room's events from the bot's invite on (or its join, when the
        timeline does not reach back to the invite): what came before is history, not for
        the bot; what the inviter wrote while the bot was joining is."""
        me = self.inbound.user_id
        start = None
        for i, ev in enumerate(events):
            if ev.get("type") != "m.room.member" or ev.get("state_key") != me:
                continue
            membership = (ev.get("content") or {}).get("membership")
            if membership == "invite" or (membership == "join" and start is None):
                start = i + 1
            elif membership == "leave":
                start = None
        return events if start is None else events[start:]

    async def _fill_gap(self, room_id: str, prev_batch: str) -> list[dict[str, Any]]:
        """Events between the last token and a limited timeline's start, oldest first."""
        assert self.since is not None
        found: list[dict[str, Any]] = []
        start = prev_batch
        try:
            for _ in range(GAP_PAGES):
                page, end = await self.client.messages_back(room_id, start, self.since)
                found = page + found
                if not page or not end or end == start:
                    break
                start = end
        except (MatrixError, OSError, TimeoutError, aiohttp.ClientError) as exc:
            log.warning("could not fetch the events missed in %s: %s", room_id, exc)
        return found

    async def _take_room(self, room_id: str, events: list[dict[str, Any]]) -> None:
        room = await self.room_info(room_id, events)
        if room_id not in self._encrypted_warned and any(
            e.get("type") == "m.room.encrypted" for e in events
        ):
            self._encrypted_warned.add(room_id)
            log.warning("%s is encrypted: its messages cannot be read (no E2EE here)", room_id)
        for event in events:
            event_id = str(event.get("event_id", ""))
            if not event_id or not self.inbound.first_time(event_id):
                continue
            try:
                message = await self.inbound.normalize(room_id, event, room)
                if message is not None:
                    await self.dispatch(message)
            except IntakeError:
                self.inbound.forget(event_id)  # not stored: taken again from the same token
                raise
            except DeliveryError as exc:
                log.warning("Matrix event %s could not be read: %s", event_id, exc)
            except Exception:
                log.exception("Matrix event %s could not be handled", event_id)

    async def _invites(self, resp: Any) -> None:
        me = self.inbound.user_id
        for room_id, info in resp.rooms.invite.items():
            inviter, is_direct = "", False
            for event in info.invite_state:
                source = getattr(event, "source", None) or {}
                if source.get("type") == "m.room.member" and source.get("state_key") == me:
                    inviter = str(source.get("sender", ""))
                    # nio keeps an invite's content beside its (stripped) source
                    content = source.get("content") or getattr(event, "content", None) or {}
                    is_direct = isinstance(content, dict) and bool(content.get("is_direct"))
            if not inviter:
                continue
            who = SessionSource("matrix", matrix_chat_id(room_id), "dm", None, inviter, None, None)
            if not await self.policy.is_allowed(who) and not (
                is_direct and self.cfg.unauthorized_dm == "pair"
            ):
                # Only allowed users bring the bot into rooms (as Hermes Agent); a stranger's
                # direct chat is joined when pairing is on, so that they can get a code.
                log.warning("not joining %s: invited by %s, who is not allowed", room_id, inviter)
                continue
            if is_direct:
                self.direct.add(room_id)
            self._spawn(self._join(room_id))

    async def _join(self, room_id: str) -> None:
        try:
            await self.client.join(room_id)
            log.info("joined Matrix room %s", room_id)
        except (MatrixError, OSError, TimeoutError) as exc:
            log.warning("could not join Matrix room %s: %s", room_id, exc)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name="matrix-task")

    def _is_command(self, name: str) -> bool:
        return self.bound and self.host.commands.resolve(name) is not None

    async def _save_media(self, content: dict[str, Any]) -> list[MediaRef]:
        """Download a user's file into HERMES_HOME/media (only asked for allowed users)."""
        url = str(content.get("url") or "")
        if not url.startswith("mxc://"):
            return []  # encrypted files (``file``) or junk
        info = content.get("info") if isinstance(content.get("info"), dict) else {}
        size = info.get("size") if isinstance(info, dict) else None
        if isinstance(size, int) and size > MAX_INBOUND_BYTES:
            log.info("file %s is too large", url)
            return []
        try:
            data = await self.client.download(url, MAX_INBOUND_BYTES)
        except DeliveryError as exc:
            log.warning("could not download %s: %s", url, exc)
            return []
        name = str(content.get("filename") or content.get("body") or url.rsplit("/", 1)[-1])
        mime = str(info.get("mimetype") or "") if isinstance(info, dict) else ""
        ref = await save_media(
            self.config.paths.media_dir,
            data,
            platform=self.name,
            unique_id=url.rsplit("/", 1)[-1],
            file_name=name,
            mime_type=mime or None,
        )
        return [ref]

    # --- delivery -----------------------------------------------------------------------

    @staticmethod
    def target(source: SessionSource) -> str:
        """Where answers go: the room, or the thread under its root event."""
        return target_for(source.chat_id, source.thread_id)

    async def send(self, source: SessionSource, text: str) -> None:
        await send_gated(self.gate, self.transport, self.target(source), text)

    async def send_file(self, source: SessionSource, path: str | Path, caption: str = "") -> None:
        await send_file_gated(self.gate, self.transport, self.target(source), Path(path), caption)

    async def _upload(self, target: str, path: Path) -> None:
        await send_file_gated(self.gate, self.transport, target, path)

    def begin_turn(self, source: SessionSource) -> TurnDelivery:
        # Matrix shows "typing" until its timeout: it is withdrawn once the answer is there.
        return self.answers.streamed(self.transport, self.gate, source, self.target(source))

    # Typing: each notice wakes every client syncing on the room, so an answer that is
    # there within TYPING_DELAY goes without one (and then needs no "stopped typing" either).

    async def send_typing(self, source: SessionSource) -> None:
        target = self.target(source)
        if target not in self._typing_soon and target not in self._typing:
            self._typing_soon[target] = self._spawn(self._typing_later(target))

    async def _typing_later(self, target: str) -> None:
        await asyncio.sleep(TYPING_DELAY)
        self._typing_soon.pop(target, None)
        await self._typing_now(target)

    async def _typing_now(self, target: str) -> None:
        self._typing.add(target)
        with contextlib.suppress(DeliveryError):
            await self.transport.typing(target)

    async def _typing_off(self, target: str) -> None:
        soon = self._typing_soon.pop(target, None)
        if soon is not None:
            soon.cancel()
        if target in self._typing:
            self._typing.discard(target)
            await self.transport.typing(target, False)


def _e2ee_request(env: dict[str, str]) -> str:
    """What Hermes Agent's variables ask of encryption: ``off``, ``optional`` or ``required``
    (MATRIX_E2EE_MODE wins; the older MATRIX_ENCRYPTION=true means required)."""
    mode = env.get("MATRIX_E2EE_MODE", "").strip().lower()
    if mode in ("off", "optional", "required"):
        return mode
    if env.get("MATRIX_ENCRYPTION", "").strip().lower() in ("1", "true", "yes", "on"):
        return "required"
    return "off"


def _describe(exc: BaseException) -> str:
    """Why a Matrix connection ended, in the words the Platforms pane shows."""
    if isinstance(exc, MatrixError):
        return f"the homeserver answered {exc}"
    if isinstance(exc, IntakeError):
        return f"messages could not be stored ({exc}); fetching them again"
    if isinstance(exc, OSError | TimeoutError | aiohttp.ClientError):
        return f"cannot reach the homeserver: {exc or type(exc).__name__}"
    return str(exc) or type(exc).__name__
