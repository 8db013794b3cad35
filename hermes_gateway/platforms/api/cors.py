"""CORS for browser clients (``platforms.api_server.cors_origins`` / API_SERVER_CORS_ORIGINS).

Off unless origins are configured. A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) is answered before routing and authentication, since
browsers send it without the key; every answer to an allowed origin carries the headers,
streamed answers too (they are added when the response is prepared, before the first byte).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["Cors"]

_METHODS = "GET, POST, DELETE, OPTIONS"
_HEADERS = "Authorization, Content-Type, X-Hermes-Session-Id, X-Hermes-Tool-Progress"
_EXPOSED = "X-Hermes-Session-Id, Retry-After"
MAX_AGE_SECONDS = 600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Cors:
    """Which origins may call the API from a browser, and the headers that say so."""

    def __init__(self, origins: list[str]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")

    def allowed(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for ``origin``, or None."""
        if not origin:
            return None
        if self.any:
            return "*"
        return origin if origin.rstrip("/") in self.origins else None

    @web.middleware
    async def preflight(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            allow = self.allowed(request.headers.get("Origin"))
            if allow is None:
                return web.Response(status=403, text="CORS: origin not allowed")
            asked = request.headers.get("Access-Control-Request-Headers")
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": _METHODS,
                    "Access-Control-Allow-Headers": asked or _HEADERS,
                    "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
                },
            )
        return await handler(request)

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        allow = self.allowed(request.headers.get("Origin"))
        if allow is None:
            return
        response.headers["Access-Control-Allow-Origin"] = allow
        response.headers["Access-Control-Expose-Headers"] = _EXPOSED
        if allow != "*":
            response.headers["Vary"] = "Origin"
