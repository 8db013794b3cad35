"""Home Assistant as a gateway platform: a conversation agent over HA's websocket API.

Its parts: :mod:`.websocket` (the handshake, commands by increasing id, subscriptions) and
:mod:`.inbound` (which events are messages, and their sessions).

Connection. The shared :class:`~hermes_gateway.platforms.connection.ConnectionLoop` runs
:meth:`HomeAssistantAdapter._session`: open the websocket, authenticate (``auth_invalid`` is
fatal, reported once, naming HASS_TOKEN), subscribe to the conversation event (and to
``state_changed`` when entities are watched), report "connected", read until the socket
ends. The loop reconnects with the shared backoff and subscribes again on the new socket
(one subscription per event type per connection, so nothing arrives twice). HA does not
replay events fired while no client listened: those are not seen.

Delivery. HA cannot edit a notification, so an answer is sent once, finished, through a
``notify`` service (``call_service`` over the same websocket): the one the chat's event named,
else ``notify_service``. An answer finished while the socket is down waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from hermes_gateway.access.policy import AccessPolicy
from hermes_gateway.backoff import Backoff
from hermes_gateway.config import Config, HomeAssistantConfig
from hermes_gateway.delivery import TransientDeliveryError, split_message
from hermes_gateway.delivery.errors import PermanentDeliveryError
from hermes_gateway.models import MessageEvent, SessionSource
from hermes_gateway.platforms.base import FatalPlatformError, IntakeError, PlatformAdapter
from hermes_gateway.platforms.chat_locks import ChatLocks
from hermes_gateway.platforms.connection import ConnectionLoop
from hermes_gateway.platforms.homeassistant.inbound import HaInbound
from hermes_gateway.platforms.homeassistant.websocket import (
    AuthInvalid,
    CommandFailed,
    ConnectionLost,
    HaWebsocket,
    websocket_url,
)
from hermes_gateway.tasks import TaskSet

__all__ = ["HomeAssistantAdapter"]

log = logging.getLogger(__name__)

START_WAIT = 30.0
CONNECT_TIMEOUT = 15.0
_REFUSALS = frozenset({"not_found", "invalid_format", "unauthorized", "service_validation_error"})


class HomeAssistantAdapter(PlatformAdapter):
    """People talking to Hermes through HA events; answers as notifications.

    Args:
        config: The gateway configuration (``config.platforms.homeassistant`` is used).
        policy: Who may talk (the runner decides; kept for symmetry with other adapters).
    """

    name = "homeassistant"
    acknowledges_busy = False

    def __init__(self, config: Config, policy: AccessPolicy) -> None:
        super().__init__()
        self.config = config
        self.cfg: HomeAssistantConfig = config.platforms.homeassistant
        self.policy = policy
        self.inbound = HaInbound(self.cfg)
        self.link = ConnectionLoop(
            self,
            "Home Assistant",
            Backoff(self.cfg.reconnect_initial, self.cfg.reconnect_cap, jitter=0.2, upward=True),
            describe=self._describe,
        )
        self.ws: HaWebsocket | None = None
        self.connections = 0
        self._ready = asyncio.Event()
        self._tasks = TaskSet("homeassistant")
        self._chat_locks = ChatLocks()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self.cfg.token:
            raise FatalPlatformError("HASS_TOKEN is not set")
        if not self.cfg.url.startswith(("http://", "https://")):
            raise FatalPlatformError(
                f"HASS_URL must start with http:// or https://: {self.cfg.url!r}"
            )
        await self.link.start(self._session, wait=START_WAIT, waiting="waiting for Home Assistant")

    async def stop(self) -> None:
        await self.link.stop()
        await self._tasks.cancel_all(timeout=5)
        self.link.set_state("stopped")

    async def _session(self) -> str:
        """One websocket from connect to its end; the link reconnects after it."""
        cfg = self.cfg
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:
                ws = await HaWebsocket.connect(
                    http, websocket_url(cfg.url), cfg.token, CONNECT_TIMEOUT
                )
            except AuthInvalid as exc:
                raise FatalPlatformError(
                    f"Home Assistant refused HASS_TOKEN ({exc}); create a long-lived access "
                    "token in your Home Assistant profile and set HASS_TOKEN"
                ) from exc
            reader = asyncio.get_running_loop().create_task(ws.run())
            try:
                await ws.subscribe(cfg.conversation_event, self._on_conversation)
                if cfg.watching:
                    await ws.subscribe("state_changed", self._on_state_changed)
                self.connections += 1
                self.ws = ws
                self._ready.set()
                version = f" (Home Assistant {ws.version})" if ws.version else ""
                self.link.connected(f"{cfg.url}{version}")
                return await reader
            finally:
                self._ready.clear()
                self.ws = None
                reader.cancel()
                await ws.close()

    # --- inbound ------------------------------------------------------------------------

    def _on_conversation(self, event: dict[str, Any]) -> None:
        message = self.inbound.conversation(event)
        if message is not None:
            self._take(message)

    def _on_state_changed(self, event: dict[str, Any]) -> None:
        message = self.inbound.state_change(event)
        if message is not None:
            self._take(message)

    def _take(self, event: MessageEvent) -> None:
        """Hand a message over in its chat's order, without holding up the reading."""
        self._tasks.spawn(self._hand_over(event), name=f"{self.name}-hand-over")

    async def _hand_over(self, event: MessageEvent) -> None:
        async with self._chat_locks.of(event.session_key):
            try:
                await self.dispatch(event)
            except IntakeError as exc:
                log.warning("Home Assistant message not stored: %s", exc)
            except Exception:
                log.exception("a Home Assistant message could not be handled")

    # --- delivery -----------------------------------------------------------------------

    def notify_service(self, source: SessionSource) -> str:
        """The notify service (name in the ``notify`` domain) answers to ``source`` use."""
        named = self.inbound.notify_for.get(source.session_key)
        if named:
            return named
        default = self.cfg.notify_service.strip()
        return default.split(".", 1)[1] if default.startswith("notify.") else default

    async def _connection(self) -> HaWebsocket:
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.cfg.send_wait)
            except TimeoutError as exc:
                raise TransientDeliveryError("Home Assistant is not connected") from exc
        ws = self.ws
        if ws is None:
            raise TransientDeliveryError("Home Assistant is not connected")
        return ws

    async def send(self, source: SessionSource, text: str) -> None:
        """Send ``text`` as notification(s) through ``notify.<service>``."""
        service = self.notify_service(source)
        ws = await self._connection()
        for chunk in split_message(text, self.cfg.message_limit):
            command = {
                "type": "call_service",
                "domain": "notify",
                "service": service,
                "service_data": {"message": chunk, "title": self.cfg.notify_title},
            }
            try:
                await ws.command(command)
            except CommandFailed as exc:
                error = f"Home Assistant refused notify.{service}: {exc.message or exc.code}"
                if exc.code in _REFUSALS:
                    raise PermanentDeliveryError(error) from exc
                raise TransientDeliveryError(error) from exc
            except (ConnectionLost, TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                raise TransientDeliveryError(f"Home Assistant connection lost: {exc}") from exc

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, ConnectionLost):
            return str(exc)
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            return f"Home Assistant answered {exc.status} to the websocket"
        if isinstance(exc, aiohttp.ClientError | OSError):
            return f"cannot reach Home Assistant at {self.cfg.url}: {exc or type(exc).__name__}"
        if isinstance(exc, TimeoutError):
            return f"Home Assistant at {self.cfg.url} did not answer in time"
        return str(exc) or type(exc).__name__
