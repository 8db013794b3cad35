"""What the server's endpoints (responses, webhooks) need from the server they are part of.

A protocol, so ``responses`` and ``webhook`` never import ``server`` (which imports them):
the server is one implementation, a test host another.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from hermes_gateway.config import ApiServerConfig, Config
    from hermes_gateway.hosts import ApiHost
    from hermes_gateway.models import SessionSource
    from hermes_gateway.store import StoredMessage

__all__ = ["ApiEndpointHost"]


class ApiEndpointHost(Protocol):
    """The server as its endpoints see it: limits, sessions, and the gateway behind it."""

    @property
    def config(self) -> Config: ...

    @property
    def settings(self) -> ApiServerConfig: ...

    def gateway(self) -> ApiHost:
        """The gateway's API face, or a 503 while the server is not part of one."""
        ...

    async def read_body(self, request: web.Request) -> bytes: ...

    def slot(self) -> AbstractContextManager[None]: ...

    def model_override(self, requested: str) -> str | None: ...

    def session_source(
        self, request: web.Request, user: str | None
    ) -> tuple[SessionSource, bool]: ...

    def source_for(self, sid: str, user: str | None = None) -> SessionSource: ...

    def check_paused(self, source: SessionSource) -> None: ...

    def check_vision(self, messages: list[StoredMessage], model_name: str | None) -> None: ...

    async def store_images(self, messages: list[StoredMessage]) -> None: ...
